"""The idempotency policy in the host pipeline, both drivers (end to end:
tests/e2e/test_idempotency.py)."""

from __future__ import annotations

from typing import Any

import pytest

from agent._idempotency import IdempotencyPolicy
from agent._pipeline import tree_from_plan
from genja._plan import plan_run
from genja._settings import RunnerRetrySettings
from genja.task import (
    HostTaskResult,
    IdempotencyCheckResult,
    IdempotencyMode,
    TaskFailureKind,
    TaskFailureResult,
    TaskStatus,
    TaskSuccessResult,
    task,
)
from tests.agent._policy_harness import DRIVERS, Connections, run


class _Device:
    """A device with one setting: `start` applies it (or fails, `fails` times, retryably);
    `check` reads it. `sticky=False` models a change that does not hold."""

    def __init__(self, configured: bool = False, *, fails: int = 0, sticky: bool = True) -> None:
        self.configured = configured
        self.fails = fails
        self.sticky = sticky
        self.calls: list[str] = []

    def do_check(self, context: Any) -> IdempotencyCheckResult:
        self.calls.append(f"check@{context.current_attempt}")
        if self.configured:
            return IdempotencyCheckResult.converged("ntp server is set", details={"seen": True})
        return IdempotencyCheckResult.change_required("+ntp server 192.0.2.10")

    def do_start(self, context: Any) -> HostTaskResult:
        self.calls.append(f"start@{context.current_attempt}")
        self.configured = self.sticky
        if self.fails:
            self.fails -= 1
            return TaskFailureResult(message="commit timed out", kind="timeout", retryable=True)
        return TaskSuccessResult(changed=True, diff="+ntp server 192.0.2.10", summary="set ntp")


