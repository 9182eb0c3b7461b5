"""The agent: dials the coordinator, receives code and work, runs hosts, streams host records.

Hosts run through the host pipeline (`agent._pipeline`) on a `HostExecutor`, like the in-process
runners; this module is the gRPC glue around them: it builds each run's tree from the TaskSpec
and the code sent for it, turns hosts and records into and from protobuf (in `genja_rpc._convert`,
the one place that does), and applies what the coordinator says (cancel, close connections,
shut down).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from agent._code import CodeCache, CodeError, import_task
from agent._connections import ConnectionCache, ConnectionPlugins, UnknownPluginError
from agent._executor import ExecRun, HostExecutor
from agent._log_forward import LogLevels, OutboxLogHandler
from agent._login_budget import LoginBudget
from agent._outbox import MAX_RECORD_BYTES, Outbox
from agent._pipeline import ExecNode, HostPipeline, TaskLoadError, instantiate
from agent._policies import PolicySettings, default_policies
from genja._agent_settings import AgentSettings
from genja._host import Host
from genja._plan import TaskPath
from genja._settings import DEFAULT_HOST_CONCURRENCY, DEFAULT_MAX_RESULT_SIZE
from genja.task._definition import TaskInfo, definition_of, is_task
from genja.task._results import HostTaskResult, TaskFailureKind, TaskFailureResult
from genja_rpc._channels import AGENT_TOKEN_METADATA, ChannelTLS, aio_channel
from genja_rpc._convert import (
    HostCache,
    encode_records,
    kind_to_proto,
    options_from_spec,
    retry_from_proto,
)
from genja_rpc._pb import PROTOCOL_VERSION, pb, pb_grpc

log = logging.getLogger("genja.agent")

# The coordinator said no to our credential or to what we asked for: retrying cannot help.
_REFUSED = (
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,  # another protocol version
)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    coordinator: str
    token: str = field(repr=False)  # "" when a client certificate proves who we are
    agent_id: str
    pool: str = ""  # "": the one pool our credential grants
    host_concurrency: int = DEFAULT_HOST_CONCURRENCY
    tls: ChannelTLS | None = None
    # A local agent, started by its coordinator: the coordinator may not listen yet when the
    # agent is ready, so it waits for it (retrying quickly) instead of failing.
    local: bool = False
    # Its own settings file (--settings): its paths and login cap win over a run's.
    settings: AgentSettings = field(default_factory=AgentSettings)


class _OutboxSink:
    """A run's reports, encoded as host records and queued for the coordinator. `in_flight`
    (shared by the agent's runs) holds the (run, host) pairs begun and not done."""

    __slots__ = ("_agent_id", "_dry_run", "_in_flight", "_outbox", "_run_id")

    def __init__(
        self,
        outbox: Outbox,
        run_id: str,
        agent_id: str,
        in_flight: set[tuple[str, str]],
        *,
        dry_run: bool,
    ) -> None:
        self._outbox = outbox
        self._run_id = run_id
        self._agent_id = agent_id
        self._in_flight = in_flight
        self._dry_run = dry_run

    def started(self, host_id: str) -> None:
        self._in_flight.add((self._run_id, host_id))  # atomic: called from worker threads
        self._outbox.add_started(self._run_id, host_id)

    def record(
        self,
        host_id: str,
        first_node: int,
        results: list[HostTaskResult],
        *,
        started_ns: list[int],
        durations_ns: list[int],
        attempts: list[int],
        exhausted: list[bool],
        done: bool,
    ) -> None:
        records = encode_records(
            host_id,
            first_node,
            results,
            started_ns=started_ns,
            durations_ns=durations_ns,
            attempts=attempts,
            exhausted=exhausted,
            done=done,
            agent_id=self._agent_id,
            dry_run=self._dry_run,
            max_bytes=MAX_RECORD_BYTES,
        )
        if done:
            self._in_flight.discard((self._run_id, host_id))
        for record, size in records:
            self._outbox.add_record(self._run_id, record, size)


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self._config = config
        self._code = CodeCache()
        self._hosts = HostCache()
        self._plugins = ConnectionPlugins()
        self._runs: dict[str, ExecRun] = {}
        self._host_threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.host_concurrency, thread_name_prefix="genja-host"
        )
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.host_concurrency, thread_name_prefix="genja-task"
        )
        self._connections = ConnectionCache(self._plugins, self._threads)
        self._executor: HostExecutor | None = None
        self._call: Any = None
        self._outbox: Outbox | None = None
        self._in_flight: set[tuple[str, str]] = set()
        self._log_levels = LogLevels(logging.getLogger().getEffectiveLevel())

    async def serve(self) -> str:
        """Run until the coordinator says shut down or the stream ends. Returns why it ended:
        "shutdown" (told to), "refused" (bad token, other protocol) or "lost" (the connection
        ended)."""
        loop = asyncio.get_running_loop()
        self._executor = HostExecutor(self._config.host_concurrency, loop, self._host_threads)
        token = self._config.token
        local = self._config.local
        channel = aio_channel(self._config.coordinator, self._config.tls, eager_reconnect=local)
        async with channel:
            stub = pb_grpc.AgentServiceStub(channel)
            self._call = stub.Connect(
                metadata=((AGENT_TOKEN_METADATA, token),) if token else (),
                wait_for_ready=local or None,
            )
            self._outbox = Outbox(loop, self._call.write)
            try:
                await self._call.write(pb.AgentMessage(hello=self._hello()))
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
                # The call already failed; reading it says how.
                return await self._receive()
            flusher = asyncio.create_task(self._outbox.run())
            # Records reach the client's log through the coordinator (see genja._logging).
            forwarder = OutboxLogHandler(self._outbox, self._log_levels)
            logging.getLogger().addHandler(forwarder)
            try:
                return await self._receive()
            finally:
                logging.getLogger().removeHandler(forwarder)
                flusher.cancel()
                self._executor.cancel_all()
                await self._close_connections("the agent is stopping")
                self._threads.shutdown(wait=False, cancel_futures=True)
                self._host_threads.shutdown(wait=False, cancel_futures=True)
                self._code.close()

    async def _close_connections(self, reason: str, host_ids: list[str] | None = None) -> None:
        # In a thread: closing waits for each transport's thread. Awaited inline, so work that
        # arrives after a CloseConnections message finds the cache without them.
        loop = asyncio.get_running_loop()
        closed = await loop.run_in_executor(None, self._connections.close_all, host_ids)
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
            protocol=PROTOCOL_VERSION,
        )

    async def _receive(self) -> str:
        while True:
            try:
                message = await self._call.read()
            except grpc.aio.AioRpcError as error:
                if error.code() in _REFUSED:
                    log.error("the coordinator refused this agent: %s", error.details())
                    return "refused"
                log.warning("the coordinator stream ended: %s", error.details())
                return "lost"
            if message is grpc.aio.EOF:
                return "lost"
            which = message.WhichOneof("body")
            if which == "code":
                try:
                    self._code.add(message.code)
                except CodeError:
                    log.exception("dropping a code payload")
            elif which == "run_start":
                await self._start_run(message.run_start)
            elif which == "work":
                self._enqueue(message.work)
            elif which == "cancel":
                run = self._runs.get(message.cancel.run_id)
                if run is not None and self._executor is not None:
                    self._executor.cancel(run)
            elif which == "close_connections":
                request = message.close_connections
                await self._close_connections(request.reason, list(request.host_ids) or None)
            elif which == "run_closed":
                self._runs.pop(message.run_closed.run_id, None)
                self._connections.forget_run(message.run_closed.run_id)
                self._log_levels.drop_run(message.run_closed.run_id)
            elif which == "load_query":
                assert self._outbox is not None
                self._outbox.add_message(pb.AgentMessage(load=self._load(message.load_query)))
            elif which == "shutdown":
                log.info("shutting down: %s", message.shutdown.reason)
                await self._call.done_writing()
                return "shutdown"

    def _load(self, query: pb.LoadQuery) -> pb.AgentLoad:
        return pb.AgentLoad(
            query_id=query.query_id,
            hosts_in_flight=len(self._in_flight),
            open_connections=len(self._connections),
            runs=len(self._runs),
        )

    # ---------------------------------------------------------------- runs

    async def _start_run(self, start: pb.RunStart) -> None:
        try:
            root = self._build_tree(start.root)
        except (CodeError, UnknownPluginError, TaskLoadError, TypeError) as error:
            assert self._outbox is not None
            self._outbox.add_message(
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
        own = self._config.settings
        settings = own.connection_settings(
            json.loads(start.connection_settings_json) if start.connection_settings_json else {}
        )
        self._connections.limiter.set_limit(own.login_limit(start.login_limit))
        budget = LoginBudget(start.max_connection_attempts)

        def connect(node: ExecNode, host: Host) -> Any:
            name = node.info.connection_plugin_name
            if not name:
                return None
            return self._connections.get(
                host,
                name,
                settings.get(name) or {},
                run_id=start.run_id,
                before_login=budget.charge,
            )

        def disconnect(node: ExecNode, host: Host) -> None:
            name = node.info.connection_plugin_name
            if name:
                self._connections.discard(host.id, name)

        policies = PolicySettings(retry=retry_from_proto(start.retry), dry_run=start.dry_run)
        pipeline = HostPipeline(
            root,
            connect=connect,
            disconnect=disconnect,
            task_timeout=timeout,
            threads=self._threads,
            policies=default_policies(policies),
            max_result_size=start.max_result_size or DEFAULT_MAX_RESULT_SIZE,
        )
        assert self._outbox is not None
        run = ExecRun(
            start.run_id,
            pipeline,
            _OutboxSink(
                self._outbox,
                start.run_id,
                self._config.agent_id,
                self._in_flight,
                dry_run=start.dry_run,
            ),
            stream=start.stream_nodes,
        )
        if start.HasField("deadline"):
            # The coordinator's wall-clock deadline, on this agent's monotonic clock.
            left = start.deadline.ToNanoseconds() / 1e9 - time.time()
            run.deadline = time.monotonic() + left
            run.deadline_failure = TaskFailureResult(
                message="the run's deadline (runner.options.run_timeout) passed before this "
                "host started",
                kind=TaskFailureKind.TIMEOUT,
                retryable=True,
            )
        self._runs[start.run_id] = run
        self._log_levels.set_run(start.run_id, start.log_level)
        if start.confirm:
            self._outbox.add_message(pb.AgentMessage(accepted=pb.RunAccepted(run_id=start.run_id)))

    def _build_tree(self, spec: pb.TaskSpec) -> ExecNode:
        counter = iter(range(1 << 20))
        return self._build_node(spec, (), counter)

    def _build_node(self, spec: pb.TaskSpec, path: TaskPath, counter: Any) -> ExecNode:
        index = next(counter)
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
        instance = instantiate(target, spec.name)
        info = TaskInfo(
            name=spec.name,
            options=options_from_spec(spec),
            processors=tuple(spec.processors),
            connection_plugin_name=spec.connection_plugin_name or None,
            sub_tasks=TaskInfo.from_definition(definition).sub_tasks,
            retry=definition.retry,
            supports_dry_run=definition.supports_dry_run,
            idempotency=definition.idempotency,
            session_verification=definition.session_verification,
        )
        children = tuple(
            self._build_node(child, (*path, i), counter) for i, child in enumerate(spec.sub_tasks)
        )
        return ExecNode(index, path, info, instance, definition.is_async, children)

    def _enqueue(self, work: pb.WorkBatch) -> None:
        run = self._runs.get(work.run_id)
        if run is None or self._executor is None:
            return  # rejected or closed: the coordinator accounts for these hosts
        self._executor.submit(run, [self._hosts.get(wire) for wire in work.hosts])
