"""The host pipeline on its own: policies plug in around a node's call, in both drivers."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

import genja
from agent._inprocess import SerialRuntime
from agent._pipeline import (
    ExecNode,
    HostPipeline,
    NodeCall,
    Pause,
    PolicySteps,
    Proceed,
    tree_from_plan,
)
from genja._plan import plan_run
from genja.task import HostTaskResult, TaskFailureResult, TaskStatus, TaskSuccessResult, task

CALLS: list[tuple[str, str]] = []  # (host, task) per call


@task(name="flaky")
class Flaky:
    """Fails its first attempt on every host."""

    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        CALLS.append((host.id, task.name))
        if CALLS.count((host.id, task.name)) == 1:
            return TaskFailureResult(message="first try", retryable=True)
        return TaskSuccessResult(summary="second try")


@task(name="flaky_async", sub_tasks=[Flaky])
class FlakyAsync:
    async def start_async(self, task, host, context):  # type: ignore[no-untyped-def]
        return Flaky().start(task, host, context)


class TryTwice:
    """The trivial policy of the module docstring: one more attempt after a pause."""

    name = "try-twice"

    def __init__(self) -> None:
        self.attempts: list[int] = []

    def applies(self, node: ExecNode) -> bool:
        return node.info.name.startswith("flaky")

    def around(self, call: NodeCall) -> PolicySteps:
        self.attempts.append(call.attempt)
        result = yield Proceed(call)
        assert result is not None
        if result.status is TaskStatus.FAILED and call.attempt == 1:
            yield Pause(0.01)
            result = yield Proceed(dataclasses.replace(call, attempt=2))
            self.attempts.append(2)
        return result


class Label:
    """An inner layer: decorates what the entry point returned."""

    name = "label"

    def applies(self, node: ExecNode) -> bool:
        return True

    def around(self, call: NodeCall) -> PolicySteps:
        result = yield Proceed(call)
        if isinstance(result, TaskSuccessResult):
            return dataclasses.replace(result, metadata={"attempt": call.attempt})
        assert result is not None
        return result


class Broken:
    name = "broken"

    def applies(self, node: ExecNode) -> bool:
        return True

    def around(self, call: NodeCall) -> PolicySteps:
        yield Proceed(call)
        raise RuntimeError("the policy itself is buggy")


def _pipeline(task_class: type, policies: list[Any], depth: int = 0) -> HostPipeline:
    return HostPipeline(
        tree_from_plan(plan_run(task_class, depth)),
        connect=lambda node, host: None,
        policies=policies,
    )


def _run(pipeline: HostPipeline) -> list[HostTaskResult]:
    host = genja.Host(id="r1")
    reported: list[HostTaskResult] = []
    if pipeline.blocking_only:
        pipeline.run_blocking(host, lambda i, result, *_: reported.append(result))
    else:
        asyncio.run(pipeline.run_async(host, lambda i, result, *_: reported.append(result)))
    return reported


@pytest.mark.parametrize("task_class", [Flaky, FlakyAsync], ids=["blocking", "async"])
def test_a_policy_wraps_each_node_it_applies_to(task_class: type) -> None:
    CALLS.clear()
    retry, label = TryTwice(), Label()
    pipeline = _pipeline(task_class, [retry, label], depth=1)
    assert pipeline.blocking_only is (task_class is Flaky)
    results = _run(pipeline)
    expected = TaskSuccessResult(summary="second try", metadata={"attempt": 2})
    assert results == [expected] * len(results)
    assert len(CALLS) == 2 * len(results)  # every node ran twice
    assert retry.attempts == [1, 2] * len(results)


def test_a_node_no_policy_applies_to_is_called_directly() -> None:
    CALLS.clear()
    pipeline = _pipeline(Flaky, [])
    (result,) = _run(pipeline)
    assert isinstance(result, TaskFailureResult)
    assert len(CALLS) == 1


def test_a_failing_policy_fails_the_node_and_names_itself() -> None:
    CALLS.clear()
    (result,) = _run(_pipeline(Flaky, [Broken()]))
    assert isinstance(result, TaskFailureResult)
    assert result.message.startswith("policy 'broken' failed around task 'flaky'")
    assert "the policy itself is buggy" in result.message


def test_policies_plug_into_a_runtime() -> None:
    CALLS.clear()
    settings = genja.Settings.from_dict({"runner": {"plugin": "serial"}})
    runtime = SerialRuntime(settings, policies=[TryTwice()])
    with genja.Genja.from_hosts({"a": {}, "b": {}}, settings, runtime=runtime) as g:
        results = g.run_task(Flaky)
    assert results.host_summary().passed == 2
    assert results["a"] == TaskSuccessResult(summary="second try")