@task(name="ensure_ntp", connection_plugin_name="fake", idempotency=IdempotencyMode.CHECK)
class EnsureNtp(_Device):
    def check(self, task: Any, host: Any, context: Any) -> IdempotencyCheckResult:
        return self.do_check(context)

    def start(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        return self.do_start(context)


@task(name="ensure_ntp_async", idempotency=IdempotencyMode.CHECK)
class EnsureNtpAsync(_Device):
    async def check_async(self, task: Any, host: Any, context: Any) -> IdempotencyCheckResult:
        return self.do_check(context)

    async def start_async(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        return self.do_start(context)


@task(name="verify_ntp", idempotency=IdempotencyMode.CHECK_AND_VERIFY)
class VerifyNtp(EnsureNtp):
    pass


@task(name="verify_ntp_async", idempotency=IdempotencyMode.CHECK_AND_VERIFY)
class VerifyNtpAsync(EnsureNtpAsync):
    pass


def _cases(blocking: type[_Device], async_: type[_Device]) -> list[tuple[type[_Device], str]]:
    return [(blocking, driver) for driver in DRIVERS] + [(async_, "async")]


CHECKED = _cases(EnsureNtp, EnsureNtpAsync)
VERIFIED = _cases(VerifyNtp, VerifyNtpAsync)


@pytest.mark.parametrize(("task_class", "driver"), CHECKED + VERIFIED)
def test_a_converged_host_passes_unchanged_without_start(
    task_class: type[_Device], driver: str
) -> None:
    device = task_class(configured=True)
    reported = run(device, driver)
    assert reported.result == TaskSuccessResult(
        changed=False,
        summary="ntp server is set",
        metadata={
            "idempotency": {
                "status": "converged",
                "summary": "ntp server is set",
                "details": {"seen": True},
            }
        },
    )
    assert device.calls == ["check@1"]


@pytest.mark.parametrize(("task_class", "driver"), CHECKED)
def test_a_change_required_runs_start_once(task_class: type[_Device], driver: str) -> None:
    device = task_class()
    connections = Connections()
    reported = run(device, driver, connections=connections)
    assert isinstance(reported.result, TaskSuccessResult)
    assert reported.result.summary == "set ntp"
    assert device.calls == ["check@1", "start@1"]
    if task_class is EnsureNtp:
        assert connections.calls == ["login"]  # the check and start share the session


@pytest.mark.parametrize(("task_class", "driver"), VERIFIED)
def test_check_and_verify_checks_again_after_start(task_class: type[_Device], driver: str) -> None:
    device = task_class()
    reported = run(device, driver)
    assert isinstance(reported.result, TaskSuccessResult)
    assert reported.result.changed is True
    assert device.calls == ["check@1", "start@1", "check@1"]


@pytest.mark.parametrize(("task_class", "driver"), VERIFIED)
def test_a_change_that_did_not_hold_fails_verification(
    task_class: type[_Device], driver: str
) -> None:
    device = task_class(sticky=False)
    result = run(device, driver).result
    assert isinstance(result, TaskFailureResult)
    assert result.kind is TaskFailureKind.VALIDATION
    assert result.retryable is False
    assert "still requires a change afterwards: +ntp server 192.0.2.10" in result.message
    assert result.details == {
        "idempotency": {"status": "change_required", "diff": "+ntp server 192.0.2.10"}
    }
    assert device.calls == ["check@1", "start@1", "check@1"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_failed_start_is_not_verified(driver: str) -> None:
    device = VerifyNtp(fails=1)
    result = run(device, driver).result
    assert isinstance(result, TaskFailureResult)
    assert result.message == "commit timed out"
    assert device.calls == ["check@1", "start@1"]


@pytest.mark.parametrize(("task_class", "driver"), CHECKED)
def test_a_retry_that_finds_the_host_converged_passes_with_a_warning(
    task_class: type[_Device], driver: str
) -> None:
    """The first attempt applied the change but reported a retryable failure: the retry's
    pre-check finds nothing to do."""
    device = task_class(fails=1)
    reported = run(device, driver, retry=RunnerRetrySettings(allow=True, max_attempts=3))
    result = reported.result
    assert isinstance(result, TaskSuccessResult)
    assert result.status is TaskStatus.PASSED_WITH_WARNINGS
    assert result.changed is False
    assert result.warnings == (
        "converged on attempt 2, after 1 failed attempt(s): a failed attempt may have applied "
        "the change",
    )
    assert (reported.attempts, reported.retries_exhausted) == (2, False)
    assert device.calls == ["check@1", "start@1", "check@2"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_check_that_raises_or_answers_nonsense_fails_the_host(driver: str) -> None:
    @task(name="broken_check", idempotency=IdempotencyMode.CHECK)
    class BrokenCheck:
        answer: Any = None

        def check(self, task: Any, host: Any, context: Any) -> Any:
            if self.answer is None:
                raise RuntimeError("show running-config failed")
            return self.answer

        def start(self, task: Any, host: Any, context: Any) -> HostTaskResult:
            raise AssertionError("start must not run")

    raised = run(BrokenCheck(), driver).result
    assert isinstance(raised, TaskFailureResult)
    assert raised.kind is TaskFailureKind.INTERNAL
    assert raised.message == (
        "task 'broken_check' (check) raised RuntimeError: show running-config failed"
    )
    nonsense = BrokenCheck()
    nonsense.answer = True
    result = run(nonsense, driver).result
    assert isinstance(result, TaskFailureResult)
    assert result.message == (
        "the idempotency check of task 'broken_check' returned bool; expected "
        "IdempotencyCheckResult.converged(...) or .change_required(...)"
    )


def test_no_check_runs_in_a_dry_run_or_for_a_task_without_idempotency() -> None:
    node = tree_from_plan(plan_run(EnsureNtp, 0))
    assert IdempotencyPolicy(dry_run=False).applies(node)
    assert not IdempotencyPolicy(dry_run=True).applies(node)

    @task(name="plain")
    class Plain:
        def start(self, task: Any, host: Any, context: Any) -> HostTaskResult:
            return TaskSuccessResult()

    assert not IdempotencyPolicy(dry_run=False).applies(tree_from_plan(plan_run(Plain, 0)))
