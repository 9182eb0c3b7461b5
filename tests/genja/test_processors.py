"""Processors and run events without agents: batches in, events and hook calls out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import genja
from genja._plan import RunPlan, plan_run
from genja._processors import ProcessorRegistry
from genja._records import DecodedRecord
from genja._runtimes import RuntimeBatch
from genja._streaming import RunAssembler
from genja.task import (
    HostTaskResult,
    TaskFailureResult,
    TaskSkipResult,
    TaskSuccessResult,
    task,
)


class _Start:
    def start(self, task: Any, host: Any, context: Any) -> TaskSuccessResult:
        return TaskSuccessResult()


@task(name="leaf")
class Leaf(_Start):
    pass


@task(name="left", sub_tasks=[Leaf], processors=["rec"])
class Left(_Start):
    pass


@task(name="right", processors=["rec"])
class Right(_Start):
    pass


@task(name="root", sub_tasks=[Left, Right], processors=["rec"])
class Root(_Start):
    pass


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def on_task_start(self, ctx: genja.ProcessorContext) -> None:
        self.calls.append(("task_start", ctx.task_name, ctx.host_id))

    def on_instance_start(self, ctx: genja.ProcessorContext) -> None:
        self.calls.append(("instance_start", ctx.task_name, ctx.host_id))

    def on_instance_finish(self, ctx: genja.ProcessorContext, result: HostTaskResult) -> None:
        self.calls.append(("instance_finish", ctx.task_name, ctx.host_id))

    def on_task_finish(self, ctx: genja.ProcessorContext, results: genja.TaskResults) -> None:
        self.calls.append(("task_finish", ctx.task_name, ctx.host_id))


def _node(plan: RunPlan, host: str, path: tuple[int, ...], result: HostTaskResult) -> RuntimeBatch:
    """One node's record, as a streaming runtime reports it."""
    index = plan.paths().index(path)
    done = index == plan.node_count - 1
    return RuntimeBatch(records=(DecodedRecord(host, index, (result,), done),))


def _ok(plan: RunPlan, host: str, path: tuple[int, ...]) -> RuntimeBatch:
    return _node(plan, host, path, TaskSuccessResult(summary=f"{host} {path}"))


def _run(plan: RunPlan, hosts: list[str], processors: dict[str, Any]) -> list[Any]:
    """Feed a plausible interleaving: both hosts start, then their nodes alternate."""
    assembler = RunAssembler(plan, hosts, processors)
    events = assembler.begin()
    events += assembler.feed(RuntimeBatch(started_host_ids=tuple(hosts)))
    for path in plan.paths():
        for host in hosts:
            events += assembler.feed(_ok(plan, host, path))
    return events + assembler.finish()


def test_hook_order_over_a_tree_and_several_hosts() -> None:
    recorder = Recorder()
    plan = plan_run(Root, 2)
    _run(plan, ["h1", "h2"], {"rec": recorder})
    calls = recorder.calls
    # Leaf selects no processor: it never shows up.
    assert calls[:3] == [
        ("task_start", "root", None),
        ("task_start", "left", None),
        ("task_start", "right", None),
    ]
    assert calls[-3:] == [
        ("task_finish", "left", None),
        ("task_finish", "right", None),
        ("task_finish", "root", None),
    ]
    for host in ("h1", "h2"):
        mine = [(hook, name) for hook, name, h in calls if h == host]
        assert mine == [
            ("instance_start", "root"),
            ("instance_finish", "root"),
            ("instance_start", "left"),
            ("instance_finish", "left"),
            ("instance_start", "right"),
            ("instance_finish", "right"),
        ]


def test_events_order_per_host() -> None:
    plan = plan_run(Root, 2)
    events = _run(plan, ["h1", "h2"], {"rec": Recorder()})
    assert isinstance(events[0], genja.RunStarted)
    assert events[0].host_ids == ("h1", "h2")
    assert events[0].node_count == 4
    assert isinstance(events[-1], genja.RunFinished)
    for host in ("h1", "h2"):
        mine = [e for e in events if getattr(e, "host_id", None) == host]
        assert isinstance(mine[0], genja.HostStarted)
        assert [e.task_path for e in mine[1:-1]] == [
            ("root",),
            ("root", "left"),
            ("root", "left", "leaf"),
            ("root", "right"),
        ]
        assert mine[-1] == genja.HostFinished(host, genja.task.TaskStatus.PASSED)
    tree = events[-1].results
    assert tree.sub_task("left", "leaf")["h2"] == TaskSuccessResult(summary="h2 (0, 0)")


