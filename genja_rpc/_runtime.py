"""The `agents` runner: runtimes that run plans on agent processes over gRPC.

`EmbeddedRuntime` (the default) runs a coordinator inside the client process, on its own thread
and event loop (so it outlives the short-lived loops of the sync API), with a pool of local
agent processes that dial in over a unix socket in a private folder. The agents are started as
soon as the runtime exists; the first run waits for them to connect.

`RemoteRuntime` (settings: `runner.options.coordinator`) sends each run to a
`genja-coordinator serve` and streams its records back.

Both hand `Genja` the agents' host records as they came (`WireRecord`): nothing is decoded here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import shutil
import threading
import time
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Collection,
    Coroutine,
    Sequence,
)
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration

from genja._connection_plugins import connection_settings, local_paths_set
from genja._errors import ConfigurationError, RunError
from genja._logging import AGENTS_LOGGER, agent_log_level
from genja._records import HostRecord, failure_record
from genja._runtimes import AttachedRun, RunJob, RuntimeBatch
from genja._secrets import read_file, read_secret_file, read_token
from genja._settings import Settings
from genja._status import CoordinatorStatus
from genja.task._results import TaskFailureKind, TaskFailureResult
from genja_rpc._channels import CLIENT_TOKEN_METADATA, ChannelTLS, aio_channel, is_local
from genja_rpc._code import pack_plan
from genja_rpc._convert import (
    HostWireCache,
    plan_from_spec,
    record_from_proto,
    reemit_log,
    retry_to_proto,
    status_from_proto,
    task_spec,
)
from genja_rpc._coordinator import RunOrder
from genja_rpc._liveness import TICK_SECONDS, Silence, heartbeat_interval
from genja_rpc._node import CoordinatorNode, NodeConfig
from genja_rpc._pb import pb, pb_grpc
from genja_rpc._workdir import make_workdir

log = logging.getLogger("genja.runtime")

T = TypeVar("T")

_END = object()
_OPTION = "runner.options."
_REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
_CANCELLED = grpc.StatusCode.CANCELLED
# Time a status listing may take: the coordinator waits up to 2s for its agents' answers.
_STATUS_SECONDS = 30.0
# Time a client that stops a run gives the coordinator to hear of it.
_CANCEL_SECONDS = 10.0


class _OrderMaker:
    """Turns a RunJob into what the coordinator carries out; shared by both runtimes."""

    def __init__(self, settings: Settings, *, local_paths: bool = True) -> None:
        """Without `local_paths`, the connection plugins' file paths stay here: the agents
        are on other machines (a coordinator server's)."""
        options = settings.runner.options
        self._hosts = HostWireCache()
        self.task_timeout = options.task_timeout
        self.run_timeout = options.run_timeout
        plugins = connection_settings(settings, paths=local_paths)
        self._connection_settings = json.dumps(plugins, separators=(",", ":"))
        self._logins_per_agent = options.max_logins_per_agent
        self._logins = options.max_logins
        self._retry = retry_to_proto(settings.runner.retry)
        self._login_attempts = settings.runner.max_connection_attempts
        self._max_result_size = options.max_result_size

    def order(self, job: RunJob) -> RunOrder:
        packed = pack_plan(job.plan)
        return RunOrder(
            run_id=job.run_id,
            root=task_spec(job.plan.root, packed.refs),
            code=list(packed.blobs.values()),
            hosts=[self._hosts.get(host) for host in job.hosts],
            task_timeout=self.task_timeout,
            run_timeout=self.run_timeout,
            connection_settings_json=self._connection_settings,
            max_logins_per_agent=self._logins_per_agent,
            max_logins=self._logins,
            stream_nodes=job.stream,
            retry=self._retry,
            max_connection_attempts=self._login_attempts,
            dry_run=job.plan.dry_run,
            max_result_size=self._max_result_size,
        )

    def request(self, job: RunJob) -> pb.RunRequest:
        order = self.order(job)
        request = pb.RunRequest(
            run_id=order.run_id,
            root=order.root,
            code=order.code,
            hosts=[entry.wire for entry in order.hosts],
            connection_settings_json=order.connection_settings_json,
            max_logins_per_agent=order.max_logins_per_agent,
            max_logins=order.max_logins,
            stream_nodes=order.stream_nodes,
            retry=order.retry,
            max_connection_attempts=order.max_connection_attempts,
            dry_run=order.dry_run,
            # What this process would log of the agents' records: the rest need not travel.
            log_level=logging.getLogger(AGENTS_LOGGER).getEffectiveLevel(),
            max_result_size=order.max_result_size,
        )
        if order.task_timeout is not None:
            request.task_timeout.FromTimedelta(timedelta(seconds=order.task_timeout))
        if order.run_timeout is not None:
            request.run_timeout.FromTimedelta(timedelta(seconds=order.run_timeout))
        return request


@dataclass(frozen=True, slots=True)
class RunTiming:
    """Where a run's time went, in seconds from when the runtime was asked to run it:
    `agents_ready` (local agents started, if needed, and connected), `first_result` (code and
    hosts sent, the first host record back), `finished` (the last record). For the first run,
    `agents_started_before` is how long before the run the agent processes were started (0:
    at the run itself)."""

    agents_ready: float
    first_result: float
    finished: float
    agents_started_before: float

    def __str__(self) -> str:
        return (
            f"agents ready after {self.agents_ready:.3f}s, first result after "
            f"{self.first_result:.3f}s, done after {self.finished:.3f}s"
        )


def _batch(started: Sequence[str], records: Sequence[pb.HostRecord]) -> RuntimeBatch:
    return RuntimeBatch(tuple(started), tuple(record_from_proto(r) for r in records))


class EmbeddedRuntime:
    def __init__(self, settings: Settings) -> None:
        self._created = time.perf_counter()
        self.last_timing: RunTiming | None = None
        self._orders = _OrderMaker(settings)
        options = settings.runner.options
        self._loop = asyncio.new_event_loop()
        self._workdir = make_workdir()
        self._node = CoordinatorNode(
            NodeConfig(
                workdir=self._workdir,
                local_agents=settings.runner.worker_count or os.cpu_count() or 1,
                host_concurrency=options.host_concurrency,
                agent_start_timeout=options.agent_start_timeout,
                agent_log_level=agent_log_level(settings),
                heartbeat_timeout=options.heartbeat_timeout,
                agent_memory_limit=options.agent_memory_limit,
            ),
            loop=self._loop,
        )
        # The agents first: their start (a Python interpreter, its imports) takes longer than
        # ours to serve, so the two overlap; they wait for the socket to appear.
        self._node.pool.start_missing()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="genja-coordinator", daemon=True
        )
        self._closed = False
        # Stops the node and removes the folder on close(), when this runtime is garbage
        # collected unclosed (a Genja dropped without close), or at interpreter exit.
        self._finalizer = weakref.finalize(
            self, _shut_down, self._loop, self._node, self._thread, self._workdir
        )
        self._thread.start()
        try:
            self._call(self._node.start(wait_for_agents=False))
        except BaseException:
            self.close()
            raise

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def agent_pids(self) -> dict[str, int]:
        """Process ids of the local agents, by agent id."""
        return self._node.pool.pids()

    @property
    def moved_hosts(self) -> int:
        """Hosts sent to another agent (a dead agent's replacement) because theirs ended before
        it began them, since this runtime started."""
        return self._node.coordinator.moved_hosts

    def close(self) -> None:
        self._closed = True
        self._finalizer()  # once; later calls do nothing

    async def close_connections(self, host_ids: Collection[str] | None = None) -> None:
        """Have the agents close the connections they hold (the agents stay up)."""
        if self._closed:
            return
        reason = "the client asked to close connections"
        hosts = list(host_ids or ())
        self._loop.call_soon_threadsafe(self._node.coordinator.close_connections, reason, hosts)

    async def run(self, job: RunJob) -> AsyncGenerator[RuntimeBatch, None]:
        if self._closed:
            raise RunError("this Genja was closed; make a new one to run tasks")
        started = time.perf_counter()
        order = self._orders.order(job)
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def deliver(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone
                caller.call_soon_threadsafe(queue.put_nowait, item)

        future = asyncio.run_coroutine_threadsafe(self._pump(order, deliver, started), self._loop)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not future.done():
                future.cancel()

    async def _pump(self, order: RunOrder, deliver: Callable[[Any], None], started: float) -> None:
        first_result = None
        try:
            await self._node.ensure_local_agents()
            ready = time.perf_counter()
            async for output in self._node.coordinator.execute(order):
                if first_result is None and output.records:
                    first_result = time.perf_counter()
                deliver(_batch(output.started_host_ids, output.records))
            finished = time.perf_counter()
            self.last_timing = RunTiming(
                agents_ready=ready - started,
                first_result=(first_result or finished) - started,
                finished=finished - started,
                agents_started_before=max(started - self._created, 0.0),
            )
            log.debug("run %s: %s", order.run_id, self.last_timing)
        except Exception as error:  # delivered to the caller's loop and raised there
            deliver(error)
        finally:
            deliver(_END)


class RemoteRuntime:
    """Runs plans on a `genja-coordinator serve` at `address`."""

    def __init__(self, address: str, settings: Settings) -> None:
        options = settings.runner.options
        self._orders = _OrderMaker(settings, local_paths=False)
        # Said once, at the first run: these stay here (see genja._agent_settings).
        self._kept_paths = local_paths_set(settings)
        self._source = settings.source
        self._address = address
        self._heartbeat_timeout = options.heartbeat_timeout
        self._tls = _client_tls(settings, address)
        token_file = options.coordinator_token_file
        self._token = (
            read_token(settings.resolve_path(token_file), _OPTION + "coordinator_token_file")
            if token_file
            else ""
        )

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return ((CLIENT_TOKEN_METADATA, self._token),) if self._token else ()

    def _heartbeat_interval(self) -> Duration:
        interval = Duration()
        interval.FromTimedelta(timedelta(seconds=heartbeat_interval(self._heartbeat_timeout)))
        return interval

    async def run(self, job: RunJob) -> AsyncGenerator[RuntimeBatch, None]:
        """Streams the coordinator's records. A coordinator that refuses this client is a
        ConfigurationError, one that cannot be reached a RunError; if it goes away mid-run,
        every host still owed ends with failures that say so, and the records already
        received are kept. The run goes on at the coordinator if this client dies or loses
        it (see `attach`); closing this iterator early cancels it there."""
        if self._kept_paths:
            log.warning(
                "%s: %s name files on this machine: runs on the coordinator server at %s use "
                "its agents' own (genja-agent --settings, genja-coordinator serve "
                "--agent-settings)",
                self._source or "settings", ", ".join(self._kept_paths), self._address,
            )  # fmt: skip
            self._kept_paths = []
        request = self._orders.request(job)
        request.heartbeat_interval.CopyFrom(self._heartbeat_interval())
        host_ids = [host.id for host in job.hosts]
        async with aio_channel(self._address, self._tls) as channel:
            stub = pb_grpc.CoordinatorServiceStub(channel)
            call = stub.Run(request, metadata=self._metadata)
            del request
            batches = self._follow(call, job.run_id, host_ids, job.plan.node_count)
            try:
                async with contextlib.aclosing(batches):
                    async for batch in batches:
                        yield batch
            except (GeneratorExit, asyncio.CancelledError):
                await self._cancel(stub, job.run_id, "the client stopped the run")
                raise

    @contextlib.asynccontextmanager
    async def attach(self, run_id: str) -> AsyncIterator[AttachedRun]:
        """The run `run_id` of this client's identity, from its first record (see
        `genja._runtimes.AttachSource`); leaving the block detaches, the run goes on."""
        async with aio_channel(self._address, self._tls) as channel:
            stub = pb_grpc.CoordinatorServiceStub(channel)
            attach = pb.AttachRequest(run_id=run_id, heartbeat_interval=self._heartbeat_interval())
            call = stub.Attach(attach, metadata=self._metadata)
            try:
                first = await call.read()
            except grpc.aio.AioRpcError as error:
                raise self._error(error) from None
            if first is grpc.aio.EOF or first.WhichOneof("body") != "attached":
                raise RunError(
                    f"the coordinator at {self._address} did not describe run {run_id!r}"
                )
            header = first.attached
            plan = plan_from_spec(header.root, dry_run=header.dry_run)
            host_ids = tuple(header.host_ids)
            del first, header
            yield AttachedRun(
                run_id, plan, host_ids, self._follow(call, run_id, host_ids, plan.node_count)
            )

    async def _follow(
        self, call: Any, run_id: str, host_ids: Sequence[str], nodes: int
    ) -> AsyncGenerator[RuntimeBatch, None]:
        """A Run or Attach call's results as batches, the agents' log records re-emitted here.
        Hosts still owed when the call ends early fail saying why."""
        received: dict[str, int] = {}  # nodes received per host not done yet
        done: set[str] = set()
        problem = f"the coordinator at {self._address} ended the run without finishing it"
        try:
            async for event in _unless_silent(call, self._heartbeat_timeout):
                which = event.WhichOneof("body")
                if which == "finished":
                    reason = event.finished.cancelled
                    if not reason:
                        return
                    problem = f"the run was cancelled ({reason})"
                    break
                if which == "logs":
                    for record in event.logs.records:
                        reemit_log(record.agent_id, record)
                elif which == "results":
                    batch = _batch(event.results.started_host_ids, event.results.records)
                    _count_received(batch.records, received, done)
                    yield batch
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code in _REFUSED or (not received and not done and code != _CANCELLED):
                raise self._error(error) from None
            problem = (
                f"the coordinator at {self._address} stopped answering ({code.name}: "
                f"{error.details()}); if it is still up, the run goes on there: "
                f"`genja attach {run_id}` gets its results"
            )
        except _Silent as silent:
            log.warning(
                "the coordinator at %s stopped answering %.0f s ago", self._address, silent.seconds
            )
            problem = (
                f"the coordinator at {self._address} stopped answering {silent.seconds:.0f} s "
                f"ago; if it comes back, the run goes on there: `genja attach {run_id}` gets "
                "its results"
            )
        finally:
            call.cancel()
        failure = TaskFailureResult(
            message=f"{problem} before this host finished",
            kind=TaskFailureKind.INTERNAL,
            retryable=True,
        )
        yield RuntimeBatch(
            records=tuple(
                failure_record(host_id, received.get(host_id, 0), nodes, failure)
                for host_id in host_ids
                if host_id not in done
            )
        )

    async def _cancel(self, stub: Any, run_id: str, reason: str) -> None:
        """Cancel a run at the coordinator; best effort (it may be gone already)."""
        try:
            await stub.CancelRun(
                pb.CancelRunRequest(run_id=run_id, reason=reason),
                metadata=self._metadata,
                timeout=_CANCEL_SECONDS,
            )
        except grpc.aio.AioRpcError as error:
            log.warning("cannot cancel run %s at %s: %s", run_id, self._address, error.details())

    async def close_connections(self, host_ids: Collection[str] | None = None) -> None:
        async with aio_channel(self._address, self._tls) as channel:
            stub = pb_grpc.CoordinatorServiceStub(channel)
            try:
                await stub.CloseConnections(
                    pb.CloseConnectionsRequest(host_ids=list(host_ids or ())),
                    metadata=self._metadata,
                )
            except grpc.aio.AioRpcError as error:
                raise self._error(error) from None

    async def status(self) -> CoordinatorStatus:
        """The coordinator's pools and agents, and what each agent is doing."""
        async with aio_channel(self._address, self._tls) as channel:
            stub = pb_grpc.CoordinatorServiceStub(channel)
            try:
                reply = await stub.Status(
                    pb.StatusRequest(), metadata=self._metadata, timeout=_STATUS_SECONDS
                )
            except grpc.aio.AioRpcError as error:
                raise self._error(error) from None
        return status_from_proto(reply, self._address)

    def _error(self, error: grpc.aio.AioRpcError) -> ConfigurationError | RunError:
        """What a coordinator's error means here: a refused client, or a run it does not know,
        is a configuration error (exit 2 from the CLI), anything else a RunError (with a hint
        when TLS is in play)."""
        code = error.code()
        where = f"the coordinator at {self._address}"
        if code in _REFUSED:
            return ConfigurationError(
                f"{where} refused this client ({code.name}): {error.details()}"
            )
        if code == grpc.StatusCode.NOT_FOUND:  # a run it does not know
            return ConfigurationError(f"{where}: {error.details()}")
        hint = ""
        if code == grpc.StatusCode.UNAVAILABLE and self._tls is not None:
            hint = (
                f" (with TLS: is {_OPTION}coordinator_tls_ca the CA of the coordinator's "
                "certificate, and, if it asks for one, is this client's certificate valid and "
                "signed by the CA it trusts?)"
            )
        return RunError(f"{where}: {code.name}: {error.details()}{hint}")

    def close(self) -> None:
        """Nothing to release: each call opens its own channel."""


class _Silent(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


async def _unless_silent(call: Any, timeout: float) -> AsyncGenerator[pb.RunEvent, None]:
    """The events of a Run call; raises `_Silent` when the coordinator, having sent a heartbeat
    (a coordinator too old to send any is never taken for frozen), says nothing for `timeout`
    seconds. The call is read by a task of its own: giving up on a read must not end it."""
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def read() -> None:
        try:
            # read(), not `async for`: an attach read its first event already, and grpc
            # refuses a mix of the two styles on one call.
            while (event := await call.read()) is not grpc.aio.EOF:
                await queue.put(event)
        except BaseException as error:  # raised again below
            await queue.put(error)
            return
        await queue.put(_END)

    reader = asyncio.create_task(read())
    silence = Silence()
    beating = False
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), TICK_SECONDS)
            except asyncio.TimeoutError:
                quiet = silence.check()
                if beating and quiet >= timeout:
                    raise _Silent(quiet) from None
                continue
            silence.heard()
            silence.check()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            beating = beating or item.WhichOneof("body") == "heartbeat"
            yield item
    finally:
        reader.cancel()


