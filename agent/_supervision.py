"""What an agent tells its supervisor about itself: stuck task threads, a blocked event loop.

`TaskThreads` runs blocking task calls. A call whose caller gave up on it (its task_timeout
passed: the pipeline stopped waiting and the host failed as a timeout) but which goes on is
*stuck*: a thread lost until the call returns. It is counted, with its host, and the agent
reports the count in its heartbeats, at once when it grows. The pool keeps spare threads for
stuck calls (`stuck_worker_limit`), so they cost no capacity; when the spares are used up, the
supervisor replaces the agent.

`LoopWatchdog` is a thread that notices the event loop blocked (a task calling `time.sleep` in
`start_async`, a CPU-bound loop): its notes go to the agent's state folder, where the supervisor
reads them even though the blocked loop can send nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from genja._host import Host
from genja_rpc._agent_state import Blocked, clear_blocked, write_blocked

log = logging.getLogger("genja.agent")

# Stuck hosts named in one heartbeat, at most.
MAX_STUCK_NAMED = 20


class _Call(concurrent.futures.Future[Any]):
    """The future of one call; cancelling it once it runs makes it stuck."""

    def __init__(self, threads: TaskThreads, host_id: str) -> None:
        super().__init__()
        self.host_id = host_id
        self.finished = False  # guarded by the threads' lock
        self._threads = threads

    def cancel(self) -> bool:
        if super().cancel():
            return True
        if self.running():
            self._threads._abandoned(self)
        return False


class TaskThreads(concurrent.futures.Executor):
    def __init__(self, concurrency: int, on_stuck: Callable[[], None] = lambda: None) -> None:
        """`on_stuck` is called (on the thread that gave up on the call: the event loop's)
        each time a call gets stuck."""
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=2 * concurrency,  # threads start as needed
            thread_name_prefix="genja-task",
        )
        self._lock = threading.Lock()
        self._stuck: dict[_Call, None] = {}  # in the order they got stuck
        self._on_stuck = on_stuck

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> _Call:
        call = _Call(self, _host_of(args))

        def run() -> None:
            if not call.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:  # as ThreadPoolExecutor does: the caller's to see
                call.set_exception(error)
            else:
                call.set_result(result)
            finally:
                with self._lock:
                    call.finished = True
                    self._stuck.pop(call, None)

        self._pool.submit(run)
        return call

    def _abandoned(self, call: _Call) -> None:
        with self._lock:
            if call.finished:
                return
            self._stuck[call] = None
        self._on_stuck()

    def stuck(self) -> tuple[int, list[str]]:
        """How many calls are stuck, and the hosts of the first `MAX_STUCK_NAMED`."""
        with self._lock:
            calls = list(self._stuck)
        return len(calls), [c.host_id for c in calls[:MAX_STUCK_NAMED] if c.host_id]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _host_of(args: tuple[Any, ...]) -> str:
    """The host a pipeline call is for: an argument, or an argument's `host` (a NodeCall)."""
    for arg in args:
        host = arg if isinstance(arg, Host) else getattr(arg, "host", None)
        if isinstance(host, Host):
            return host.id
    return ""


class LoopWatchdog:
    """Notes, in `folder`, when the loop has not run for `note_after` seconds, and clears the
    note when it runs again; logs each such episode once."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        folder: Path | None,
        *,
        note_after: float = 1.0,
        tick: float = 0.25,
    ) -> None:
        self._loop = loop
        self._folder = folder
        self._note_after = note_after
        self._tick = tick
        self._beat = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._stopped = threading.Event()
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Call on the loop's thread."""
        self._loop_thread = threading.get_ident()
        self._on_loop()
        threading.Thread(target=self._watch, name="genja-loop-watchdog", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        if self._handle is not None:
            self._handle.cancel()
        if self._folder is not None:
            clear_blocked(self._folder)

    def _on_loop(self) -> None:
        self._beat = time.monotonic()
        self._handle = self._loop.call_later(self._tick, self._on_loop)

    def _watch(self) -> None:
        noted = False
        while not self._stopped.wait(self._tick):
            lag = time.monotonic() - self._beat
            if lag < self._note_after:
                if noted and self._folder is not None:
                    clear_blocked(self._folder)
                noted = False
                continue
            if noted:
                continue
            noted = True
            host_id = self._culprit()
            blocked = Blocked(time.time() - lag, host_id)
            if host_id:
                log.warning(
                    "a task blocks the event loop in host %s: start_async must not block "
                    "(time.sleep, blocking I/O); await, or use start",
                    host_id,
                )
            else:  # starved of CPU, or busy in our own code: nothing a task author can mend
                log.debug("the event loop did not run for %.1f s", lag)
            if self._folder is not None:
                try:
                    write_blocked(self._folder, blocked)
                except OSError:
                    log.exception("cannot note the blocked loop in %s", self._folder)

    def _culprit(self) -> str:
        """The host whose task code is on the loop's stack (innermost first), or ""."""
        frame: FrameType | None = sys._current_frames().get(self._loop_thread)
        while frame is not None:
            host = frame.f_locals.get("host")
            if isinstance(host, Host):
                return host.id
            frame = frame.f_back
        return ""