def test_a_host_reported_without_a_start_still_gets_one() -> None:
    plan = plan_run(Right, 0)
    assembler = RunAssembler(plan, ["h1"], {"rec": Recorder()})
    assembler.begin()
    events = assembler.feed(_ok(plan, "h1", ()))
    assert [type(e).__name__ for e in events] == ["HostStarted", "NodeFinished", "HostFinished"]


class Stamp:
    def on_instance_finish(
        self, ctx: genja.ProcessorContext, result: HostTaskResult
    ) -> HostTaskResult | None:
        if isinstance(result, TaskSuccessResult):
            return TaskSuccessResult(summary=f"{result.summary} [{ctx.task_name}]")
        return None

    def on_task_finish(
        self, ctx: genja.ProcessorContext, results: genja.TaskResults
    ) -> genja.TaskResults | None:
        if ctx.task_name == "right":
            return genja.TaskResults(
                "right", {h: TaskSkipResult(reason="redacted") for h in results.hosts}
            )
        return None


def test_replacement_results_from_instance_and_task_hooks() -> None:
    plan = plan_run(Root, 2)
    events = _run(plan, ["h1"], {"rec": Stamp()})
    finished = [e for e in events if isinstance(e, genja.NodeFinished)]
    assert finished[0].result == TaskSuccessResult(summary="h1 () [root]")
    # Leaf has no processors: untouched.
    assert finished[2].result == TaskSuccessResult(summary="h1 (0, 0)")
    tree = events[-1].results
    assert tree["h1"].summary == "h1 () [root]"
    assert tree.sub_task("right")["h1"] == TaskSkipResult(reason="redacted")


class Chained:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def on_instance_finish(self, ctx: Any, result: HostTaskResult) -> HostTaskResult:
        assert isinstance(result, TaskSuccessResult)
        return TaskSuccessResult(summary=f"{result.summary}+{self.tag}")


def test_processors_run_in_the_listed_order() -> None:
    @task(name="two", processors=["b", "a"])
    class Two(_Start):
        pass

    plan = plan_run(Two, 0)
    events = _run(plan, ["h1"], {"a": Chained("a"), "b": Chained("b")})
    assert events[-1].results["h1"].summary == "h1 ()+b+a"


class Broken:
    def on_task_start(self, ctx: Any) -> None:
        raise RuntimeError("start hook broke")

    def on_instance_finish(self, ctx: Any, result: HostTaskResult) -> HostTaskResult:
        if ctx.host_id == "h2":
            raise ValueError("cannot decorate h2")
        return result


def test_a_hook_that_raises_is_reported_and_results_are_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = plan_run(Right, 0)
    events = _run(plan, ["h1", "h2", "h3"], {"rec": Broken()})
    failed = [e for e in events if isinstance(e, genja.ProcessorFailed)]
    assert [(f.processor, f.hook, f.host_id) for f in failed] == [
        ("rec", "on_task_start", None),
        ("rec", "on_instance_finish", "h2"),
    ]
    assert failed[1].error == "ValueError: cannot decorate h2"
    tree = events[-1].results
    assert list(tree.hosts) == ["h1", "h2", "h3"]
    assert tree["h1"] == TaskSuccessResult(summary="h1 ()")
    assert tree["h2"].status.value == "passed_with_warnings"  # still counts as passed
    assert tree.host_summary().passed == 3
    assert tree["h2"].warnings == (
        "processor 'rec' on_instance_finish failed: ValueError: cannot decorate h2",
    )
    assert "processor 'rec' on_instance_finish failed" in caplog.text


def test_a_replacement_that_is_not_a_result_is_reported() -> None:
    class Wrong:
        def on_instance_finish(self, ctx: Any, result: HostTaskResult) -> object:
            return {"not": "a result"}

    events = _run(plan_run(Right, 0), ["h1"], {"rec": Wrong()})
    failed = [e for e in events if isinstance(e, genja.ProcessorFailed)]
    assert "returned dict" in failed[0].error
    assert events[-1].results["h1"].summary == "h1 ()"


