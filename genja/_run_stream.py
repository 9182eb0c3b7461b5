"""Stopping a streamed run early, and keeping what it did.

Leaving the loop over `stream_task` cancels the hosts not finished and drops the run: no tree.
`RunStream.stop` instead ends the run's wait for its runtime; the hosts not finished then fail
saying the run was interrupted, and the stream goes on to its usual end (those failures, then
`RunFinished` with the whole tree). The `genja run` command calls it on SIGINT and SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from types import TracebackType

from genja._events import RunEvent
from genja._runtimes import RuntimeBatch
from genja.task._results import TaskFailureKind, TaskFailureResult


class StopSwitch:
    """Tripped from anywhere (a signal handler, another thread); waited on in the run's loop.
    `unfinished` says what happened to a host not finished when it tripped."""

    def __init__(
        self, unfinished: str = "the run was interrupted before this host finished"
    ) -> None:
        self.reason: str | None = None
        self._unfinished = unfinished
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def trip(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        loop = self._loop
        if loop is not None:
            # The one loop call that is safe from a signal handler or another thread; it
            # wakes the loop even when it is waiting in select().
            with contextlib.suppress(RuntimeError):  # the loop is closed: the run is over
                loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        self._event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self.reason is None:
            await self._event.wait()

    def failure(self) -> TaskFailureResult:
        """What a host not finished when the switch tripped ends with."""
        return TaskFailureResult(
            message=f"{self._unfinished} ({self.reason})",
            kind=TaskFailureKind.INTERNAL,
            retryable=True,
        )


class BatchesUntilStopped:
    """A runtime's batches until the switch trips; then the batch being waited for is
    cancelled (which cancels the runtime's unfinished hosts) and no more come."""

    def __init__(self, batches: AsyncIterator[RuntimeBatch], switch: StopSwitch) -> None:
        self._batches = batches
        self._switch = switch
        self._stopped: asyncio.Future[None] | None = None

    async def __aenter__(self) -> BatchesUntilStopped:
        self._stopped = asyncio.ensure_future(self._switch.wait())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stopped is not None:
            self._stopped.cancel()

    async def next(self) -> RuntimeBatch | None:
        """The next batch; None at the end of the run or once stopped."""
        stopped = self._stopped
        assert stopped is not None, "use it as an async context manager"
        if self._switch.reason is not None:
            return None
        step = asyncio.ensure_future(anext(self._batches, None))
        try:
            await asyncio.wait((step, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not step.done():
                # Let the runtime's generator finish before anyone closes it.
                step.cancel()
                await asyncio.wait((step,))
        return None if step.cancelled() else step.result()


class RunStream(Iterator[RunEvent]):
    """The events of a run, for synchronous code: what `Genja.stream_task` returns."""

    def __init__(self, events: Iterator[RunEvent], switch: StopSwitch) -> None:
        self._events = events
        self._switch = switch

    def __iter__(self) -> RunStream:
        return self

    def __next__(self) -> RunEvent:
        return next(self._events)

    def stop(self, reason: str = "stopped by the caller") -> None:
        """End the run early and keep its results: hosts not finished are cancelled and fail
        with kind `internal` (retryable), saying the run was interrupted and `reason`; the
        events still come to their end, `RunFinished` with the tree. Safe to call from a
        signal handler or another thread; calls after the first change nothing."""
        self._switch.trip(reason)

    def close(self) -> None:
        """Cancel the hosts not finished and end the stream without its tree (as leaving
        the loop does)."""
        close = getattr(self._events, "close", None)
        if close is not None:
            close()
