"""Runtimes the `Genja` facade runs plans on.

`EmbeddedRuntime` runs a coordinator inside the client process, on its own thread and event
loop (so it outlives the short-lived loops of the sync API), with a pool of local agent
processes that dial in over a unix socket in a private folder.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import os
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from genja._errors import RunError
from genja._host import Host
from genja._logging import agent_log_level
from genja._plan import NodeOutcome, RunPlan
from genja._settings import Settings
from genja_rpc._agent_service import AgentServicer
from genja_rpc._channels import aio_server
from genja_rpc._code import pack_plan
from genja_rpc._convert import host_to_proto, task_spec
from genja_rpc._coordinator import Coordinator
from genja_rpc._pb import pb, pb_grpc
from genja_rpc._pool import LocalAgentPool

log = logging.getLogger("genja.runtime")

T = TypeVar("T")

_END = object()


def build_request(
    plan: RunPlan, hosts: Sequence[Host], task_timeout: float | None = None
) -> pb.RunRequest:
    packed = pack_plan(plan)
    request = pb.RunRequest(
        root=task_spec(plan.root, packed.refs),
        max_depth=plan.max_depth,
        code=[pb.CodeBlob(content_hash=h, payload=p) for h, p in packed.blobs.items()],
        hosts=[host_to_proto(host) for host in hosts],
    )
    if task_timeout is not None:
        request.task_timeout.FromTimedelta(timedelta(seconds=task_timeout))
    return request


def _seconds(options: Any, key: str) -> float | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise RunError(f"runner.options.{key} must be a positive number of seconds, got {value!r}")
    return float(value)


class EmbeddedRuntime:
    def __init__(self, settings: Settings) -> None:
        runner = settings.runner
        self._worker_count = runner.worker_count or os.cpu_count() or 1
        self._task_timeout = _seconds(runner.options, "task_timeout")
        self._run_timeout = _seconds(runner.options, "run_timeout")
        self._start_timeout = _seconds(runner.options, "agent_start_timeout") or 60.0
        self._host_concurrency = runner.options.get("host_concurrency")
        self._log_level = agent_log_level(settings)
        self._workdir = Path(tempfile.mkdtemp(prefix="genja-"))
        self._address = f"unix:{self._workdir / 'coordinator.sock'}"
        self._token = secrets.token_urlsafe(32)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="genja-coordinator", daemon=True
        )
        self._closed = False
        self._thread.start()
        self._coordinator: Coordinator | None = None
        self._pool: LocalAgentPool | None = None
        self._server: Any = None
        try:
            self._call(self._start())
        except BaseException:
            self.close()
            raise
        _live_runtimes.add(self)

    # ---------------------------------------------------------------- lifecycle

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        self._coordinator = Coordinator(describe_exit=self._describe_exit)
        self._server = aio_server()
        pb_grpc.add_AgentServiceServicer_to_server(
            AgentServicer(self._coordinator, self._token), self._server
        )
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, self._server)
        if self._server.add_insecure_port(self._address) == 0:
            raise RunError(f"cannot listen on {self._address}")
        await self._server.start()
        await health_servicer.set("genja.v1.AgentService", health_pb2.HealthCheckResponse.SERVING)
        self._pool = LocalAgentPool(
            self._address,
            self._token,
            self._worker_count,
            self._workdir,
            host_concurrency=self._host_concurrency,
            log_level=self._log_level,
        )
        await self._ensure_agents()

    async def _ensure_agents(self) -> None:
        assert self._pool is not None
        assert self._coordinator is not None
        started = self._pool.start_missing()
        if started:
            await self._coordinator.wait_for_agents(
                started, self._start_timeout, self._pool.startup_failure
            )

    async def _describe_exit(self, session: Any) -> str:
        assert self._pool is not None
        return await self._pool.describe_exit(session)

    def agent_pids(self) -> dict[str, int]:
        """Process ids of the local agents, by agent id."""
        return self._pool.pids() if self._pool is not None else {}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _live_runtimes.discard(self)
        if self._loop.is_running():
            try:
                self._call(self._stop(), timeout=15)
            except (concurrent.futures.TimeoutError, RuntimeError, OSError):
                log.exception("stopping the embedded coordinator failed")
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        shutil.rmtree(self._workdir, ignore_errors=True)

    async def _stop(self) -> None:
        if self._coordinator is not None:
            await self._coordinator.shutdown_agents("the client closed genja")
        if self._pool is not None:
            await self._pool.stop()
        if self._server is not None:
            await self._server.stop(grace=1.0)

    # ---------------------------------------------------------------- runs

    async def run(self, plan: RunPlan, hosts: Sequence[Host]) -> AsyncIterator[list[NodeOutcome]]:
        if self._closed:
            raise RunError("this Genja was closed; make a new one to run tasks")
        request = build_request(plan, hosts, self._task_timeout)
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def deliver(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone
                caller.call_soon_threadsafe(queue.put_nowait, item)

        future = asyncio.run_coroutine_threadsafe(self._pump(request, deliver), self._loop)
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

    async def _pump(self, request: pb.RunRequest, deliver: Any) -> None:
        assert self._coordinator is not None
        try:
            await self._ensure_agents()
            async for batch in self._coordinator.execute(request, run_timeout=self._run_timeout):
                deliver(batch)
        except Exception as error:  # delivered to the caller's loop and raised there
            deliver(error)
        finally:
            deliver(_END)


_live_runtimes: weakref.WeakSet[EmbeddedRuntime] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for runtime in list(_live_runtimes):
        runtime.close()


def open_runtime(settings: Settings) -> EmbeddedRuntime:
    return EmbeddedRuntime(settings)