def test_unknown_processor_names_the_task_the_processor_and_the_known_names() -> None:
    registry = ProcessorRegistry({"recorder": Recorder})
    with pytest.raises(genja.ConfigurationError) as caught:
        registry.instantiate({"root": ["recorder"], "left": ["recordr"]})
    message = str(caught.value)
    assert "task 'left'" in message
    assert "processor 'recordr'" in message
    assert "did you mean 'recorder'?" in message
    assert "audit, jsonl, progress" in message


def test_a_processor_without_hooks_is_refused() -> None:
    with pytest.raises(genja.ConfigurationError, match="has none of the hooks"):
        ProcessorRegistry({"nothing": object()})


def test_classes_are_instantiated_per_run_and_instances_shared() -> None:
    shared = Recorder()
    registry = ProcessorRegistry({"cls": Recorder, "obj": shared})
    first = registry.instantiate({"t": ["cls", "obj"]})
    second = registry.instantiate({"t": ["cls", "obj"]})
    assert first["cls"] is not second["cls"]
    assert first["obj"] is second["obj"] is shared


def test_register_processor_reaches_genja_objects_built_afterwards_only() -> None:
    before = genja.Genja.from_hosts({})
    genja.register_processor("test-registry-copy", Recorder)
    after = genja.Genja.from_hosts({})
    other = genja.Genja.from_hosts({})
    other.register_processor("only-on-other", Recorder)
    assert "test-registry-copy" not in before.processor_names()
    assert "test-registry-copy" in after.processor_names()
    assert "only-on-other" in other.processor_names()
    assert "only-on-other" not in after.processor_names()


def test_builtin_jsonl_writes_a_line_per_result(tmp_path: Path) -> None:
    path = tmp_path / "out" / "run.jsonl"
    failure = TaskFailureResult(message="refused", kind="connection")

    @task(name="one", processors=["jsonl"])
    class One(_Start):
        pass

    plan = plan_run(One, 0)
    assembler = RunAssembler(plan, ["h1", "h2"], {"jsonl": genja.JsonlProcessor(path)})
    assembler.begin()
    assembler.feed(_ok(plan, "h1", ()))
    lines = path.read_text().splitlines()
    assert len(lines) == 1  # written as the result arrived, not at the end
    assembler.feed(_node(plan, "h2", (), failure))
    assembler.finish()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["host"], r["task"], r["status"]) for r in records] == [
        ("h1", "one", "passed"),
        ("h2", "one", "failed"),
    ]
    assert records[1]["kind"] == "connection"
    assert records[1]["message"] == "refused"


def test_builtin_audit_records_who_and_when() -> None:
    @task(name="audited", processors=["audit"])
    class Audited(_Start):
        pass

    plan = plan_run(Audited, 0)
    assembler = RunAssembler(plan, ["h1", "h2", "h3"], {"audit": genja.AuditProcessor("alice")})
    assembler.begin()
    assembler.feed(RuntimeBatch(started_host_ids=("h1", "h2", "h3")))
    assembler.feed(_ok(plan, "h1", ()))
    assembler.feed(_node(plan, "h2", (), TaskFailureResult(message="no")))
    assembler.feed(_node(plan, "h3", (), TaskSkipResult(reason="n/a")))
    tree = assembler.finish()[-1].results  # type: ignore[union-attr]
    audit = tree["h1"].metadata["audit"]
    assert audit["user"] == "alice"
    assert audit["task"] == "audited"
    assert audit["host"] == "h1"
    assert audit["started_at"] <= audit["finished_at"]
    assert tree["h2"].details["audit"]["user"] == "alice"
    assert tree["h3"] == TaskSkipResult(reason="n/a")


def test_builtin_progress_prints_counted_lines() -> None:
    import io

    stream = io.StringIO()

    @task(name="counted", processors=["progress"])
    class Counted(_Start):
        pass

    _run(plan_run(Counted, 0), ["h1", "h2"], {"progress": genja.ProgressProcessor(stream)})
    assert stream.getvalue().splitlines() == [
        "[1/2] counted h1: passed: h1 ()",
        "[2/2] counted h2: passed: h2 ()",
    ]
