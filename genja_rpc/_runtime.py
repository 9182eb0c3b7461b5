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
import atexit
import concurrent.futures
import contextlib
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Collection, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc

from genja._connection_plugins import connection_settings
from genja._errors import ConfigurationError, RunError
from genja._logging import agent_log_level
from genja._records import HostRecord, failure_record
from genja._runtimes import RunJob, RuntimeBatch
from genja._settings import Settings
from genja.task._results import TaskFailureKind, TaskFailureResult
from genja_rpc._channels import CLIENT_TOKEN_METADATA, aio_channel
from genja_rpc._code import pack_plan
from genja_rpc._convert import HostProtoCache, record_from_proto, task_spec
from genja_rpc._coordinator import RunOrder
from genja_rpc._node import CoordinatorNode, NodeConfig
from genja_rpc._pb import pb, pb_grpc

log = logging.getLogger("genja.runtime")

T = TypeVar("T")

_END = object()


class _OrderMaker:
    """Turns a RunJob into what the coordinator carries out; shared by both runtimes."""

    def __init__(self, settings: Settings) -> None:
        options = settings.runner.options
        self._hosts = HostProtoCache()
        self.task_timeout = options.task_timeout
        self.run_timeout = options.run_timeout
        self._connection_settings = json.dumps(connection_settings(settings), separators=(",", ":"))
        self._logins_per_agent = options.max_logins_per_agent
        self._logins = options.max_logins

    def order(self, job: RunJob) -> RunOrder:
        packed = pack_plan(job.plan)
        return RunOrder(
            run_id=job.run_id,
            root=task_spec(job.plan.root, packed.refs),
            code=[pb.CodeBlob(content_hash=h, payload=p) for h, p in packed.blobs.items()],
            hosts=[self._hosts.get(host) for host in job.hosts],
            task_timeout=self.task_timeout,
            run_timeout=self.run_timeout,
            connection_settings_json=self._connection_settings,
            max_logins_per_agent=self._logins_per_agent,
            max_logins=self._logins,
            stream_nodes=job.stream,
        )

    def request(self, job: RunJob) -> pb.RunRequest:
        order = self.order(job)
        request = pb.RunRequest(
            run_id=order.run_id,
            root=order.root,
            code=order.code,
            hosts=order.hosts,
            connection_settings_json=order.connection_settings_json,
            max_logins_per_agent=order.max_logins_per_agent,
            max_logins=order.max_logins,
            stream_nodes=order.stream_nodes,
        )
        if order.task_timeout is not None:
            request.task_timeout.FromTimedelta(timedelta(seconds=order.task_timeout))
        if order.run_timeout is not None:
            request.run_timeout.FromTimedelta(timedelta(seconds=order.run_timeout))
        return request


def _batch(started: Sequence[str], records: Sequence[pb.HostRecord]) -> RuntimeBatch:
    return RuntimeBatch(tuple(started), tuple(record_from_proto(r) for r in records))


