"""The runs of a coordinator server, kept apart from the calls that watch them.

A client's run goes on when the client disconnects (a crash, a lost network): it is carried out
by a task of its own (`RunStore.start`), and each call that streams it (the client's Run, later
Attach calls of the same client identity) only subscribes to it. Every event a run yields is
kept as the bytes of a serialized RunEvent, never decoded again: replayed to a client that
attaches, passed as they are to the calls that stream them (the service sends bytes, see
genja_rpc._coordinator_service).

Bounds:

- time: a finished run is kept `keep_seconds` after it ends (`genja-coordinator serve
  --keep-runs`), then forgotten; an attach to it is an unknown run.
- memory: the events of every kept run together stay under `max_bytes` (`--keep-runs-memory`).
  Past it, finished runs are dropped first, oldest first; if running runs alone pass it, the
  largest one stops being kept: its client, while connected, still gets every event, but it
  can no longer be attached to (an attach says so).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc

from genja._errors import RunError
from genja_rpc._audit import audited_run
from genja_rpc._auth import ClientIdentity
from genja_rpc._coordinator import RunOrder, RunOutput
from genja_rpc._pb import pb

log = logging.getLogger("genja.coordinator")

DEFAULT_KEEP_SECONDS = 3600.0
DEFAULT_MAX_BYTES = 512 * 1024 * 1024

Execute = Callable[[RunOrder], AsyncIterator[RunOutput]]


class RunLookupError(Exception):
    """A run a caller may not stream: the status to answer with and one line saying why."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(eq=False)
class KeptRun:
    run_id: str
    client: ClientIdentity
    header: bytes  # a serialized RunEvent(attached=...): what an attaching client starts from
    events: list[bytes] | None = field(default_factory=list)  # None: past the memory bound
    size: int = 0  # bytes kept: header and events
    subscribers: set[asyncio.Queue[bytes | None]] = field(default_factory=set)
    ended_at: float | None = None  # monotonic
    # How the run ended when it could not be carried out at all (an agent refused its code).
    error: tuple[grpc.StatusCode, str] | None = None
    driver: asyncio.Task[None] | None = None
    cancel_reason: str = ""

    @property
    def running(self) -> bool:
        return self.ended_at is None


def _attached_header(order: RunOrder) -> bytes:
    attached = pb.RunAttached(
        run_id=order.run_id,
        root=order.root,
        host_ids=[host.host_id for host in order.hosts],
        dry_run=order.dry_run,
    )
    data: bytes = pb.RunEvent(attached=attached).SerializeToString()
    return data


def _event_bytes(output: RunOutput, run_id: str) -> list[bytes]:
    events: list[bytes] = []
    if output.logs:
        events.append(pb.RunEvent(logs=pb.LogRecords(records=output.logs)).SerializeToString())
    if output.records or output.started_host_ids:
        # Records pass through as the agents sent them: never decoded here.
        batch = pb.ResultBatch(
            run_id=run_id, records=output.records, started_host_ids=output.started_host_ids
        )
        events.append(pb.RunEvent(results=batch).SerializeToString())
    return events


