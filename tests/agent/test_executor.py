"""The executor that agents and the threaded runner share: records, deadlines, streaming."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from typing import Any

import pytest

from agent._executor import ExecRun, HostExecutor
from agent._pipeline import HostPipeline, tree_from_plan
from genja import Host
from genja._plan import plan_run
from genja.task import TaskFailureKind, TaskFailureResult, TaskSuccessResult, task

RAN: list[str] = []


@task(name="child")
class Child:
    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        RAN.append(f"{host.id}/child")
        return TaskSuccessResult()


@task(name="parent", sub_tasks=[Child])
class Parent:
    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        RAN.append(f"{host.id}/parent")
        return TaskSuccessResult()


@task(name="async_parent", sub_tasks=[Child])
class AsyncParent:
    async def start_async(self, task, host, context):  # type: ignore[no-untyped-def]
        RAN.append(f"{host.id}/parent")
        return TaskSuccessResult()


class Sink:
    def __init__(self) -> None:
        self.began: list[str] = []
        self.records: list[tuple[str, int, int, bool, list[Any]]] = []

    def started(self, host_id: str) -> None:
        self.began.append(host_id)

    def record(self, host_id: str, first_node: int, results: list[Any], **kw: Any) -> None:
        assert len(kw["started_ns"]) == len(kw["durations_ns"]) == len(results)
        self.records.append((host_id, first_node, len(results), kw["done"], results))


def _run(task_class: type, run: dict[str, Any], hosts: int = 3) -> Sink:
    RAN.clear()
    sink = Sink()
    pipeline = HostPipeline(
        tree_from_plan(plan_run(task_class, 1)), connect=lambda node, host: None
    )
    exec_run = ExecRun("run", pipeline, sink, **run)

    async def go() -> None:
        with concurrent.futures.ThreadPoolExecutor(4) as threads:
            executor = HostExecutor(4, asyncio.get_running_loop(), threads)
            executor.submit(exec_run, [Host(id=f"h{i}") for i in range(hosts)])
            deadline = time.monotonic() + 10
            while sum(r[3] for r in sink.records) < hosts and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

    asyncio.run(go())
    return sink


@pytest.mark.parametrize("task_class", [Parent, AsyncParent], ids=["blocking", "async"])
def test_one_record_per_host_unless_the_run_streams(task_class: type) -> None:
    whole = _run(task_class, {})
    assert sorted(whole.began) == ["h0", "h1", "h2"]
    assert sorted(r[:4] for r in whole.records) == [(f"h{i}", 0, 2, True) for i in range(3)]
    streamed = _run(task_class, {"stream": True})
    assert sorted(r[:4] for r in streamed.records) == sorted(
        [(f"h{i}", 0, 1, False) for i in range(3)] + [(f"h{i}", 1, 1, True) for i in range(3)]
    )


def test_hosts_taken_after_the_deadline_are_not_started() -> None:
    failure = TaskFailureResult(message="too late", kind=TaskFailureKind.TIMEOUT, retryable=True)
    late = _run(Parent, {"deadline": time.monotonic() - 1, "deadline_failure": failure})
    assert RAN == []
    assert late.began == []
    assert sorted(r[:4] for r in late.records) == [(f"h{i}", 0, 2, True) for i in range(3)]
    assert all(result is failure for r in late.records for result in r[4])


# ---------------------------------------------------------------- workers are never lost


class EscapingPipeline(HostPipeline):
    """A pipeline with a bug: hosts named "bad*" raise out of it (the real one contains what
    tasks raise; the executor must survive its own bugs too)."""

    def run_blocking(self, host: Host, report: Any) -> None:
        if host.id.startswith("bad"):
            raise KeyboardInterrupt(host.id)
        super().run_blocking(host, report)

    async def run_async(self, host: Host, report: Any) -> None:
        if host.id.startswith("bad"):
            raise SystemExit(host.id)
        await super().run_async(host, report)


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("task_class", [Parent, AsyncParent], ids=["blocking", "async"])
def test_a_host_that_escapes_the_pipeline_fails_and_its_worker_goes_on(
    task_class: type, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()
    pipeline = EscapingPipeline(
        tree_from_plan(plan_run(task_class, 1)), connect=lambda node, host: None
    )
    hosts = [Host(id=f"bad{i}") for i in range(4)] + [Host(id=f"fine{i}") for i in range(4)]

    async def go() -> None:
        with concurrent.futures.ThreadPoolExecutor(2) as threads:
            executor = HostExecutor(2, asyncio.get_running_loop(), threads)
            executor.submit(ExecRun("run", pipeline, sink), hosts)
            await _until(lambda: len(sink.records) == len(hosts))

    asyncio.run(go())
    by_host = {r[0]: r[4] for r in sink.records}
    for i in range(4):
        bad = by_host[f"bad{i}"]
        assert all(isinstance(result, TaskFailureResult) for result in bad)
        assert bad[0].message.startswith("the agent stopped running this host")
        assert by_host[f"fine{i}"] == [TaskSuccessResult()] * 2
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(logged) == 4
    assert all("\n" not in line and line.startswith("running host 'bad") for line in logged)


@task(name="sleeper")
class Sleeper:
    async def start_async(self, task, host, context):  # type: ignore[no-untyped-def]
        RAN.append(host.id)
        if host.id.startswith("sleep"):
            await asyncio.sleep(3600)
        return TaskSuccessResult()


def test_cancelling_a_run_cancels_its_coroutines_and_frees_their_workers() -> None:
    RAN.clear()
    stuck, later = Sink(), Sink()
    pipeline = HostPipeline(tree_from_plan(plan_run(Sleeper, 0)), connect=lambda n, h: None)
    stuck_run = ExecRun("stuck", pipeline, stuck)

    async def go() -> None:
        with concurrent.futures.ThreadPoolExecutor(2) as threads:
            executor = HostExecutor(2, asyncio.get_running_loop(), threads)
            executor.submit(stuck_run, [Host(id=f"sleep{i}") for i in range(4)])
            await _until(lambda: len(RAN) == 2)  # both workers taken
            executor.cancel(stuck_run)
            executor.submit(ExecRun("later", pipeline, later), [Host(id="next")])
            await _until(lambda: len(later.records) == 1)

    asyncio.run(go())
    assert RAN == ["sleep0", "sleep1", "next"]  # the rest of the cancelled run never started
    # Whoever cancelled accounts for its hosts; the records of those that ran say so.
    assert sorted((r[0], r[4][0].message) for r in stuck.records) == [
        ("sleep0", "the run was cancelled while this host ran"),
        ("sleep1", "the run was cancelled while this host ran"),
    ]
    assert later.records[0][:4] == ("next", 0, 1, True)


class OutOfMemorySink(Sink):
    """Cannot encode the first records it gets for host "oom" (as when memory runs out)."""

    def record(self, host_id: str, first_node: int, results: list[Any], **kw: Any) -> None:
        if host_id == "oom" and not any(isinstance(r, TaskFailureResult) for r in results):
            raise MemoryError
        super().record(host_id, first_node, results, **kw)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_host_whose_records_cannot_be_made_still_ends(stream: bool) -> None:
    sink = OutOfMemorySink()
    pipeline = HostPipeline(tree_from_plan(plan_run(Parent, 1)), connect=lambda n, h: None)

    async def go() -> None:
        with concurrent.futures.ThreadPoolExecutor(1) as threads:
            executor = HostExecutor(1, asyncio.get_running_loop(), threads)
            run = ExecRun("run", pipeline, sink, stream=stream)
            executor.submit(run, [Host(id="oom"), Host(id="fine")])
            await _until(lambda: sum(r[3] for r in sink.records) == 2)

    asyncio.run(go())
    (oom,) = [r for r in sink.records if r[0] == "oom"]
    assert oom[1:4] == (0, 2, True)
    assert all(isinstance(result, TaskFailureResult) for result in oom[4])
    assert [r[4] for r in sink.records if r[0] == "fine"] in (
        [[TaskSuccessResult()] * 2],
        [[TaskSuccessResult()]] * 2,
    )