class EmbeddedRuntime:
    def __init__(self, settings: Settings) -> None:
        self._orders = _OrderMaker(settings)
        options = settings.runner.options
        self._workdir = Path(tempfile.mkdtemp(prefix="genja-"))
        address = f"unix:{self._workdir / 'coordinator.sock'}"
        self._node = CoordinatorNode(
            NodeConfig(
                listen=(address,),
                agent_token=secrets.token_urlsafe(32),
                workdir=self._workdir,
                local_agents=settings.runner.worker_count or os.cpu_count() or 1,
                local_agent_address=address,
                host_concurrency=options.host_concurrency,
                agent_start_timeout=options.agent_start_timeout,
                agent_log_level=agent_log_level(settings),
            )
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="genja-coordinator", daemon=True
        )
        self._closed = False
        self._thread.start()
        try:
            self._call(self._node.start(wait_for_agents=False))
        except BaseException:
            self.close()
            raise
        _live_runtimes.add(self)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def agent_pids(self) -> dict[str, int]:
        """Process ids of the local agents, by agent id."""
        return self._node.pool.pids()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _live_runtimes.discard(self)
        if self._loop.is_running():
            try:
                self._call(self._node.stop(), timeout=15)
            except (concurrent.futures.TimeoutError, RuntimeError, OSError):
                log.exception("stopping the embedded coordinator failed")
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()  # its self-pipe sockets would otherwise leak until GC
        shutil.rmtree(self._workdir, ignore_errors=True)

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
        order = self._orders.order(job)
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def deliver(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone
                caller.call_soon_threadsafe(queue.put_nowait, item)

        future = asyncio.run_coroutine_threadsafe(self._pump(order, deliver), self._loop)
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

    async def _pump(self, order: RunOrder, deliver: Callable[[Any], None]) -> None:
        try:
            await self._node.ensure_local_agents()
            async for output in self._node.coordinator.execute(order):
                deliver(_batch(output.started_host_ids, output.records))
        except Exception as error:  # delivered to the caller's loop and raised there
            deliver(error)
        finally:
            deliver(_END)


class RemoteRuntime:
    """Runs plans on a `genja-coordinator serve` at `address`."""

    def __init__(self, address: str, settings: Settings) -> None:
        options = settings.runner.options
        self._orders = _OrderMaker(settings)
        self._address = address
        self._token = ""
        ca_file = options.coordinator_tls_ca
        self._tls_ca = settings.resolve_path(str(ca_file)).read_bytes() if ca_file else None
        token_file = options.coordinator_token_file
        if token_file:
            path = settings.resolve_path(str(token_file))
            try:
                self._token = path.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ConfigurationError(
                    f"runner.options.coordinator_token_file {path}: cannot read: {error.strerror}"
                ) from None

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return ((CLIENT_TOKEN_METADATA, self._token),) if self._token else ()

    async def run(self, job: RunJob) -> AsyncGenerator[RuntimeBatch, None]:
        """Streams the coordinator's records. If the coordinator refuses the run, that is a
        RunError; if it goes away mid-run, every host still owed ends with failures that say
        so, and the records already received are kept."""
        request = self._orders.request(job)
        received: dict[str, int] = {}  # nodes received per host not done yet
        done: set[str] = set()
        problem = "ended the run without finishing it"
        async with aio_channel(self._address, self._tls_ca) as channel:
            call = pb_grpc.CoordinatorServiceStub(channel).Run(request, metadata=self._metadata)
            try:
                async for event in call:
                    if event.WhichOneof("body") == "finished":
                        return
                    batch = _batch(event.results.started_host_ids, event.results.records)
                    _count_received(batch.records, received, done)
                    yield batch
            except grpc.aio.AioRpcError as error:
                if not received and not done and error.code() != grpc.StatusCode.CANCELLED:
                    raise RunError(
                        f"coordinator at {self._address}: {error.code().name}: {error.details()}"
                    ) from None
                problem = f"stopped answering ({error.code().name}: {error.details()})"
            finally:
                call.cancel()
        failure = TaskFailureResult(
            message=f"the coordinator at {self._address} {problem} before this host finished",
            kind=TaskFailureKind.INTERNAL,
            retryable=True,
        )
        nodes = len(list(job.plan.nodes()))
        yield RuntimeBatch(
            records=tuple(
                failure_record(host.id, received.get(host.id, 0), nodes, failure)
                for host in job.hosts
                if host.id not in done
            )
        )

    async def close_connections(self, host_ids: Collection[str] | None = None) -> None:
        async with aio_channel(self._address, self._tls_ca) as channel:
            stub = pb_grpc.CoordinatorServiceStub(channel)
            try:
                await stub.CloseConnections(
                    pb.CloseConnectionsRequest(host_ids=list(host_ids or ())),
                    metadata=self._metadata,
                )
            except grpc.aio.AioRpcError as error:
                raise RunError(
                    f"coordinator at {self._address}: {error.code().name}: {error.details()}"
                ) from None

    def close(self) -> None:
        """Nothing to release: each call opens its own channel."""


def _count_received(
    records: Sequence[HostRecord], received: dict[str, int], done: set[str]
) -> None:
    for record in records:
        if record.done:
            done.add(record.host_id)
            received.pop(record.host_id, None)
        else:
            received[record.host_id] = record.end_node


_live_runtimes: weakref.WeakSet[EmbeddedRuntime] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for runtime in list(_live_runtimes):
        runtime.close()


def open_runtime(settings: Settings) -> EmbeddedRuntime | RemoteRuntime:
    """The `agents` runner: a coordinator server's when `runner.options.coordinator` names
    one, else an embedded coordinator with local agents."""
    address = settings.runner.options.coordinator
    if address:
        return RemoteRuntime(address, settings)
    return EmbeddedRuntime(settings)
