"""The retry policy in the host pipeline, both drivers, with connections faked by counters
(the end-to-end runs, against real agents and sshd, are in tests/e2e/test_retry.py)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

import genja
from agent._login_budget import LoginAttemptsExhausted, LoginBudget
from agent._pipeline import ExecNode, HostPipeline, NodeTrace, tree_from_plan
from agent._policies import PolicySettings, default_policies
from agent._retry import RetryPolicy, effective_retry
from genja._plan import plan_run
from genja._settings import RunnerRetrySettings
from genja.task import (
    HostTaskResult,
    RetryConfig,
    TaskFailureKind,
    TaskFailureResult,
    TaskSuccessResult,
    task,
)

ALLOW_THREE = RunnerRetrySettings(allow=True, max_attempts=3, delay_ms=30)


class _TwiceThenOk:
    """Fails retryably on its first two attempts; records when each attempt started."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []

    def attempt(self, context: Any) -> HostTaskResult:
        self.calls.append((context.current_attempt, time.monotonic()))
        if context.current_attempt < 3:
            return TaskFailureResult(message="busy", kind=TaskFailureKind.EXTERNAL, retryable=True)
        return TaskSuccessResult(summary=f"attempt {context.current_attempt}")


@task(name="twice_then_ok")
class TwiceThenOk(_TwiceThenOk):
    def start(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        return self.attempt(context)


@task(name="twice_then_ok_async")
class TwiceThenOkAsync(_TwiceThenOk):
    async def start_async(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        return self.attempt(context)


@task(name="never", connection_plugin_name="fake")
class NeverWithAConnection:
    """Fails as its kind says, every time."""

    kind = TaskFailureKind.CONNECTION
    retryable = True

    def start(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        return TaskFailureResult(message="no", kind=self.kind, retryable=self.retryable)


class Connections:
    """Counts what the pipeline asks of the connection cache."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def connect(self, node: ExecNode, host: genja.Host) -> Any:
        if not node.info.connection_plugin_name:
            return None
        self.calls.append("connect")
        return object()

    def disconnect(self, node: ExecNode, host: genja.Host) -> None:
        self.calls.append("disconnect")


def _run(
    target: object, retry: RunnerRetrySettings, connections: Connections | None = None
) -> list[tuple[HostTaskResult, int, bool]]:
    connections = connections or Connections()
    root = tree_from_plan(plan_run(target, 0))
    pipeline = HostPipeline(
        root,
        connect=connections.connect,
        disconnect=connections.disconnect,
        policies=default_policies(PolicySettings(retry=retry)),
    )
    reported: list[tuple[HostTaskResult, int, bool]] = []

    def report(
        index: int, result: HostTaskResult, started: int, took: int, trace: NodeTrace | None
    ) -> None:
        attempts, exhausted = (1, False) if trace is None else trace.facts()
        reported.append((result, attempts, exhausted))

    host = genja.Host(id="r1")
    if pipeline.blocking_only:
        pipeline.run_blocking(host, report)
    else:
        asyncio.run(pipeline.run_async(host, report))
    return reported


def test_the_task_overrides_the_runner_field_by_field() -> None:
    runner = RunnerRetrySettings(allow=False, max_attempts=4, delay_ms=500)
    assert effective_retry(None, runner) == (1, 0.5)
    assert effective_retry(RetryConfig(allow=True), runner) == (4, 0.5)
    assert effective_retry(RetryConfig(allow=True, delay_ms=0), runner) == (4, 0.0)
    assert effective_retry(RetryConfig(max_attempts=2), ALLOW_THREE) == (2, 0.03)
    assert effective_retry(RetryConfig(allow=False), ALLOW_THREE) == (1, 0.03)


@pytest.mark.parametrize("task_class", [TwiceThenOk, TwiceThenOkAsync], ids=["start", "async"])
def test_two_retryable_failures_then_a_pass(task_class: type[_TwiceThenOk]) -> None:
    instance = task_class()
    ((result, attempts, exhausted),) = _run(instance, ALLOW_THREE)
    assert result == TaskSuccessResult(summary="attempt 3")
    assert (attempts, exhausted) == (3, False)
    assert [attempt for attempt, _ in instance.calls] == [1, 2, 3]
    starts = [at for _, at in instance.calls]
    assert all(later - earlier >= 0.03 for earlier, later in itertools.pairwise(starts))


def test_without_retries_a_retryable_failure_is_final() -> None:
    instance = TwiceThenOk()
    ((result, attempts, exhausted),) = _run(instance, RunnerRetrySettings())
    assert isinstance(result, TaskFailureResult)
    assert (attempts, exhausted) == (1, False)
    assert len(instance.calls) == 1


def test_the_policy_stays_out_of_nodes_it_cannot_retry() -> None:
    policy = RetryPolicy(RunnerRetrySettings())
    assert not policy.applies(tree_from_plan(plan_run(TwiceThenOk, 0)))


def test_a_failure_that_is_not_retryable_is_not_retried() -> None:
    instance = NeverWithAConnection()
    instance.retryable = False
    connections = Connections()
    ((result, attempts, exhausted),) = _run(instance, ALLOW_THREE, connections)
    assert isinstance(result, TaskFailureResult)
    assert (attempts, exhausted) == (1, False)
    assert connections.calls == ["connect"]


def test_exhausted_retries_say_so() -> None:
    instance = NeverWithAConnection()
    instance.kind = TaskFailureKind.EXTERNAL
    connections = Connections()
    ((result, attempts, exhausted),) = _run(instance, ALLOW_THREE, connections)
    assert isinstance(result, TaskFailureResult)
    assert (attempts, exhausted) == (3, True)
    # not a failure of the connection: the connection is kept between attempts
    assert connections.calls == ["connect"] * 3


@pytest.mark.parametrize("kind", [TaskFailureKind.CONNECTION, TaskFailureKind.TIMEOUT])
def test_a_failure_on_the_connection_drops_it_before_the_retry(kind: TaskFailureKind) -> None:
    instance = NeverWithAConnection()
    instance.kind = kind
    connections = Connections()
    ((_, attempts, exhausted),) = _run(
        instance, RunnerRetrySettings(allow=True, max_attempts=2), connections
    )
    assert (attempts, exhausted) == (2, True)
    assert connections.calls == ["connect", "disconnect", "connect"]


def test_a_login_budget_counts_per_host_and_plugin() -> None:
    budget = LoginBudget(2)
    a, b = genja.Host(id="a"), genja.Host(id="b")
    for _ in range(2):
        budget.charge(a, "ssh")
    budget.charge(a, "netconf")
    budget.charge(b, "ssh")
    with pytest.raises(LoginAttemptsExhausted) as caught:
        budget.charge(a, "ssh")
    assert str(caught.value) == (
        "host 'a': no ssh login attempts left in this run (runner.max_connection_attempts is 2)"
    )
    assert caught.value.retryable is False
    assert caught.value.kind is TaskFailureKind.CONNECTION
    unbounded = LoginBudget(0)
    for _ in range(100):
        unbounded.charge(a, "ssh")