def _count_received(
    records: Sequence[HostRecord], received: dict[str, int], done: set[str]
) -> None:
    for record in records:
        if record.done:
            done.add(record.host_id)
            received.pop(record.host_id, None)
        else:
            received[record.host_id] = record.end_node


def _client_tls(settings: Settings, address: str) -> ChannelTLS | None:
    """TLS for the channel to a coordinator server. Beyond loopback it is required, so that
    the client's token or certificate only ever goes to a coordinator it verified."""
    options = settings.runner.options
    ca, cert, key = options.coordinator_tls_ca, options.coordinator_tls_cert, None
    if bool(cert) != bool(options.coordinator_tls_key):
        raise ConfigurationError(
            f"{_OPTION}coordinator_tls_cert and coordinator_tls_key go together"
        )
    if options.coordinator_tls_key:
        key = read_secret_file(
            settings.resolve_path(options.coordinator_tls_key), _OPTION + "coordinator_tls_key"
        )
    if ca is None:
        if cert is not None:
            raise ConfigurationError(
                f"{_OPTION}coordinator_tls_cert needs coordinator_tls_ca to verify the "
                "coordinator with"
            )
        if not is_local(address):
            raise ConfigurationError(
                f"{_OPTION}coordinator {address} is beyond loopback: set "
                f"{_OPTION}coordinator_tls_ca to verify it before sending it a credential"
            )
        return None
    return ChannelTLS(
        ca=read_file(settings.resolve_path(ca), _OPTION + "coordinator_tls_ca"),
        cert=read_file(settings.resolve_path(cert), _OPTION + "coordinator_tls_cert")
        if cert is not None
        else None,
        key=key,
    )


