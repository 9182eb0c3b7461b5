"""The `serial` and `threaded` runners: the host pipeline in the client process, no agents.

They run the same pipeline as the agents, so a run means the same thing: depth, order, entry
points, `task_timeout` and `run_timeout`, connection plugins with their per-host cache,
failure kinds, and a result for every host of every node. What differs is where hosts run:

- `threaded`: up to `runner.options.host_concurrency` hosts at once (as one agent would), on
  threads of the client process (async trees on its event loop);
- `serial`: one host after the other, on the caller's own thread: a breakpoint in `start`
  stops in the caller's debugger. A `task_timeout` or `run_timeout` needs a thread to give up
  on a blocking `start`, so with either set, blocking entry points run in a helper thread.

Both keep their connections between runs until `close()`. They suit debugging, tiny runs and
tests; for many hosts or CPU-heavy tasks, the `agents` runner uses every core.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from collections.abc import AsyncGenerator, Collection, Sequence
from typing import Any

from agent._connections import ConnectionCache, ConnectionPlugins
from agent._executor import ExecRun, HostExecutor, HostReport
from agent._login_budget import LoginBudget
from agent._pipeline import ExecNode, HostPipeline, NodePolicy, TaskLoadError, tree_from_plan
from agent._policies import PolicySettings, default_policies
from genja._connection_plugins import connection_settings
from genja._errors import RunError
from genja._host import Host
from genja._records import DecodedRecord, HostRecord, failure_record
from genja._runtimes import RunJob, RuntimeBatch
from genja._settings import Settings
from genja.task._results import HostTaskResult, TaskFailureKind, TaskFailureResult

AGENT_NAME = "client"  # `ExecutionMetadata.agent` of what ran in the client process


class _Mailbox:
    """The run's reports, from worker threads to the caller's loop: threads append to a
    deque (atomic) and wake the loop once per burst, not once per report."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, dry_run: bool) -> None:
        self._loop = loop
        self._dry_run = dry_run
        self._items: collections.deque[tuple[str, Any]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._signalled = False

    def started(self, host_id: str) -> None:
        self._items.append(("started", host_id))
        self._signal()

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
        record = DecodedRecord(
            host_id,
            first_node,
            results,
            done,
            started_ns=started_ns,
            durations_ns=durations_ns,
            attempts=attempts,
            exhausted=exhausted,
            agent=AGENT_NAME,
            dry_run=self._dry_run,
        )
        self._items.append(("record", record))
        self._signal()

    def _signal(self) -> None:
        if not self._signalled:
            self._signalled = True
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def take(self, timeout: float | None) -> RuntimeBatch | None:
        """What arrived, or None if nothing did within `timeout` seconds."""
        if not self._items:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except asyncio.TimeoutError:
                return None
        self._wakeup.clear()
        self._signalled = False
        started: list[str] = []
        records: list[HostRecord] = []
        items = self._items
        while items:
            kind, value = items.popleft()
            if kind == "started":
                started.append(value)
            else:
                records.append(value)
        return RuntimeBatch(tuple(started), tuple(records))


class _InProcessRuntime:
    def __init__(
        self, settings: Settings, *, concurrency: int, policies: Sequence[NodePolicy] | None
    ) -> None:
        options = settings.runner.options
        self._task_timeout = options.task_timeout
        self._run_timeout = options.run_timeout
        self._max_result_size = options.max_result_size
        self._concurrency = concurrency
        self._retry = settings.runner.retry
        self._policies = policies
        self._login_attempts = settings.runner.max_connection_attempts
        self._settings = connection_settings(settings)
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="genja-task"
        )
        self._connections = ConnectionCache(ConnectionPlugins(), self._threads)
        logins = [n for n in (options.max_logins_per_agent, options.max_logins) if n > 0]
        if logins:
            self._connections.limiter.set_limit(min(logins))
        self._closed = False

    async def run(self, job: RunJob) -> AsyncGenerator[RuntimeBatch, None]:
        """The run's batches; when they end (or the caller stops taking them), the run's
        failed logins are forgotten: the next run logs in again."""
        try:
            async for batch in self._batches(job):
                yield batch
        finally:
            self._connections.forget_run(job.run_id)

    def _batches(self, job: RunJob) -> AsyncGenerator[RuntimeBatch, None]:
        raise NotImplementedError

    def _disconnect(self, node: ExecNode, host: Host) -> None:
        name = node.info.connection_plugin_name
        if name:
            self._connections.discard(host.id, name)

    def _pipeline(self, job: RunJob, *, inline_blocking: bool) -> HostPipeline:
        if self._closed:
            raise RunError("this Genja was closed; make a new one to run tasks")
        budget = LoginBudget(self._login_attempts)

        def connect(node: ExecNode, host: Host) -> Any:
            name = node.info.connection_plugin_name
            if not name:
                return None
            settings = self._settings.get(name) or {}
            return self._connections.get(
                host, name, settings, run_id=job.run_id, before_login=budget.charge
            )

        policies = self._policies
        if policies is None:
            policies = default_policies(PolicySettings(self._retry, dry_run=job.plan.dry_run))
        return HostPipeline(
            tree_from_plan(job.plan),
            connect=connect,
            disconnect=self._disconnect,
            task_timeout=self._task_timeout,
            threads=self._threads,
            policies=policies,
            inline_blocking=inline_blocking and self._run_timeout is None,
            max_result_size=self._max_result_size,
            caller_interrupts=True,
        )

    def _deadline_failure(self) -> TaskFailureResult:
        return TaskFailureResult(
            message=f"the run did not finish within {self._run_timeout:g}s "
            "(runner.options.run_timeout)",
            kind=TaskFailureKind.TIMEOUT,
            retryable=True,
        )

    async def close_connections(self, host_ids: Collection[str] | None = None) -> None:
        await asyncio.get_running_loop().run_in_executor(
            None, self._connections.close_all, host_ids
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._connections.close_all()
        self._threads.shutdown(wait=False, cancel_futures=True)


def _unloadable(job: RunJob, error: TaskLoadError) -> RuntimeBatch:
    failure = TaskFailureResult(message=str(error), kind=TaskFailureKind.INTERNAL)
    count = len(list(job.plan.nodes()))
    return RuntimeBatch(records=tuple(failure_record(h.id, 0, count, failure) for h in job.hosts))


class SerialRuntime(_InProcessRuntime):
    def __init__(self, settings: Settings, *, policies: Sequence[NodePolicy] | None = None):
        # One host at a time; the helper threads (blocking calls under a timeout, opening
        # connections for async tasks) are as many as an agent has, so a call abandoned at
        # its timeout does not hold up the next host.
        concurrency = settings.runner.options.host_concurrency
        super().__init__(settings, concurrency=concurrency, policies=policies)

    async def _batches(self, job: RunJob) -> AsyncGenerator[RuntimeBatch, None]:
        try:
            pipeline = self._pipeline(job, inline_blocking=True)
        except TaskLoadError as error:
            yield _unloadable(job, error)
            return
        loop = asyncio.get_running_loop()
        deadline = None if self._run_timeout is None else time.monotonic() + self._run_timeout
        mailbox = _Mailbox(loop, dry_run=job.plan.dry_run)
        run = ExecRun(job.run_id, pipeline, mailbox, stream=job.stream)
        nodes = pipeline.node_count
        for index, host in enumerate(job.hosts):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                failure = self._deadline_failure()
                yield RuntimeBatch(
                    records=tuple(
                        failure_record(h.id, 0, nodes, failure) for h in job.hosts[index:]
                    )
                )
                return
            reports = HostReport(run, host.id)
            mailbox.started(host.id)
            if pipeline.blocking_only and deadline is None:
                pipeline.run_blocking(host, reports.node)
                reports.finish()
            else:
                try:
                    await asyncio.wait_for(pipeline.run_async(host, reports.node), left)
                    reports.finish()
                except asyncio.TimeoutError:
                    reports.finish(self._deadline_failure())
            batch = await mailbox.take(0)
            if batch is not None:
                yield batch


class ThreadedRuntime(_InProcessRuntime):
    def __init__(self, settings: Settings, *, policies: Sequence[NodePolicy] | None = None):
        concurrency = settings.runner.options.host_concurrency
        super().__init__(settings, concurrency=concurrency, policies=policies)
        self._host_threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._concurrency, thread_name_prefix="genja-host"
        )

    async def _batches(self, job: RunJob) -> AsyncGenerator[RuntimeBatch, None]:
        try:
            pipeline = self._pipeline(job, inline_blocking=False)
        except TaskLoadError as error:
            yield _unloadable(job, error)
            return
        loop = asyncio.get_running_loop()
        mailbox = _Mailbox(loop, dry_run=job.plan.dry_run)
        executor = HostExecutor(self._concurrency, loop, self._host_threads)
        run = ExecRun(job.run_id, pipeline, mailbox, stream=job.stream)
        owed: dict[str, int] = {host.id: 0 for host in job.hosts}  # nodes received so far
        deadline = None if self._run_timeout is None else time.monotonic() + self._run_timeout
        executor.submit(run, job.hosts)
        try:
            while owed:
                left = None if deadline is None else max(deadline - time.monotonic(), 0)
                batch = await mailbox.take(left)
                if batch is None:  # the run's deadline passed
                    failure = self._deadline_failure()
                    nodes = pipeline.node_count
                    yield RuntimeBatch(
                        records=tuple(
                            failure_record(h, received, nodes, failure)
                            for h, received in owed.items()
                        )
                    )
                    return
                for record in batch.records:
                    if record.done:
                        owed.pop(record.host_id, None)
                    elif record.host_id in owed:
                        owed[record.host_id] = record.end_node
                yield batch
        finally:
            run.cancelled = True
            executor.cancel_all()

    def close(self) -> None:
        super().close()
        self._host_threads.shutdown(wait=False, cancel_futures=True)
