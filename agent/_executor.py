"""Running many hosts at once: the part of an agent that the threaded runner shares.

`HostExecutor` takes hosts of any number of runs and works on `concurrency` of them at a time:
trees of plain `start` methods run whole in worker threads that take hosts off a queue
themselves (no hop to the event loop per host), trees with async nodes or a `task_timeout` run
as coroutines on the loop. Each host goes through its run's `HostPipeline`; what it produces is
handed to the run's `RunSink` as host records: one per host when the host finishes, or one per
node as it finishes when the run streams.

While a worker runs a host, `current_host` holds its run id and the host (log records made
meanwhile are tagged with them; see `agent._log_forward`).

A host is reported started when a worker takes it. A host taken after the run's deadline is not
started: its whole tree is reported as the deadline's failure. Whoever cancels a run (`cancel`)
accounts for its hosts: those no worker took yet are dropped silently; those running as
coroutines are cancelled (a blocking `start` cannot be: its thread finishes the host), and
their records, which the canceller ignores, say so.

Workers are never lost: whatever a host's tree does (the pipeline contains what tasks raise;
anything that still escapes is a bug, logged on one line with its traceback at debug level),
the worker reports the host and takes the next one.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import logging
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from agent._pipeline import HostPipeline, NodeTrace
from genja._host import Host
from genja.task._results import HostTaskResult, TaskFailureKind, TaskFailureResult

log = logging.getLogger("genja.agent")

# (run id, host) of the host the current thread or coroutine works on.
current_host: contextvars.ContextVar[tuple[str, Host] | None] = contextvars.ContextVar(
    "genja_current_host", default=None
)


# What the nodes a cancelled coroutine did not report become (whoever cancelled the run
# accounts for its hosts, and ignores this).
_CANCELLED = TaskFailureResult(
    message="the run was cancelled while this host ran", kind=TaskFailureKind.INTERNAL
)


def _escaped(host: Host, error: BaseException) -> TaskFailureResult:
    """What a host's unreported nodes become when something escaped the pipeline (a bug: it
    contains what tasks do), logged on one line; the traceback at debug level."""
    log.error("running host %r failed: %s", host.id, type(error).__name__)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    return TaskFailureResult(
        message=f"the agent stopped running this host: {type(error).__name__}",
        kind=TaskFailureKind.INTERNAL,
    )


def _unreported(error: BaseException) -> TaskFailureResult:
    return TaskFailureResult(
        message=f"the agent could not report this host's results: {type(error).__name__}",
        kind=TaskFailureKind.INTERNAL,
    )


class RunSink(Protocol):
    """Where one run's reports go; called from worker threads and from the loop."""

    def started(self, host_id: str) -> None: ...

    def record(
        self,
        host_id: str,
        first_node: int,
        results: list[HostTaskResult],
        *,
        started_ns: list[int],
        durations_ns: list[int],
        attempts: list[int],
        exhausted: list[bool],
        done: bool,
    ) -> None:
        """Results of nodes `first_node ..` of a host, with when each started (Unix ns), how
        long it took (ns), how many attempts it made and whether its retries ran out; `done`
        on the host's last record."""


@dataclass(eq=False)
class ExecRun:
    """One run as the executor sees it. `deadline` is on `time.monotonic()`'s clock."""

    run_id: str
    pipeline: HostPipeline
    sink: RunSink
    stream: bool = False
    deadline: float | None = None
    deadline_failure: TaskFailureResult | None = None
    cancelled: bool = False


class HostReport:
    """Collects one host's node reports and hands them to the sink as records. `finish` must
    be called once the pipeline is through with the host."""

    __slots__ = (
        "_attempts",
        "_durations",
        "_exhausted",
        "_host_id",
        "_last",
        "_next",
        "_results",
        "_run",
        "_started",
    )

    def __init__(self, run: ExecRun, host_id: str) -> None:
        self._run = run
        self._host_id = host_id
        self._last = run.pipeline.node_count - 1
        self._next = 0
        self._results: list[HostTaskResult] = []
        self._started: list[int] = []
        self._durations: list[int] = []
        self._attempts: list[int] = []
        self._exhausted: list[bool] = []

    def node(
        self,
        index: int,
        result: HostTaskResult,
        started_ns: int,
        duration_ns: int,
        trace: NodeTrace | None,
    ) -> None:
        attempts, exhausted = (1, False) if trace is None else trace.facts()
        if self._run.stream:
            self._run.sink.record(
                self._host_id,
                index,
                [result],
                started_ns=[started_ns],
                durations_ns=[duration_ns],
                attempts=[attempts],
                exhausted=[exhausted],
                done=index == self._last,
            )
            self._next = index + 1  # sent: `finish` fills in from the next one
            return
        self._next = index + 1
        self._results.append(result)
        self._started.append(started_ns)
        self._durations.append(duration_ns)
        self._attempts.append(attempts)
        self._exhausted.append(exhausted)

    def finish(self, failure: TaskFailureResult | None = None) -> None:
        """Send what is collected; nodes never reported (only after a bug in the pipeline, or
        for a host that never started) get `failure`."""
        first = self._next - len(self._results)
        missing = self._last + 1 - self._next
        if missing:
            if failure is None:
                failure = TaskFailureResult(
                    message="the agent stopped running this host before its last task",
                    kind=TaskFailureKind.INTERNAL,
                )
            now = time.time_ns()
            self._results.extend([failure] * missing)
            self._started.extend([now] * missing)
            self._durations.extend([0] * missing)
            self._attempts.extend([1] * missing)
            self._exhausted.extend([False] * missing)
        if not self._results:
            return
        try:
            self._run.sink.record(
                self._host_id,
                first,
                self._results,
                started_ns=self._started,
                durations_ns=self._durations,
                attempts=self._attempts,
                exhausted=self._exhausted,
                done=True,
            )
        except Exception as error:  # its records could not be made (out of memory)
            log.error("reporting host %r failed: %s", self._host_id, type(error).__name__)
            count = len(self._results)
            now = time.time_ns()
            self._run.sink.record(
                self._host_id,
                first,
                [_unreported(error)] * count,
                started_ns=[now] * count,
                durations_ns=[0] * count,
                attempts=[1] * count,
                exhausted=[False] * count,
                done=True,
            )


