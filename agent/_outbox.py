"""Results on their way to the coordinator, batched.

Task threads and coroutines add node results as they finish; one flusher coroutine sends them
in ResultBatch messages: a message per result would cap an agent at the ~15-20k messages/s
grpcio streams, while hundreds per message move far more.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from genja_rpc._pb import pb

MAX_RESULTS_PER_MESSAGE = 1000
# Log records waiting to be sent beyond this are dropped (and counted): logging must never
# grow an agent's memory without bound when the coordinator reads slowly.
MAX_PENDING_LOG_RECORDS = 10_000
# How long the flusher lets results accumulate after the first one arrives.
LINGER_SECONDS = 0.002


@dataclass
class _Pending:
    results: list[pb.NodeResult] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)


class Outbox:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, send: Callable[[pb.AgentMessage], Awaitable[None]]
    ) -> None:
        self._loop = loop
        self._send = send
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._wakeup = asyncio.Event()
        self._signalled = False
        self._logs: list[pb.LogRecord] = []
        self._dropped_logs = 0

    def add(
        self,
        run_id: str,
        results: list[pb.NodeResult] = (),  # type: ignore[assignment]
        done_host: str | None = None,
        started_host: str | None = None,
    ) -> None:
        """Queue results (and a host's completion); callable from any thread."""
        with self._lock:
            pending = self._pending.get(run_id)
            if pending is None:
                pending = self._pending[run_id] = _Pending()
            pending.results.extend(results)
            if done_host is not None:
                pending.done.append(done_host)
            if started_host is not None:
                pending.started.append(started_host)
            if self._signalled:
                return
            self._signalled = True
        self._loop.call_soon_threadsafe(self._wakeup.set)

    def add_log(self, record: pb.LogRecord) -> None:
        """Queue a log record; callable from any thread. Sent before results queued with it,
        so a task's log lines reach the client before its run can finish."""
        with self._lock:
            if len(self._logs) >= MAX_PENDING_LOG_RECORDS:
                self._dropped_logs += 1
                return
            self._logs.append(record)
            if self._signalled:
                return
            self._signalled = True
        self._loop.call_soon_threadsafe(self._wakeup.set)

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(LINGER_SECONDS)
            self._wakeup.clear()
            with self._lock:
                pending, self._pending = self._pending, {}
                logs, self._logs = self._logs, []
                dropped, self._dropped_logs = self._dropped_logs, 0
                self._signalled = False
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
