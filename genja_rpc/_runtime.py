"""Runtimes the `Genja` facade runs plans on.

`EmbeddedRuntime` (the default) runs a coordinator inside the client process, on its own thread
and event loop (so it outlives the short-lived loops of the sync API), with a pool of local
agent processes that dial in over a unix socket in a private folder.

`RemoteRuntime` (settings: `runner.options.coordinator`) sends each run to a
`genja-coordinator serve` and streams its results back.
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
from collections.abc import AsyncGenerator, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc

from genja._connection_plugins import connection_settings
from genja._errors import ConfigurationError, RunError
from genja._host import Host
from genja._logging import agent_log_level
from genja._plan import NodeOutcome, RunPlan, RuntimeBatch
from genja._settings import Settings
from genja.task._results import TaskFailureKind, TaskFailureResult
from genja_rpc._channels import CLIENT_TOKEN_METADATA, aio_channel
from genja_rpc._code import pack_plan
from genja_rpc._convert import HostProtoCache, host_to_proto, outcome_from_proto, task_spec
from genja_rpc._node import CoordinatorNode, NodeConfig
from genja_rpc._pb import pb, pb_grpc

log = logging.getLogger("genja.runtime")

T = TypeVar("T")

_END = object()


def build_request(
    plan: RunPlan,
    hosts: Sequence[Host],
    *,
    task_timeout: float | None = None,
    run_timeout: float | None = None,
    settings: Settings | None = None,
    host_protos: HostProtoCache | None = None,
) -> pb.RunRequest:
    packed = pack_plan(plan)
    request = pb.RunRequest(
        root=task_spec(plan.root, packed.refs),
        max_depth=plan.max_depth,
        code=[pb.CodeBlob(content_hash=h, payload=p) for h, p in packed.blobs.items()],
        hosts=[host_protos.get(h) if host_protos else host_to_proto(h) for h in hosts],
    )
    if settings is not None:
        request.connection_settings_json = json.dumps(
            connection_settings(settings), separators=(",", ":")
        )
        request.max_logins_per_agent = settings.runner.options.max_logins_per_agent
        request.max_logins = settings.runner.options.max_logins
    if task_timeout is not None:
        request.task_timeout.FromTimedelta(timedelta(seconds=task_timeout))
    if run_timeout is not None:
        request.run_timeout.FromTimedelta(timedelta(seconds=run_timeout))
    return request


class EmbeddedRuntime:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._host_protos = HostProtoCache()
        options = settings.runner.options
        self._task_timeout = options.task_timeout
        self._run_timeout = options.run_timeout
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
            self._call(self._node.start())
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

    def close_connections(self) -> None:
        """Have every agent close the connections it holds (the agents stay up)."""
        if self._closed:
            return
        self._call(
            self._node.coordinator.close_connections("the client asked to close connections")
        )

    async def run(self, plan: RunPlan, hosts: Sequence[Host]) -> AsyncGenerator[RuntimeBatch, None]:
        if self._closed:
            raise RunError("this Genja was closed; make a new one to run tasks")
        # The hosts stay apart from the request in-process: copying every host into it would
        # only be undone when the coordinator copies them into work batches.
        messages = [self._host_protos.get(host) for host in hosts]
        request = build_request(
            plan,
            (),
            task_timeout=self._task_timeout,
            run_timeout=self._run_timeout,
            settings=self._settings,
        )
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def deliver(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone
                caller.call_soon_threadsafe(queue.put_nowait, item)

        future = asyncio.run_coroutine_threadsafe(
            self._pump(request, messages, deliver), self._loop
        )
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

    async def _pump(self, request: pb.RunRequest, hosts: list[pb.Host], deliver: Any) -> None:
        try:
            await self._node.ensure_local_agents()
            async for batch in self._node.coordinator.execute(request, hosts=hosts):
                deliver(batch)
        except Exception as error:  # delivered to the caller's loop and raised there
            deliver(error)
        finally:
            deliver(_END)


class RemoteRuntime:
    """Runs plans on a `genja-coordinator serve` at `address`."""

    def __init__(self, address: str, settings: Settings) -> None:
        options = settings.runner.options
        self._settings = settings
        self._host_protos = HostProtoCache()
        self._address = address
        self._task_timeout = options.task_timeout
        self._run_timeout = options.run_timeout
        self._token = ""
        ca_file = options.coordinator_tls_ca
        self._tls_ca = settings.resolve_path(ca_file).read_bytes() if ca_file else None
        token_file = options.coordinator_token_file
        if token_file:
            path = settings.resolve_path(token_file)
            try:
                self._token = path.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ConfigurationError(
                    f"runner.options.coordinator_token_file {path}: cannot read: {error.strerror}"
                ) from None

    async def run(self, plan: RunPlan, hosts: Sequence[Host]) -> AsyncGenerator[RuntimeBatch, None]:
        """Streams the coordinator's results. If the coordinator refuses the run, that is a
        RunError; if it goes away mid-run, every (host, task) still owed ends as a failure
        that says so, and the results already received are kept."""
        request = build_request(
            plan,
            hosts,
            task_timeout=self._task_timeout,
            run_timeout=self._run_timeout,
            settings=self._settings,
            host_protos=self._host_protos,
        )
        metadata = ((CLIENT_TOKEN_METADATA, self._token),) if self._token else ()
        received: set[tuple[str, tuple[int, ...]]] = set()
        problem = "ended the run without finishing it"
        async with aio_channel(self._address, self._tls_ca) as channel:
            call = pb_grpc.CoordinatorServiceStub(channel).Run(request, metadata=metadata)
            try:
                async for event in call:
                    if event.WhichOneof("body") == "finished":
                        return
                    outcomes = tuple(outcome_from_proto(m) for m in event.results.results)
                    received.update((o.host_id, o.path) for o in outcomes)
                    yield RuntimeBatch(tuple(event.results.started_host_ids), outcomes)
            except grpc.aio.AioRpcError as error:
                if not received and error.code() != grpc.StatusCode.CANCELLED:
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
        yield RuntimeBatch(
            outcomes=tuple(
                NodeOutcome(host.id, node.path, failure)
                for host in hosts
                for node in plan.nodes()
                if (host.id, node.path) not in received
            )
        )

    def close(self) -> None:
        """Nothing to release: each run opens its own channel."""


_live_runtimes: weakref.WeakSet[EmbeddedRuntime] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for runtime in list(_live_runtimes):
        runtime.close()


def open_runtime(settings: Settings) -> EmbeddedRuntime | RemoteRuntime:
    address = settings.runner.options.coordinator
    if address:
        return RemoteRuntime(address, settings)
    return EmbeddedRuntime(settings)