class HostExecutor:
    def __init__(
        self,
        concurrency: int,
        loop: asyncio.AbstractEventLoop,
        host_threads: concurrent.futures.ThreadPoolExecutor,
    ) -> None:
        """`host_threads` must have `concurrency` threads: a blocking worker keeps one while the
        queue has hosts."""
        self._concurrency = concurrency
        self._loop = loop
        self._host_threads = host_threads
        self._queue: collections.deque[tuple[ExecRun, Host]] = collections.deque()
        self._active = 0
        self._workers: set[asyncio.Task[None]] = set()
        self._blocking: collections.deque[tuple[ExecRun, Host]] = collections.deque()
        self._blocking_lock = threading.Lock()
        self._blocking_threads = 0
        self._running: dict[asyncio.Task[None], ExecRun] = {}  # async worker -> its host's run
        self._closing = False

    def submit(self, run: ExecRun, hosts: Iterable[Host]) -> None:
        """Queue hosts of `run`; call on the loop's thread."""
        if run.pipeline.blocking_only:
            self._submit_blocking(run, hosts)
            return
        self._queue.extend((run, host) for host in hosts)
        while self._active < self._concurrency and self._queue:
            self._active += 1
            worker = self._loop.create_task(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    def _submit_blocking(self, run: ExecRun, hosts: Iterable[Host]) -> None:
        with self._blocking_lock:
            self._blocking.extend((run, host) for host in hosts)
            idle = self._concurrency - self._blocking_threads
            starting = max(0, min(len(self._blocking), idle))
            self._blocking_threads += starting
        for _ in range(starting):
            self._host_threads.submit(self._blocking_worker)

    def _begin(self, run: ExecRun, host: Host) -> HostReport | None:
        """The report of a host a worker took, or None when it is not to run."""
        if run.cancelled:
            return None
        report = HostReport(run, host.id)
        if run.deadline is not None and time.monotonic() >= run.deadline:
            report.finish(run.deadline_failure)
            return None
        run.sink.started(host.id)
        return report

    def _blocking_worker(self) -> None:
        queue = self._blocking
        while True:
            try:
                run, host = queue.popleft()  # atomic: no lock per host
            except IndexError:
                with self._blocking_lock:
                    if not queue:  # re-checked under the lock _submit_blocking extends under
                        self._blocking_threads -= 1
                        return
                continue
            try:
                self._run_blocking(run, host)
            except BaseException as error:  # reporting failed: still a worker after it
                _escaped(host, error)

    def _run_blocking(self, run: ExecRun, host: Host) -> None:
        report = self._begin(run, host)
        if report is None:
            return
        failure = None
        working = current_host.set((run.run_id, host))
        try:
            run.pipeline.run_blocking(host, report.node)
        except BaseException as error:  # a bug: the pipeline contains task errors
            failure = _escaped(host, error)
        finally:
            current_host.reset(working)
        report.finish(failure)

    async def _work(self) -> None:
        worker = asyncio.current_task()
        assert worker is not None
        try:
            while self._queue:
                run, host = self._queue.popleft()
                await self._work_on(worker, run, host)
        finally:
            self._active -= 1

    async def _work_on(self, worker: asyncio.Task[None], run: ExecRun, host: Host) -> None:
        report = self._begin(run, host)
        if report is None:
            return
        self._running[worker] = run
        working = current_host.set((run.run_id, host))
        failure = None
        try:
            await run.pipeline.run_async(host, report.node)
        except asyncio.CancelledError:
            if self._closing:
                raise
            # `cancel(run)`, aimed at this host, not at the worker. Or not ours: a task's own
            # CancelledError that reached us (Python 3.10 cannot tell), or one a task raised
            # after swallowing ours.
            _uncancel(worker)
            failure = _CANCELLED if run.cancelled else _escaped(host, asyncio.CancelledError())
        except BaseException as error:
            if run.pipeline.is_interrupt(error):  # the user's Ctrl-C (in-process runners)
                raise
            failure = _escaped(host, error)  # a bug: the pipeline contains task errors
        finally:
            del self._running[worker]
            current_host.reset(working)
        report.finish(failure)

    def cancel(self, run: ExecRun) -> None:
        """Stop working on `run`: its hosts not started yet are dropped, its coroutines
        cancelled; call on the loop's thread. Its blocking hosts finish in their threads."""
        run.cancelled = True
        for worker, running in list(self._running.items()):
            if running is run:
                worker.cancel()

    def cancel_all(self) -> None:
        """Stop the async workers (at shutdown); blocking workers finish their host."""
        self._closing = True
        for worker in list(self._workers):
            worker.cancel()


def _uncancel(worker: asyncio.Task[None]) -> None:
    """Forget the cancellations `worker` was asked for (Python 3.11+ counts them, and the
    pipeline takes a count above 0 for its own cancellation)."""
    uncancel = getattr(worker, "uncancel", None)
    if uncancel is not None:
        while uncancel() > 0:
            pass