class RunStore:
    def __init__(
        self,
        execute: Execute,
        *,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._execute = execute
        self._keep_seconds = keep_seconds
        self._max_bytes = max_bytes
        self._runs: dict[str, KeptRun] = {}
        self._used = 0

    @property
    def used_bytes(self) -> int:
        return self._used

    def start(self, order: RunOrder, client: ClientIdentity, peer: str) -> KeptRun:
        """Carry out `order` for `client` from now on, whoever watches it."""
        if order.run_id in self._runs:
            raise RunLookupError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"a run with id {order.run_id!r} exists already on this coordinator",
            )
        header = _attached_header(order)
        run = KeptRun(order.run_id, client, header, size=len(header))
        self._runs[run.run_id] = run
        self._used += run.size
        run.driver = asyncio.get_running_loop().create_task(
            self._drive(run, order, peer), name=f"genja-run-{order.run_id}"
        )
        self._fit()
        return run

    def find(self, run_id: str, client: ClientIdentity) -> KeptRun:
        """The run `client` started with this id; RunLookupError when there is none it may
        see."""
        run = self._runs.get(run_id)
        if run is None:
            keep = _duration_text(self._keep_seconds)
            raise RunLookupError(
                grpc.StatusCode.NOT_FOUND,
                f"no run {run_id!r} on this coordinator: an unknown id, or a run that "
                f"finished more than {keep} ago (genja-coordinator serve --keep-runs)",
            )
        if run.client != client:
            raise RunLookupError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"run {run_id!r} was started by another client: only the client identity "
                "that started a run may attach to it or cancel it",
            )
        return run

    def cancel(self, run: KeptRun, reason: str) -> bool:
        """End a running run early; whether it was running."""
        if not run.running or run.driver is None:
            return False
        run.cancel_reason = reason
        run.driver.cancel()
        return True

    async def close(self, reason: str) -> None:
        """Cancel every running run (the coordinator is stopping) and wait for them to end."""
        drivers = []
        for run in self._runs.values():
            if self.cancel(run, reason) and run.driver is not None:
                drivers.append(run.driver)
        if drivers:
            await asyncio.wait(drivers)

    async def stream(self, run: KeptRun, *, replay_header: bool) -> AsyncIterator[bytes]:
        """The run's events from its first, as serialized RunEvents: those kept, then the
        rest as they come, until it ends. RunLookupError when its events are no longer kept
        (past the memory bound) and `replay_header` (an attach) asks for them."""
        if run.events is None and replay_header:
            raise RunLookupError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"run {run.run_id!r} can no longer be attached to: its records passed what "
                "this coordinator keeps (genja-coordinator serve --keep-runs-memory)",
            )
        backlog = list(run.events or ())
        queue: asyncio.Queue[bytes | None] | None = None
        if run.running:
            queue = asyncio.Queue()
            run.subscribers.add(queue)
        try:
            if replay_header:
                yield run.header
            for event in backlog:
                yield event
            del backlog
            while queue is not None:
                live = await queue.get()
                if live is None:
                    break
                yield live
        finally:
            if queue is not None:
                run.subscribers.discard(queue)

    # ---------------------------------------------------------------- the run itself

    async def _drive(self, run: KeptRun, order: RunOrder, peer: str) -> None:
        with audited_run(run.client, order, peer) as audit:
            try:
                async for output in self._execute(order):
                    for event in _event_bytes(output, run.run_id):
                        self._add(run, event)
                audit.finished()
                self._add(run, _finished(run.run_id))
            except RunError as error:
                run.error = (grpc.StatusCode.FAILED_PRECONDITION, str(error))
                audit.outcome = f"failed: {error}"
            except asyncio.CancelledError:
                audit.outcome = f"cancelled ({run.cancel_reason})"
                self._add(run, _finished(run.run_id, run.cancel_reason or "cancelled"))
            except Exception as error:  # a bug: the run's callers must still hear of it
                log.exception("run %s failed", run.run_id)
                run.error = (grpc.StatusCode.INTERNAL, f"the coordinator failed: {error}")
                audit.outcome = f"failed ({type(error).__name__})"
            finally:
                self._end(run)

    def _add(self, run: KeptRun, event: bytes) -> None:
        for queue in run.subscribers:
            queue.put_nowait(event)
        if run.events is None:
            return
        run.events.append(event)
        run.size += len(event)
        self._used += len(event)
        if self._used > self._max_bytes:
            self._fit()

    def _end(self, run: KeptRun) -> None:
        run.ended_at = time.monotonic()
        for queue in run.subscribers:
            queue.put_nowait(None)
        run.subscribers.clear()
        if self._keep_seconds <= 0:
            self._forget(run)
        else:
            asyncio.get_running_loop().call_later(self._keep_seconds, self._forget, run)

    def _forget(self, run: KeptRun) -> None:
        if self._runs.get(run.run_id) is run:
            del self._runs[run.run_id]
            self._used -= run.size

    def _fit(self) -> None:
        """Drop what is kept until it fits the memory bound: finished runs, oldest first,
        then the events of the largest running run."""
        if self._used <= self._max_bytes:
            return
        finished = sorted(
            (run for run in self._runs.values() if not run.running),
            key=lambda run: run.ended_at or 0.0,
        )
        for run in finished:
            self._forget(run)
            log.warning(
                "run %s is no longer kept: the kept runs passed --keep-runs-memory %s",
                run.run_id, _size_text(self._max_bytes),
            )  # fmt: skip
            if self._used <= self._max_bytes:
                return
        kept = [run for run in self._runs.values() if run.events is not None]
        while self._used > self._max_bytes and kept:
            largest = max(kept, key=lambda run: run.size)
            kept.remove(largest)
            log.warning(
                "run %s passed --keep-runs-memory %s with the other runs: its records are no "
                "longer kept; its client, while connected, still receives them, but it can no "
                "longer be attached to",
                largest.run_id, _size_text(self._max_bytes),
            )  # fmt: skip
            self._used -= largest.size
            largest.size = 0
            largest.events = None
            largest.header = b""


def _finished(run_id: str, cancelled: str = "") -> bytes:
    finished = pb.RunFinished(run_id=run_id, cancelled=cancelled)
    data: bytes = pb.RunEvent(finished=finished).SerializeToString()
    return data


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _size_text(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:g}{unit}"
    return f"{size}B"
