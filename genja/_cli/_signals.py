"""SIGINT (Ctrl-C) and SIGTERM while a command runs.

During a run the first one stops it (`RunStream.stop`): unfinished hosts are cancelled, and
the results, partial, are shown and written as usual before the command exits 128 + the signal
number (130, 143). Before the run starts, or on a second signal, the command ends at once.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from genja._run_stream import RunStream


class Interrupted(BaseException):
    """A signal ended the command; like KeyboardInterrupt, not an Exception, so that no
    `except Exception` on the way swallows it."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.message = message

    @property
    def status(self) -> int:
        return 128 + self.signum


class RunSignals:
    """Handles SIGINT and SIGTERM inside its `with` block (main thread only; a signal the
    process was started ignoring, as a shell does ^C for background jobs, stays ignored)."""

    def __init__(
        self, stopped: str = "unfinished hosts were cancelled; the results are partial"
    ) -> None:
        """`stopped` says, after the results, what stopping the run did."""
        self.stream: RunStream | None = None
        self._stopped = stopped
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> RunSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous = signal.getsignal(signum)
                if previous is not signal.SIG_IGN:
                    self._previous[signum] = previous
                    signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stream is None:
            raise Interrupted(signum, f"{name} before the run started")
        if self.received is not None:
            raise Interrupted(signum, f"{name} again: the run was abandoned without its results")
        self.received = signum
        self.stream.stop(name)

    def check(self) -> None:
        """After the results are out: end with the status of the signal that stopped the run."""
        if self.received is not None:
            name = signal.Signals(self.received).name
            raise Interrupted(self.received, f"{name}: {self._stopped}")
