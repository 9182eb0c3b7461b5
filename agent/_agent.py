"""The agent: dials the coordinator, receives code and work, runs hosts, streams results."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from agent._code import CodeCache, CodeError, import_task
from agent._connections import ConnectionCache, ConnectionPlugins, UnknownPluginError
from agent._executor import ExecNode, HostRunner
from agent._log_forward import OutboxLogHandler
from agent._outbox import Outbox
from genja._host import Host
from genja._plan import TaskPath
from genja._settings import DEFAULT_HOST_CONCURRENCY
from genja.task._definition import TaskInfo, definition_of, is_task
from genja.task._results import TaskFailureKind
from genja_rpc._channels import AGENT_TOKEN_METADATA, aio_channel
from genja_rpc._convert import HostCache, kind_to_proto, options_from_spec
from genja_rpc._pb import pb, pb_grpc

log = logging.getLogger("genja.agent")


@dataclass(frozen=True, slots=True)
class AgentConfig:
    coordinator: str
    token: str
    agent_id: str
    pool: str = "local"
    host_concurrency: int = DEFAULT_HOST_CONCURRENCY
    tls_ca: bytes | None = None


@dataclass(eq=False)
class _Run:
    run_id: str
    runner: HostRunner
    cancelled: bool = False


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self._config = config
        self._code = CodeCache()
        self._hosts = HostCache()
        self._plugins = ConnectionPlugins()
        self._runs: dict[str, _Run] = {}
        self._queue: collections.deque[tuple[_Run, pb.Host]] = collections.deque()
        self._active = 0
        self._workers: set[asyncio.Task[None]] = set()
        self._blocking: collections.deque[tuple[_Run, pb.Host]] = collections.deque()
        self._blocking_lock = threading.Lock()
        self._blocking_threads = 0
        self._blocking_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.host_concurrency, thread_name_prefix="genja-host"
        )
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.host_concurrency, thread_name_prefix="genja-task"
        )
        self._connections = ConnectionCache(self._plugins, self._threads)
        self._call: Any = None
        self._outbox: Outbox | None = None

    async def serve(self) -> str:
        """Run until the coordinator says shut down or the stream ends. Returns why it ended:
        "shutdown" (told to), "refused" (bad token) or "lost" (the connection ended)."""
        loop = asyncio.get_running_loop()
        async with aio_channel(self._config.coordinator, self._config.tls_ca) as channel:
            stub = pb_grpc.AgentServiceStub(channel)
            self._call = stub.Connect(metadata=((AGENT_TOKEN_METADATA, self._config.token),))
            self._outbox = Outbox(loop, self._call.write)
            try:
                await self._call.write(pb.AgentMessage(hello=self._hello()))
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
                # The call already failed; reading it says how.
                return await self._receive()
            flusher = asyncio.create_task(self._outbox.run())
            # Records reach the client's log through the coordinator (see genja._logging).
            forwarder = OutboxLogHandler(self._outbox)
            logging.getLogger().addHandler(forwarder)
            try:
                return await self._receive()
            finally:
                logging.getLogger().removeHandler(forwarder)
                flusher.cancel()
                await self._close_connections("the agent is stopping")
                self._threads.shutdown(wait=False, cancel_futures=True)
                self._blocking_pool.shutdown(wait=False, cancel_futures=True)

    async def _close_connections(self, reason: str) -> None:
        # In a thread: closing waits for each transport's thread. Awaited inline, so work that
        # arrives after a CloseConnections message finds the cache empty.
        closed = await asyncio.get_running_loop().run_in_executor(None, self._connections.close_all)
        if closed:
            log.info("closed %d connection(s): %s", closed, reason)

    def _hello(self) -> pb.AgentHello:
        from genja import __version__

        return pb.AgentHello(
            agent_id=self._config.agent_id,
            pool=self._config.pool,
            pid=os.getpid(),
            hostname=socket.gethostname(),
            version=__version__,
            concurrency=self._config.host_concurrency,
        )

    async def _receive(self) -> str:
        while True:
            try:
                message = await self._call.read()
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                    log.error("the coordinator refused this agent: %s", error.details())
                    return "refused"
                log.warning("the coordinator stream ended: %s", error.details())
                return "lost"
            if message is grpc.aio.EOF:
                return "lost"
            which = message.WhichOneof("body")
            if which == "code":
                try:
                    self._code.add(message.code.content_hash, message.code.payload)
                except CodeError:
                    log.exception("dropping a code payload")
            elif which == "run_start":
                await self._start_run(message.run_start)
            elif which == "work":
                self._enqueue(message.work)
            elif which == "cancel":
                run = self._runs.get(message.cancel.run_id)
                if run is not None:
                    run.cancelled = True
            elif which == "close_connections":
                await self._close_connections(message.close_connections.reason)
            elif which == "run_closed":
                self._runs.pop(message.run_closed.run_id, None)
                self._connections.forget_run(message.run_closed.run_id)
            elif which == "shutdown":
                log.info("shutting down: %s", message.shutdown.reason)
                await self._call.done_writing()
                return "shutdown"

    # ---------------------------------------------------------------- runs

    async def _start_run(self, start: pb.RunStart) -> None:
        try:
            root = self._build_node(start.root, ())
        except (CodeError, UnknownPluginError, TypeError) as error:
            await self._call.write(
                pb.AgentMessage(
                    rejected=pb.RunRejected(
                        run_id=start.run_id,
                        message=str(error),
                        kind=kind_to_proto(TaskFailureKind.INTERNAL),
                    )
                )
            )
            return
        timeout = (
            start.task_timeout.ToTimedelta().total_seconds()
            if start.HasField("task_timeout")
            else None
        )
        settings: dict[str, Any] = (
            json.loads(start.connection_settings_json) if start.connection_settings_json else {}
        )
        self._connections.limiter.set_limit(start.login_limit)

        def connect(node: ExecNode, host: Host) -> Any:
            name = node.info.connection_plugin_name
            if not name:
                return None
            return self._connections.get(host, name, settings.get(name) or {}, start.run_id)

        run = _Run(start.run_id, HostRunner(root, self._threads, timeout, connect))
        self._runs[start.run_id] = run

    def _build_node(self, spec: pb.TaskSpec, path: TaskPath) -> ExecNode:
        source = spec.code.WhichOneof("source")
        if source == "content_hash":
            target = self._code.load(spec.code.content_hash)
        elif source == "import_path":
            target = import_task(spec.code.import_path)
        else:
            raise CodeError(f"task {spec.name!r} came without code")
        if not is_task(target):
            raise CodeError(f"the code sent for task {spec.name!r} is not a @task class")
        definition = definition_of(target)
        if spec.connection_plugin_name:
            self._plugins.resolve(spec.connection_plugin_name)
        try:
            instance = target() if isinstance(target, type) else target
        except Exception as error:
            raise CodeError(
                f"task {spec.name!r} could not be instantiated on the agent: "
                f"{type(error).__name__}: {error}"
            ) from None
        info = TaskInfo(
            name=spec.name,
            options=options_from_spec(spec),
            processors=tuple(spec.processors),
            connection_plugin_name=spec.connection_plugin_name or None,
            sub_tasks=TaskInfo.from_definition(definition).sub_tasks,
        )
        children = tuple(
            self._build_node(child, (*path, index)) for index, child in enumerate(spec.sub_tasks)
        )
        return ExecNode(path, info, instance, definition.is_async, children)

    def _enqueue(self, work: pb.WorkBatch) -> None:
        run = self._runs.get(work.run_id)
        if run is None:
            return  # rejected or closed: the coordinator accounts for these hosts
        if run.runner.blocking_only:
            self._enqueue_blocking(run, work.hosts)
            return
        self._queue.extend((run, host) for host in work.hosts)
        while self._active < self._config.host_concurrency and self._queue:
            self._active += 1
            worker = asyncio.create_task(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    def _enqueue_blocking(self, run: _Run, hosts: Any) -> None:
        """Trees of plain `start` methods skip the event loop: worker threads take hosts off a
        queue themselves, which saves a loop-to-thread round trip per host."""
        with self._blocking_lock:
            self._blocking.extend((run, host) for host in hosts)
            idle = self._config.host_concurrency - self._blocking_threads
            starting = max(0, min(len(self._blocking), idle))
            self._blocking_threads += starting
        for _ in range(starting):
            self._blocking_pool.submit(self._blocking_worker)

    def _begin_host(
        self, run: _Run, message: pb.Host
    ) -> tuple[Host, Callable[[pb.NodeResult], None]]:
        """The host to run and the callback that streams its node results; reports it started."""
        outbox = self._outbox
        assert outbox is not None
        run_id = run.run_id
        host = self._hosts.get(message)
        outbox.add(run_id, started_host=host.id)

        def emit(result: pb.NodeResult) -> None:
            outbox.add(run_id, [result])

        return host, emit

    def _end_host(self, run: _Run, host: Host) -> None:
        assert self._outbox is not None
        self._outbox.add(run.run_id, done_host=host.id)

    def _blocking_worker(self) -> None:
        queue = self._blocking
        while True:
            try:
                run, message = queue.popleft()  # atomic: no lock per host
            except IndexError:
                with self._blocking_lock:
                    if not queue:  # re-checked under the lock _enqueue_blocking extends under
                        self._blocking_threads -= 1
                        return
                continue
            if run.cancelled:
                continue
            host, emit = self._begin_host(run, message)
            try:
                run.runner.run_blocking(host, emit)
            except Exception:  # the runner turns task errors into results; this is a bug
                log.exception("running host %r failed", host.id)
            finally:
                self._end_host(run, host)

    async def _work(self) -> None:
        try:
            while self._queue:
                run, message = self._queue.popleft()
                if run.cancelled:
                    continue
                host, emit = self._begin_host(run, message)
                try:
                    await run.runner.run_async(host, emit)
                finally:
                    self._end_host(run, host)
        finally:
            self._active -= 1
