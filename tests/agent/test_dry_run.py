"""The dry-run policy in the host pipeline, both drivers (end to end: tests/e2e/test_dry_run.py)."""

from __future__ import annotations

from typing import Any

import pytest

from agent._dry_run import DryRunPolicy
from agent._pipeline import tree_from_plan
from genja._plan import plan_run
from genja._settings import RunnerRetrySettings
from genja.task import (
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskSuccessResult,
    task,
)
from tests.agent._policy_harness import DRIVERS, Connections, run


class _Records:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, Any]] = []

    def record(self, method: str, context: Any) -> None:
        self.calls.append((method, context.dry_run, context.connection()))


@task(name="plan", connection_plugin_name="fake", supports_dry_run=True)
class Plans(_Records):
    def start(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        self.record("start", context)
        return TaskSuccessResult(changed=True, summary="applied")

    def dry_run(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        self.record("dry_run", context)
        return TaskSuccessResult(changed=True, diff="+ntp", summary="would apply")


@task(name="plan_async", connection_plugin_name="fake", supports_dry_run=True)
class PlansAsync(_Records):
    async def start_async(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        self.record("start_async", context)
        return TaskSuccessResult(changed=True, summary="applied")

    async def dry_run_async(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        self.record("dry_run_async", context)
        return TaskSuccessResult(changed=True, diff="+ntp", summary="would apply")


@task(name="no_plan", connection_plugin_name="fake")
class CannotPlan(_Records):
    def start(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        self.record("start", context)
        return TaskSuccessResult(changed=True)


# (task class, driver): blocking tasks in both drivers, async tasks in the async one.
CASES = [(Plans, driver) for driver in DRIVERS] + [(PlansAsync, "async")]


@pytest.mark.parametrize(("task_class", "driver"), CASES)
def test_a_dry_run_calls_the_dry_run_entry_point_on_an_open_connection(
    task_class: type[_Records], driver: str
) -> None:
    instance = task_class()
    connections = Connections()
    reported = run(instance, driver, dry_run=True, connections=connections)
    assert reported.result == TaskSuccessResult(changed=True, diff="+ntp", summary="would apply")
    ((method, dry_run, connection),) = instance.calls
    assert method.startswith("dry_run")
    assert dry_run is True
    assert connection is not None  # opened, as for start
    assert connections.calls == ["login"]


@pytest.mark.parametrize(("task_class", "driver"), CASES)
def test_without_a_dry_run_start_runs(task_class: type[_Records], driver: str) -> None:
    instance = task_class()
    reported = run(instance, driver)
    assert isinstance(reported.result, TaskSuccessResult)
    assert reported.result.summary == "applied"
    ((method, dry_run, _),) = instance.calls
    assert method.startswith("start")
    assert dry_run is False


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_task_without_dry_run_support_fails_its_host_without_running(driver: str) -> None:
    instance = CannotPlan()
    connections = Connections()
    reported = run(instance, driver, dry_run=True, connections=connections)
    result = reported.result
    assert isinstance(result, TaskFailureResult)
    assert result.kind is TaskFailureKind.UNSUPPORTED
    assert result.retryable is False
    assert result.message == (
        "task 'no_plan' does not support dry-run: it was not run (declare "
        "@task(supports_dry_run=True) and define dry_run(self, task, host, context))"
    )
    assert instance.calls == []
    assert connections.calls == []  # nothing touched the device


@pytest.mark.parametrize("driver", DRIVERS)
def test_each_retry_of_a_dry_run_is_a_dry_run(driver: str) -> None:
    @task(name="flaky_plan", supports_dry_run=True)
    class FlakyPlan(_Records):
        def start(self, task: Any, host: Any, context: Any) -> HostTaskResult:
            raise AssertionError("start must not run in a dry run")

        def dry_run(self, task: Any, host: Any, context: Any) -> HostTaskResult:
            self.record("dry_run", context)
            if context.current_attempt == 1:
                return TaskFailureResult(message="busy", kind="timeout", retryable=True)
            return TaskSuccessResult(summary="would apply")

    instance = FlakyPlan()
    reported = run(
        instance,
        driver,
        dry_run=True,
        retry=RunnerRetrySettings(allow=True, max_attempts=2),
    )
    assert isinstance(reported.result, TaskSuccessResult)
    assert reported.attempts == 2
    assert [(method, dry) for method, dry, _ in instance.calls] == [("dry_run", True)] * 2


def test_the_policy_wraps_every_node_of_a_dry_run_and_none_of_another() -> None:
    node = tree_from_plan(plan_run(CannotPlan, 0))
    assert DryRunPolicy(dry_run=True).applies(node)
    assert not DryRunPolicy(dry_run=False).applies(node)
