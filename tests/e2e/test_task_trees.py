"""Depth limits, order and failure semantics of task trees, on real agents."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from genja.task import (
    Host,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSkipResult,
    TaskSuccessResult,
    task,
)
from tests.conftest import MakeGenja

pytestmark = pytest.mark.e2e


def _stamp(name: str) -> TaskSuccessResult:
    return TaskSuccessResult(summary=name, metadata={"at": time.monotonic_ns(), "pid": os.getpid()})


@task(name="leaf_a")
class LeafA:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return _stamp("leaf_a")


@task(name="leaf_b")
class LeafB:
    async def start_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return _stamp("leaf_b")


@task(name="middle", sub_tasks=[LeafA, LeafB])
class Middle:
    async def start_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return _stamp("middle")


@task(name="sibling")
class Sibling:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return _stamp("sibling")


@task(name="root", sub_tasks=[Middle, Sibling])
class Root:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return _stamp("root")


def _at(result: Any) -> int:
    return int(result.metadata["at"])


@pytest.mark.parametrize(
    ("max_depth", "shape"),
    [
        (0, {}),
        (1, {"middle": {}, "sibling": {}}),
        (2, {"middle": {"leaf_a": {}, "leaf_b": {}}, "sibling": {}}),
        (5, {"middle": {"leaf_a": {}, "leaf_b": {}}, "sibling": {}}),
    ],
)
def test_depth_limit(make_genja: MakeGenja, max_depth: int, shape: dict[str, Any]) -> None:
    results = make_genja(6).run_task(Root, max_depth=max_depth)

    def names(node: Any) -> dict[str, Any]:
        return {name: names(sub) for name, sub in node.sub_tasks.items()}

    assert names(results) == shape
    for node in results.walk():
        assert node.host_summary().passed == 6


def test_mixed_sync_and_async_tree_runs_parents_first_in_declared_order(
    make_genja: MakeGenja,
) -> None:
    results = make_genja(20).run_task(Root, max_depth=2)
    middle = results.sub_task("middle")
    for host in results.hosts:
        order = [
            _at(results[host]),
            _at(middle[host]),
            _at(middle.sub_task("leaf_a")[host]),
            _at(middle.sub_task("leaf_b")[host]),
            _at(results.sub_task("sibling")[host]),
        ]
        assert order == sorted(order), host
        pids = {n[host].metadata["pid"] for n in results.walk()}  # type: ignore[union-attr]
        assert len(pids) == 1, "a host's whole tree runs on one agent"


@task(name="child_after_failure")
class ChildAfterFailure:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult(summary="child ran")


@task(name="fails_or_skips", sub_tasks=[ChildAfterFailure])
class FailsOrSkips:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        if host.id.endswith("1"):
            return TaskFailureResult(message="nope", kind=TaskFailureKind.VALIDATION)
        if host.id.endswith("2"):
            return TaskSkipResult(reason="unsupported_platform")
        return TaskSuccessResult()


def test_failed_or_skipped_parent_does_not_skip_children(make_genja: MakeGenja) -> None:
    results = make_genja({"h1": {}, "h2": {}, "h3": {}}).run_task(FailsOrSkips, max_depth=1)
    child = results.sub_task("child_after_failure")
    assert child.host_summary().passed == 3
    assert results.failed_hosts == ["h1"]
    assert results.skipped_hosts == ["h2"]
    assert results.passed_hosts == ["h3"]


@task(name="raises_sync")
class RaisesSync:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        if host.id == "bad":
            raise ValueError("device said no")
        return TaskSuccessResult()


@task(name="raises_async", sub_tasks=[RaisesSync])
class RaisesAsync:
    async def start_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        if host.id == "bad":
            raise KeyError("missing")
        return TaskSuccessResult()


def test_exceptions_become_internal_failures_for_that_host(make_genja: MakeGenja) -> None:
    results = make_genja({"good": {}, "bad": {}}).run_task(RaisesAsync, max_depth=1)
    async_failure = results["bad"]
    sync_failure = results.sub_task("raises_sync")["bad"]
    assert isinstance(async_failure, TaskFailureResult)
    assert async_failure.kind is TaskFailureKind.INTERNAL
    assert async_failure.message == "task 'raises_async' raised KeyError: 'missing'"
    assert async_failure.details == {
        "exception_type": "builtins.KeyError",
        "exception_message": "'missing'",
    }
    assert isinstance(sync_failure, TaskFailureResult)
    assert sync_failure.details["exception_type"] == "builtins.ValueError"
    assert "device said no" in sync_failure.message
    assert results.passed_hosts == ["good"]
    assert results.failed_hosts == ["bad"]


@task(name="returns_garbage")
class ReturnsGarbage:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        if host.id == "dict":
            return {"not": "a result"}
        if host.id == "set":
            return TaskSuccessResult(result={1, 2})
        return TaskSuccessResult(result=[1])


def test_bad_return_values_are_failures_that_say_why(make_genja: MakeGenja) -> None:
    results = make_genja({"dict": {}, "set": {}, "fine": {}}).run_task(ReturnsGarbage)
    assert "returned dict; expected TaskSuccessResult" in results["dict"].message  # type: ignore[union-attr]
    assert "not JSON-serializable" in results["set"].message  # type: ignore[union-attr]
    assert results["fine"] == TaskSuccessResult(result=[1])


@task(name="sleepy")
class Sleepy:
    async def start_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        import asyncio

        if host.id == "stuck":
            await asyncio.sleep(3600)
        return TaskSuccessResult()


@task(name="sleepy_sync")
class SleepySync:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        if host.id == "stuck":
            time.sleep(30)
        return TaskSuccessResult()


@pytest.mark.parametrize("task_class", [Sleepy, SleepySync])
def test_task_timeout_fails_the_stuck_host_only(make_genja: MakeGenja, task_class: type) -> None:
    genja = make_genja({"stuck": {}, "quick": {}}, task_timeout=1.5)
    results = genja.run_task(task_class)
    failure = results["stuck"]
    assert isinstance(failure, TaskFailureResult)
    assert failure.kind is TaskFailureKind.TIMEOUT
    assert failure.retryable
    assert "within 1.5s" in failure.message
    assert "'stuck'" in failure.message
    assert results.passed_hosts == ["quick"]


def test_run_timeout_finishes_the_run_with_timeouts(make_genja: MakeGenja) -> None:
    genja = make_genja({"stuck": {}, "quick": {}}, run_timeout=2)
    results = genja.run_task(Sleepy)
    assert results["stuck"].kind is TaskFailureKind.TIMEOUT  # type: ignore[union-attr]
    assert "runner.options.run_timeout" in results["stuck"].message  # type: ignore[union-attr]
    assert results.passed_hosts == ["quick"]


def test_an_empty_selection_returns_an_empty_tree(make_genja: MakeGenja) -> None:
    results = make_genja({}).run_task(Root, max_depth=1)
    assert results.hosts == {}
    assert set(results.sub_tasks) == {"middle", "sibling"}
