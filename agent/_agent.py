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
import contextlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
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
from agent._supervision import LoopWatchdog, TaskThreads
from genja._agent_settings import AgentSettings
from genja._host import Host
from genja._plan import TaskPath
from genja._runner_defaults import DEFAULT_HOST_CONCURRENCY, DEFAULT_MAX_RESULT_SIZE
from genja.task._definition import TaskInfo, definition_of, is_task
from genja.task._results import HostTaskResult, TaskFailureKind, TaskFailureResult
from genja_rpc._agent_state import RunJournal, StartJournal
from genja_rpc._channels import AGENT_TOKEN_METADATA, ChannelTLS, aio_channel
from genja_rpc._convert import (
    HostCache,
    encode_records,
    kind_to_proto,
    options_from_spec,
    retry_from_proto,
)
from genja_rpc._liveness import TICK_SECONDS, Silence
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
    # Where its supervisor reads what it cannot be told over the stream (genja_rpc._agent_state).
    state_dir: Path | None = None
    # Its own settings file (--settings): its paths and login cap win over a run's.
    settings: AgentSettings = field(default_factory=AgentSettings)


class _OutboxSink:
    """A run's reports, encoded as host records and queued for the coordinator. `in_flight`
    (shared by the agent's runs) holds the (run, host) pairs begun and not done."""

    __slots__ = ("_agent_id", "_dry_run", "_in_flight", "_journal", "_outbox", "_run_id")

    def __init__(
        self,
        outbox: Outbox,
        run_id: str,
        agent_id: str,
        in_flight: set[tuple[str, str]],
        *,
        dry_run: bool,
        journal: RunJournal | None,
    ) -> None:
        self._outbox = outbox
        self._run_id = run_id
        self._agent_id = agent_id
        self._in_flight = in_flight
        self._dry_run = dry_run
        self._journal = journal

    def started(self, host_id: str) -> None:
        if self._journal is not None:  # first: the report may never leave if the task kills us
            self._journal.started(host_id)
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
        self._threads = TaskThreads(config.host_concurrency, on_stuck=self._report_stuck)
        self._connections = ConnectionCache(self._plugins, self._threads)
        self._executor: HostExecutor | None = None
        self._call: Any = None
        self._outbox: Outbox | None = None
        self._journal = StartJournal(config.state_dir) if config.state_dir else None
        self._silence = Silence()
        self._timeout: float | None = None  # the coordinator's, once it said (Liveness)
        self._liveness: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight: set[tuple[str, str]] = set()
        self._log_levels = LogLevels(logging.getLogger().getEffectiveLevel())

    async def serve(self) -> str:
        """Run until the coordinator says shut down or the stream ends. Returns why it ended:
        "shutdown" (told to), "refused" (bad token, other protocol) or "lost" (the connection
        ended)."""
        loop = self._loop = asyncio.get_running_loop()
        self._executor = HostExecutor(self._config.host_concurrency, loop, self._host_threads)
        token = self._config.token
        local = self._config.local
        channel = aio_channel(self._config.coordinator, self._config.tls, eager_reconnect=local)
        watchdog = LoopWatchdog(loop, self._config.state_dir)
        watchdog.start()
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
                watchdog.stop()
                return await self._receive()
            flusher = asyncio.create_task(self._outbox.run())
            # Records reach the client's log through the coordinator (see genja._logging).
            forwarder = OutboxLogHandler(self._outbox, self._log_levels)
            logging.getLogger().addHandler(forwarder)
            try:
                return await self._receive_while_alive()
            finally:
                logging.getLogger().removeHandler(forwarder)
                watchdog.stop()
                flusher.cancel()
                for task in list(self._liveness):
                    task.cancel()
                for run in self._runs.values():  # nobody hears about them any more
                    run.cancelled = True
                self._executor.cancel_all()
                await self._close_connections("the agent is stopping")
                self._threads.shutdown(wait=False, cancel_futures=True)
                self._host_threads.shutdown(wait=False, cancel_futures=True)
                self._code.close()

    async def _receive_while_alive(self) -> str:
        """`_receive`, until the coordinator says nothing for longer than its liveness timeout
        (remote agents only: a local agent lives and dies with its coordinator)."""
        if self._config.local:
            return await self._receive()
        receiver = asyncio.create_task(self._receive())
        watcher = asyncio.create_task(self._watch_coordinator())
        try:
            await asyncio.wait({receiver, watcher}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            receiver.cancel()
            raise
        finally:
            watcher.cancel()
        if receiver.done():
            return receiver.result()
        # The coordinator went silent: end the call; the caller reconnects.
        receiver.cancel()
        self._call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver
        return "lost"

    async def _watch_coordinator(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            silence = self._silence.check()
            timeout = self._timeout
            if timeout is not None and silence >= timeout:
                log.warning(
                    "the coordinator at %s stopped answering %.0f s ago; reconnecting",
                    self._config.coordinator, silence,
                )  # fmt: skip
                return

    # ---------------------------------------------------------------- liveness

    def _on_liveness(self, liveness: pb.Liveness) -> None:
        self._timeout = liveness.timeout.ToTimedelta().total_seconds() or None
        interval = liveness.heartbeat_interval.ToTimedelta().total_seconds()
        if interval > 0:
            self._liveness.add(asyncio.create_task(self._heartbeats(interval)))

    async def _heartbeats(self, interval: float) -> None:
        # From the event loop on purpose: a blocked loop must fall silent.
        while True:
            self._heartbeat()
            await asyncio.sleep(interval)

    def _heartbeat(self) -> None:
        if self._outbox is None:
            return
        count, hosts = self._threads.stuck()
        heartbeat = pb.AgentHeartbeat(stuck_workers=count, stuck_host_ids=hosts)
        self._outbox.add_message(pb.AgentMessage(heartbeat=heartbeat))

    def _report_stuck(self) -> None:
        """A task call got stuck: tell the supervisor now. Messages go out ahead of records,
        so it hears before the host's timeout result ends the run."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the agent is ending
                loop.call_soon_threadsafe(self._heartbeat)

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
            self._silence.heard()
            which = message.WhichOneof("body")
            if which == "heartbeat":
                pass
            elif which == "liveness":
                self._on_liveness(message.liveness)
            elif which == "code":
                try:
                    self._code.add(message.code)
                except CodeError:
                    log.exception("dropping a code payload")
            elif which == "run_start":
                await self._start_run(message.run_start)
            elif which == "work":
                self._enqueue(message.work)
            elif which == "drain":
                log.warning("beginning no more hosts: %s", message.drain.reason)
                for draining in self._runs.values():
                    draining.cancelled = True  # no new host begins; running ones finish
            elif which == "cancel":
                run = self._runs.get(message.cancel.run_id)
                if run is not None and self._executor is not None:
                    self._executor.cancel(run)
            elif which == "close_connections":
                request = message.close_connections
                await self._close_connections(request.reason, list(request.host_ids) or None)
            elif which == "run_closed":
                self._runs.pop(message.run_closed.run_id, None)
                if self._journal is not None:
                    self._journal.close_run(message.run_closed.run_id)
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
        journal = self._journal.open_run(start.run_id) if self._journal is not None else None
        sink = _OutboxSink(
            self._outbox,
            start.run_id,
            self._config.agent_id,
            self._in_flight,
            dry_run=start.dry_run,
            journal=journal,
        )
        run = ExecRun(start.run_id, pipeline, sink, stream=start.stream_nodes)
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
