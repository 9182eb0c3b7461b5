"""The Genja facade on a fake runtime: no processes, no sockets, every call recorded."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import genja
from genja._records import DecodedRecord, HostRecord
from genja._runtimes import RunJob, RuntimeBatch, installed_runners
from genja.task import (
    HostTaskResult,
    TaskFailureResult,
    TaskSuccessResult,
    task,
)


@task(name="leaf")
class Leaf:
    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        return TaskSuccessResult()


@task(name="root", sub_tasks=[Leaf])
class Root:
    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        return TaskSuccessResult()


@dataclass
class FakeRuntime:
    """Passes every node of every host, one record per host; remembers what it was asked.
    `drop` hosts get no record at all, `partial` hosts only their first node."""

    drop: set[str] = field(default_factory=set)
    partial: set[str] = field(default_factory=set)
    jobs: list[RunJob] = field(default_factory=list)
    closed_connections: list[Collection[str] | None] = field(default_factory=list)
    closed: int = 0

    async def run(self, job: RunJob) -> AsyncGenerator[RuntimeBatch, None]:
        self.jobs.append(job)
        nodes = job.plan.node_count
        records: list[HostRecord] = []
        for host in job.hosts:
            if host.id in self.drop:
                continue
            count = 1 if host.id in self.partial else nodes
            results: list[HostTaskResult] = [TaskSuccessResult(summary=host.id)] * count
            records.append(DecodedRecord(host.id, 0, results, host.id not in self.partial))
        yield RuntimeBatch(tuple(h.id for h in job.hosts), tuple(records))

    async def close_connections(self, host_ids: Collection[str] | None = None) -> None:
        self.closed_connections.append(host_ids)

    def close(self) -> None:
        self.closed += 1


def _genja(runtime: FakeRuntime, hosts: int = 3, **kwargs: Any) -> genja.Genja:
    return genja.Genja.from_hosts(
        {f"h{i}": {"platform": "ios" if i % 2 else "eos"} for i in range(hosts)},
        runtime=runtime,
        **kwargs,
    )


def test_runs_go_to_the_injected_runtime() -> None:
    runtime = FakeRuntime()
    with _genja(runtime) as g:
        assert g.runtime is runtime
        results = g.run_task(Root, max_depth=1)
    assert results.host_summary() == genja.HostSummary(passed=3)
    assert results.sub_task("leaf")["h2"] == TaskSuccessResult(summary="h2")
    (job,) = runtime.jobs
    assert [h.id for h in job.hosts] == ["h0", "h1", "h2"]
    assert job.plan.node_count == 2
    assert results.run_id == job.run_id
    assert not job.stream  # nobody watches: one record per host will do
    assert runtime.closed == 1


def test_a_filtered_genja_runs_and_closes_only_its_hosts() -> None:
    runtime = FakeRuntime()
    g = _genja(runtime, 4)
    eos = g.filter(platform="eos")
    results = eos.run_task(Root, max_depth=0)
    assert list(results.hosts) == ["h0", "h2"]
    eos.close_connections()
    g.close_connections()
    assert runtime.closed_connections == [["h0", "h2"], None]
    g.close()


def test_watching_a_run_asks_for_records_as_nodes_finish() -> None:
    runtime = FakeRuntime()
    g = _genja(runtime)
    events = list(g.stream_task(Root, max_depth=1))
    assert runtime.jobs[-1].stream
    started = events[0]
    assert isinstance(started, genja.RunStarted)
    assert started.run_id == runtime.jobs[-1].run_id
    finished = [e for e in events if isinstance(e, genja.HostFinished)]
    assert [e.host_id for e in finished] == ["h0", "h1", "h2"]
    g.close()


def test_hosts_the_runtime_leaves_out_still_get_a_result_that_says_so() -> None:
    runtime = FakeRuntime(drop={"h1"}, partial={"h2"})
    g = _genja(runtime)
    for results in (g.run_task(Root, max_depth=1), _last(g.stream_task(Root, max_depth=1))):
        assert results.failed_hosts == ["h1", "h2"]
        assert results["h2"] == TaskSuccessResult(summary="h2")
        for host in ("h1", "h2"):
            failure = results.sub_task("leaf")[host]
            assert isinstance(failure, TaskFailureResult)
            assert "ended the run without a result" in failure.message
    g.close()


def _last(events: Any) -> genja.TaskResults:
    *_, finished = events
    assert isinstance(finished, genja.RunFinished)
    return finished.results


def test_the_async_forms_share_the_runtime() -> None:
    runtime = FakeRuntime()
    g = _genja(runtime)

    async def both() -> list[genja.TaskResults]:
        return list(await asyncio.gather(g.run_task_async(Root), g.run_task_async(Leaf)))

    root, leaf = asyncio.run(both())
    assert root.task_name == "root"
    assert leaf.task_name == "leaf"
    assert len({job.run_id for job in runtime.jobs}) == 2
    g.close()


def test_the_runner_is_chosen_by_name_and_checked_when_settings_load(tmp_path: Path) -> None:
    assert {"agents", "serial", "threaded"} <= set(installed_runners())
    path = tmp_path / "settings.yaml"
    path.write_text("runner:\n  worker_count: 2\n  plugin: threded\n")
    with pytest.raises(genja.ConfigurationError) as caught:
        genja.Settings.from_file(path)
    message = str(caught.value)
    assert f"{path}: line 3:" in message
    assert "runner.plugin" in message
    assert "agents, serial, threaded" in message
    assert "did you mean 'threaded'?" in message


def test_with_runner_returns_a_new_genja_on_another_runner() -> None:
    g = genja.Genja.from_hosts({"h0": {}, "h1": {}})
    serial = g.with_runner("serial", task_timeout=5)
    assert serial.settings.runner.plugin == "serial"
    assert serial.settings.runner.options.task_timeout == 5.0
    assert g.settings.runner.plugin == "agents"
    assert g.settings.runner.options.task_timeout is None
    assert serial.host_ids() == g.host_ids()
    with serial:
        assert serial.run_task(Root).host_summary().passed == 2
        assert type(serial.runtime).__name__ == "SerialRuntime"
    assert g.runtime is None  # this one never started anything
    with pytest.raises(genja.ConfigurationError, match="installed runner"):
        g.with_runner("nope")
    with pytest.raises(genja.ConfigurationError, match="task_timeout"):
        g.with_runner("serial", task_timeout=-1)
    with pytest.raises(genja.ConfigurationError, match="did you mean 'task_timeout'"):
        g.with_runner("serial", task_timout=1)


@dataclass
class StallingRuntime:
    """Reports `h0` done, then waits for good; says whether it was left (cancelled while
    waiting, or closed between batches: what cancels a real runtime's unfinished hosts)."""

    waiting: threading.Event = field(default_factory=threading.Event)
    left: bool = False

    async def run(self, job: RunJob) -> AsyncGenerator[RuntimeBatch, None]:
        nodes = job.plan.node_count
        record = DecodedRecord("h0", 0, [TaskSuccessResult(summary="h0")] * nodes, True)
        try:
            yield RuntimeBatch(tuple(h.id for h in job.hosts), (record,))
            self.waiting.set()
            await asyncio.Event().wait()
        finally:
            self.left = True

    async def close_connections(self, host_ids: Collection[str] | None = None) -> None:
        return None

    def close(self) -> None:
        return None


def _interrupted(results: genja.TaskResults, reason: str) -> None:
    assert results.passed_hosts == ["h0"]
    assert results.failed_hosts == ["h1", "h2"]
    failure = results["h1"]
    assert isinstance(failure, TaskFailureResult)
    assert failure.message == f"the run was interrupted before this host finished ({reason})"
    assert failure.retryable


def test_stopping_a_stream_cancels_the_rest_and_still_ends_with_the_tree() -> None:
    runtime = StallingRuntime()
    g = _genja(runtime)  # type: ignore[arg-type]
    stream = g.stream_task(Root, max_depth=1)
    events: list[genja.RunEvent] = []
    for event in stream:
        events.append(event)
        if isinstance(event, genja.HostFinished) and event.host_id == "h0":
            stream.stop("enough")
    assert runtime.left
    finished = events[-1]
    assert isinstance(finished, genja.RunFinished)
    _interrupted(finished.results, "enough")
    failed = [e.host_id for e in events if isinstance(e, genja.NodeFinished) and e.host_id != "h0"]
    assert sorted(failed) == ["h1", "h1", "h2", "h2"], "every node of every host is reported"
    stream.stop("again")  # after the end: nothing happens


def test_a_stream_stops_from_another_thread_while_it_waits() -> None:
    runtime = StallingRuntime()
    g = _genja(runtime)  # type: ignore[arg-type]
    stream = g.stream_task(Root, max_depth=1)

    def stop_when_waiting() -> None:
        runtime.waiting.wait(timeout=60)
        stream.stop("SIGTERM")

    stopper = threading.Thread(target=stop_when_waiting)
    stopper.start()
    results = _last(stream)  # the loop is blocked in select() when the stop comes
    stopper.join(timeout=60)
    _interrupted(results, "SIGTERM")
    assert runtime.left


def test_a_stream_stopped_before_it_starts_fails_every_host() -> None:
    g = _genja(FakeRuntime())
    stream = g.stream_task(Root)
    stream.stop("early")
    results = _last(stream)
    assert results.failed_hosts == ["h0", "h1", "h2"]
