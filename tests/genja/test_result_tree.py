from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from genja import HostSummary, TaskResults
from genja._plan import plan_run
from genja._records import DecodedRecord
from genja._runtimes import RuntimeBatch
from genja.task import (
    ExecutionMetadata,
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskMessage,
    TaskMessageLevel,
    TaskSkipResult,
    TaskStatus,
    TaskSuccessResult,
)
from genja.task import task as task_decorator


def _tree() -> TaskResults:
    return TaskResults(
        task_name="deploy_config",
        hosts={
            "router1": TaskSuccessResult(
                summary="deployed", metadata={"platform": "ios"}, changed=True, diff="+x"
            ),
            "router2": TaskSuccessResult(summary="deployed"),
            "router3": TaskSkipResult(reason="unsupported_platform", message="not here"),
        },
        sub_tasks={
            "validate_config": TaskResults(
                task_name="validate_config",
                hosts={
                    "router1": TaskSuccessResult(result={"ok": True}, warnings=["slow"]),
                    "router2": TaskFailureResult(
                        message="mismatch",
                        kind=TaskFailureKind.VALIDATION,
                        retryable=False,
                        details={"line": 3},
                        messages=["diffed"],
                    ),
                    "router3": TaskSkipResult(),
                },
            )
        },
    )


def test_normalized_shape() -> None:
    assert _tree().to_dict() == {
        "task_name": "deploy_config",
        "hosts": {
            "router1": {
                "status": "passed",
                "summary": "deployed",
                "changed": True,
                "diff": "+x",
                "metadata": {"platform": "ios"},
            },
            "router2": {"status": "passed", "summary": "deployed"},
            "router3": {
                "status": "skipped",
                "reason": "unsupported_platform",
                "message": "not here",
            },
        },
        "sub_tasks": {
            "validate_config": {
                "task_name": "validate_config",
                "hosts": {
                    "router1": {
                        "status": "passed_with_warnings",
                        "result": {"ok": True},
                        "warnings": ["slow"],
                    },
                    "router2": {
                        "status": "failed",
                        "message": "mismatch",
                        "kind": "validation",
                        "retryable": False,
                        "details": {"line": 3},
                        "messages": [{"level": "info", "text": "diffed"}],
                    },
                    "router3": {"status": "skipped"},
                },
                "sub_tasks": {},
            }
        },
    }


def test_raw_shape_wraps_every_field_in_the_variant_name() -> None:
    raw = _tree().to_dict(raw=True)
    assert raw["hosts"]["router2"] == {
        "Passed": {
            "result": None,
            "changed": False,
            "diff": None,
            "summary": "deployed",
            "warnings": [],
            "messages": [],
            "metadata": {},
        }
    }
    assert raw["sub_tasks"]["validate_config"]["hosts"]["router2"] == {
        "Failed": {
            "message": "mismatch",
            "kind": "validation",
            "retryable": False,
            "details": {"line": 3},
            "warnings": [],
            "messages": [{"level": "info", "text": "diffed", "code": None, "timestamp": None}],
        }
    }
    assert list(raw["sub_tasks"]["validate_config"]["hosts"]["router1"]) == ["PassedWithWarnings"]
    assert raw["hosts"]["router3"] == {
        "Skipped": {"reason": "unsupported_platform", "message": "not here"}
    }


@pytest.mark.parametrize("raw", [True, False])
def test_json_round_trip(raw: bool) -> None:
    tree = _tree()
    text = tree.to_json(raw=raw, pretty=True)
    assert "\n  " in text
    again = TaskResults.from_dict(json.loads(text))
    assert again == tree


def test_host_views_look_at_the_whole_tree() -> None:
    tree = _tree()
    assert tree.failed_hosts == ["router2"]
    assert tree.passed_hosts == ["router1"]
    assert tree.skipped_hosts == ["router3"]
    assert tree.host_summary() == HostSummary(passed=1, failed=1, skipped=1)
    assert str(tree.host_summary()) == "passed=1 failed=1 skipped=1"


def test_task_summary_counts_recursively() -> None:
    summary = _tree().task_summary()
    assert summary.hosts == HostSummary(passed=2, failed=0, skipped=1)
    assert summary.sub_tasks[0].task_name == "validate_config"
    assert summary.sub_tasks[0].hosts == HostSummary(passed=1, failed=1, skipped=1)
    assert summary.total == HostSummary(passed=3, failed=1, skipped=2)
    assert "validate_config: passed=1 failed=1 skipped=1" in str(summary)


def test_lookup_of_hosts_and_sub_tasks() -> None:
    tree = _tree()
    assert tree["router1"].status is TaskStatus.PASSED
    assert tree.host("router3").status is TaskStatus.SKIPPED
    assert tree.sub_task("validate_config")["router2"].status is TaskStatus.FAILED
    with pytest.raises(KeyError, match="no result for host 'nope'"):
        tree.host("nope")
    with pytest.raises(KeyError, match=r"no sub-task 'nope'.*validate_config"):
        tree.sub_task("nope")


