"""Host records on their way to the coordinator, batched.

Task threads and coroutines add host records as hosts (or, when a run streams, nodes) finish;
one flusher coroutine sends them in ResultBatch messages: a message per record would cap an
agent at the ~15-20k messages/s grpcio streams, while hundreds per message move far more.
Every message of the agent goes through it: a gRPC stream takes one write at a time.

A message holds at most MAX_RECORDS_PER_MESSAGE records and, beyond its first record,
MAX_BATCH_BYTES of them: ten hosts of 50 MB each go in several messages, never in one larger
than gRPC carries (a record alone is at most MAX_RECORD_BYTES: see
`genja_rpc._convert.encode_records`).
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from genja_rpc._channels import MAX_MESSAGE_BYTES
from genja_rpc._pb import pb

MAX_RECORDS_PER_MESSAGE = 1000
MAX_BATCH_BYTES = 16 * 1024 * 1024
# A record alone, with room left in its message for the batch around it (the run id, the ids
# of hosts that started) and for what the coordinator adds when it passes the batch on.
MAX_RECORD_BYTES = MAX_MESSAGE_BYTES - 4 * 1024 * 1024
# Log records waiting to be sent beyond this are dropped (and counted): logging must never
# grow an agent's memory without bound when the coordinator reads slowly.
MAX_PENDING_LOG_RECORDS = 10_000
# How long the flusher lets results accumulate after the first one arrives.
LINGER_SECONDS = 0.002


_STARTED, _RECORD = range(2)


@dataclass
class _Pending:
    records: list[tuple[pb.HostRecord, int]] = field(default_factory=list)  # with their sizes
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
        self._messages: collections.deque[pb.AgentMessage] = collections.deque()

    def add_started(self, run_id: str, host_id: str) -> None:
        """Report that a host began; callable from any thread."""
        self._queue.append((_STARTED, run_id, host_id))
        self._signal()

    def add_record(self, run_id: str, record: pb.HostRecord, size: int) -> None:
        """Queue a host record of `size` bytes (at most MAX_RECORD_BYTES); callable from any
        thread. A host's records keep their order."""
        self._queue.append((_RECORD, run_id, (record, size)))
        self._signal()

    def add_message(self, message: pb.AgentMessage) -> None:
        """Queue a message of its own (an answer to the coordinator); sent before the log and
        host records queued with it."""
        self._messages.append(message)
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
            await self._send_messages()  # answers do not linger: the coordinator waits on them
            await asyncio.sleep(LINGER_SECONDS)
            self._wakeup.clear()
            self._signalled = False
            await self._send_messages()
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

    async def _send_messages(self) -> None:
        while self._messages:
            await self._send(self._messages.popleft())

    def _drain(self) -> dict[str, _Pending]:
        pending: dict[str, _Pending] = {}
        queue = self._queue
        while queue:
            kind, run_id, payload = queue.popleft()
            batch = pending.get(run_id)
            if batch is None:
                batch = pending[run_id] = _Pending()
            if kind == _RECORD:
                batch.records.append(payload)
            else:
                batch.started.append(payload)
        return pending

    async def _flush(self, run_id: str, batch: _Pending) -> None:
        started: list[str] = batch.started
        chunk: list[pb.HostRecord] = []
        room = MAX_BATCH_BYTES
        for record, size in batch.records:
            if chunk and (len(chunk) == MAX_RECORDS_PER_MESSAGE or size > room):
                await self._send_batch(run_id, chunk, started)
                chunk, room, started = [], MAX_BATCH_BYTES, []
            chunk.append(record)
            room -= size
        await self._send_batch(run_id, chunk, started)

    async def _send_batch(
        self, run_id: str, records: list[pb.HostRecord], started: list[str]
    ) -> None:
        message = pb.ResultBatch(run_id=run_id, records=records, started_host_ids=started)
        await self._send(pb.AgentMessage(results=message))