def _shut_down(
    loop: asyncio.AbstractEventLoop,
    node: CoordinatorNode,
    thread: threading.Thread,
    workdir: Path,
) -> None:
    """Stop an embedded runtime's node and loop thread, and remove its folder. Holds no
    reference to the runtime, so that it can run when the runtime is collected."""
    if threading.current_thread() is thread:
        # Collected on its own loop's thread: waiting here for the loop would wait forever.
        threading.Thread(target=_shut_down, args=(loop, node, thread, workdir)).start()
        return
    if loop.is_running():
        try:
            asyncio.run_coroutine_threadsafe(node.stop(), loop).result(timeout=15)
        except (concurrent.futures.TimeoutError, RuntimeError, OSError):
            log.exception("stopping the embedded coordinator failed")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
    if not thread.is_alive() and not loop.is_closed():
        loop.close()  # its self-pipe sockets would otherwise leak until GC
    shutil.rmtree(workdir, ignore_errors=True)


def open_runtime(settings: Settings) -> EmbeddedRuntime | RemoteRuntime:
    """The `agents` runner: a coordinator server's when `runner.options.coordinator` names
    one, else an embedded coordinator with local agents."""
    address = settings.runner.options.coordinator
    if address:
        return RemoteRuntime(address, settings)
    return EmbeddedRuntime(settings)