def test_result_types_validate_their_fields() -> None:
    assert TaskFailureResult(message="x", kind="timeout").kind is TaskFailureKind.TIMEOUT
    with pytest.raises(ValueError, match="unknown failure kind 'bogus'"):
        TaskFailureResult(message="x", kind="bogus")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="summary must be a string"):
        TaskSuccessResult(summary=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="warnings must be strings"):
        TaskSuccessResult(warnings=[1])  # type: ignore[list-item]
    assert TaskSuccessResult(messages=["a"]).messages == (TaskMessage("a"),)
    with pytest.raises(TypeError, match="messages must be TaskMessages or strings"):
        TaskSuccessResult(messages=[3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown message level 'loud'"):
        TaskMessage("x", level="loud")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        TaskSkipResult().reason = "x"  # type: ignore[misc]


def test_a_passed_result_with_warnings_counts_as_passed() -> None:
    warned = TaskSuccessResult(summary="ok", warnings=["slow"])
    assert warned.status is TaskStatus.PASSED_WITH_WARNINGS
    assert [status for status in TaskStatus if status.passed] == [
        TaskStatus.PASSED,
        TaskStatus.PASSED_WITH_WARNINGS,
    ]
    assert TaskSuccessResult().status is TaskStatus.PASSED
    tree = TaskResults(task_name="t", hosts={"a": warned, "b": TaskSuccessResult()})
    assert tree.passed_hosts == ["a", "b"]
    assert tree.host_summary() == HostSummary(passed=2)
    assert tree.task_summary().hosts == HostSummary(passed=2)


def test_levelled_messages_travel_through_both_json_shapes() -> None:
    stamp = datetime(2026, 9, 1, 12, 30, tzinfo=timezone.utc)
    result = TaskFailureResult(
        message="m",
        messages=[
            "plain",
            TaskMessage(level=TaskMessageLevel.WARNING, text="w", code="W1", timestamp=stamp),
            TaskMessage("e", level="error"),  # type: ignore[arg-type]
        ],
    )
    assert [m.level for m in result.messages] == [
        TaskMessageLevel.INFO,
        TaskMessageLevel.WARNING,
        TaskMessageLevel.ERROR,
    ]
    normalized = TaskResults(task_name="t", hosts={"a": result}).to_dict()
    assert normalized["hosts"]["a"]["messages"] == [
        {"level": "info", "text": "plain"},
        {"level": "warning", "text": "w", "code": "W1", "timestamp": "2026-09-01T12:30:00+00:00"},
        {"level": "error", "text": "e"},
    ]
    for raw in (True, False):
        text = TaskResults(task_name="t", hosts={"a": result}).to_json(raw=raw)
        assert TaskResults.from_dict(json.loads(text))["a"] == result


def test_execution_metadata_says_how_many_attempts_ran() -> None:
    started = datetime(2026, 9, 1, tzinfo=timezone.utc)
    once = ExecutionMetadata(started_at=started, duration=0.5)
    assert (once.attempts, once.retried, once.retries_exhausted) == (1, False, False)
    thrice = ExecutionMetadata(
        started_at=started, duration=2.0, agent="local-0", attempts=3, retries_exhausted=True
    )
    data = thrice.to_dict()
    assert (data["attempts"], data["retried"], data["retries_exhausted"]) == (3, True, True)
    assert data["finished_at"] == "2026-09-01T00:00:02+00:00"
    assert ExecutionMetadata.from_dict(data) == thrice
    assert ExecutionMetadata.from_dict({"started_at": started.isoformat(), "duration": 1}) == (
        ExecutionMetadata(started_at=started, duration=1.0)
    )


# ---------------------------------------------------------------- a run's lazy tree


class _CountingRecord(DecodedRecord):
    """A record that counts how often its results are made (timing attached: the work a
    wire record's decoding does)."""

    decoded = 0

    def results(self):  # type: ignore[no-untyped-def]
        if self._started:
            type(self).decoded += 1
        return super().results()


def test_a_runs_tree_decodes_nothing_until_results_are_read() -> None:
    from genja._streaming import RunAssembler

    @task_decorator(name="leaf")
    class Leaf:
        def start(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    @task_decorator(name="root", sub_tasks=[Leaf])
    class Root:
        def start(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    plan = plan_run(Root, 1)
    hosts = [f"h{i}" for i in range(1000)]
    assembler = RunAssembler(plan, hosts, {}, host_events=False, run_id="r")
    assembler.begin()
    records = []
    for host in hosts:
        leaf: HostTaskResult = TaskSuccessResult()
        if host == "h7":
            leaf = TaskFailureResult(message="down", kind=TaskFailureKind.CONNECTION)
        elif host == "h8":
            leaf = TaskSkipResult(reason="n/a")
        records.append(
            _CountingRecord(
                host,
                0,
                [TaskSuccessResult(), leaf],
                True,
                started_ns=[1, 2],
                durations_ns=[3, 4],
                agent="local-0",
            )
        )
    _CountingRecord.decoded = 0
    assembler.feed(RuntimeBatch(records=tuple(records)))
    (finished,) = assembler.finish()
    tree = finished.results  # type: ignore[union-attr]
    assert tree.host_summary() == HostSummary(passed=999, failed=1)
    assert tree.task_summary().total == HostSummary(passed=1998, failed=1, skipped=1)
    assert tree.failed_hosts == ["h7"]
    assert tree.sub_task("leaf").skipped_hosts == ["h8"]
    assert len(tree.sub_task("leaf")) == 1000
    assert "h999" in tree
    assert _CountingRecord.decoded == 0  # all of that from status bytes
    failure = tree.sub_task("leaf")["h7"]
    assert isinstance(failure, TaskFailureResult)
    assert failure.execution_metadata is not None
    assert failure.execution_metadata.agent == "local-0"
    data = tree.to_dict()
    assert data["run_id"] == "r"
    assert data["hosts"]["h1"]["execution_metadata"]["duration"] == 3e-9
    assert _CountingRecord.decoded == 1000  # once per host, however many nodes it has
