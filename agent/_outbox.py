"""Results on their way to the coordinator, batched.

Task threads and coroutines add node results as they finish; one flusher coroutine sends them
in ResultBatch messages: a message per result would cap an agent at the ~15-20k messages/s
grpcio streams, while hundreds per message move far more.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from genja_rpc._pb import pb

MAX_RESULTS_PER_MESSAGE = 1000
# Log records waiting to be sent beyond this are dropped (and counted): logging must never
# grow an agent's memory without bound when the coordinator reads slowly.
MAX_PENDING_LOG_RECORDS = 10_000
# How long the flusher lets results accumulate after the first one arrives.
LINGER_SECONDS = 0.002


_STARTED, _RESULT, _DONE = range(3)


@dataclass
class _Pending:
    results: list[pb.NodeResult] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)


class Outbox:
    """Task threads append to a deque (atomic, so no lock: a hundred threads contending for
    one lock per result cost more than the results); the flusher drains it on the loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, send: Callable[[pb.AgentMessage], Awaitable[None]]
    ) -> None:
        self._loop = loop
        self._send = send
        self._queue: collections.deque[tuple[int, str, Any]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._signalled = False
        self._log_lock = threading.Lock()
        self._logs: list[pb.LogRecord] = []
        self._dropped_logs = 0

    def add(
        self,
        run_id: str,
        results: list[pb.NodeResult] = (),  # type: ignore[assignment]
        done_host: str | None = None,
        started_host: str | None = None,
    ) -> None:
        """Queue results (and a host's start or completion); callable from any thread. Items
        of one host keep their order, so its results always precede its completion."""
        queue = self._queue
        if started_host is not None:
            queue.append((_STARTED, run_id, started_host))
        for result in results:
            queue.append((_RESULT, run_id, result))
        if done_host is not None:
            queue.append((_DONE, run_id, done_host))
        self._signal()

    def add_log(self, record: pb.LogRecord) -> None:
        """Queue a log record; callable from any thread. Sent before results queued with it,
        so a task's log lines reach the client before its run can finish."""
        with self._log_lock:
            if len(self._logs) >= MAX_PENDING_LOG_RECORDS:
                self._dropped_logs += 1
                return
            self._logs.append(record)
        self._signal()

    def _signal(self) -> None:
        # A race can only cause an extra wake-up: the flusher clears the flag before draining.
        if not self._signalled:
            self._signalled = True
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(LINGER_SECONDS)
            self._wakeup.clear()
            self._signalled = False
            with self._log_lock:
                logs, self._logs = self._logs, []
                dropped, self._dropped_logs = self._dropped_logs, 0
            pending = self._drain()
            if dropped:
                logs.append(
                    pb.LogRecord(
                        logger="genja.agent",
                        level=30,
                        message=f"{dropped} log records were dropped: too many waiting to send",
                    )
                )
            if logs:
                await self._send(pb.AgentMessage(logs=pb.LogRecords(records=logs)))
            for run_id, batch in pending.items():
                await self._flush(run_id, batch)

    def _drain(self) -> dict[str, _Pending]:
        pending: dict[str, _Pending] = {}
        queue = self._queue
        while queue:
            kind, run_id, payload = queue.popleft()
            batch = pending.get(run_id)
            if batch is None:
                batch = pending[run_id] = _Pending()
            if kind == _RESULT:
                batch.results.append(payload)
            elif kind == _DONE:
                batch.done.append(payload)
            else:
                batch.started.append(payload)
        return pending

    async def _flush(self, run_id: str, batch: _Pending) -> None:
        results = batch.results
        chunks = [
            results[i : i + MAX_RESULTS_PER_MESSAGE]
            for i in range(0, len(results), MAX_RESULTS_PER_MESSAGE)
        ] or [[]]
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            message = pb.ResultBatch(
                run_id=run_id,
                results=chunk,
                done_host_ids=batch.done if last else (),
                started_host_ids=batch.started if index == 0 else (),
            )
            await self._send(pb.AgentMessage(results=message))
