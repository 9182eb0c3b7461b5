"""The session verification policy in the host pipeline, both drivers, with logins faked (end
to end, against the test sshd: tests/e2e/test_session_verification.py)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from agent._pipeline import tree_from_plan
from agent._session_verification import SessionVerificationPolicy
from genja._plan import plan_run
from genja._settings import RunnerRetrySettings
from genja.task import (
    HostTaskResult,
    IdempotencyCheckResult,
    IdempotencyMode,
    SessionVerificationConfig,
    TaskFailureKind,
    TaskFailureResult,
    TaskSkipResult,
    TaskSuccessResult,
    task,
)
from tests.agent._policy_harness import DRIVERS, Connections, run


class _ChangesAccess:
    """Applies a change (`outcome`) and, with `lock_out`, makes the next logins fail."""

    def __init__(
        self, connections: Connections, outcome: HostTaskResult, lock_out: int = 0
    ) -> None:
        self.connections = connections
        self.outcome = outcome
        self.lock_out = lock_out
        self.sessions: list[Any] = []

    def apply(self, context: Any) -> HostTaskResult:
        self.sessions.append(context.connection())
        self.connections.refuse = self.lock_out
        return self.outcome


VERIFY = SessionVerificationConfig(max_attempts=3, delay_ms=20)


@task(name="acl", connection_plugin_name="fake", session_verification=VERIFY)
class ReplaceAcl(_ChangesAccess):
    def start(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        return self.apply(context)


@task(name="acl_async", connection_plugin_name="fake", session_verification=VERIFY)
class ReplaceAclAsync(_ChangesAccess):
    async def start_async(self, task: Any, host: Any, context: Any) -> HostTaskResult:
        return self.apply(context)


CASES = [(ReplaceAcl, driver) for driver in DRIVERS] + [(ReplaceAclAsync, "async")]
CHANGED = TaskSuccessResult(changed=True, summary="acl replaced", warnings=("acl 10 grew",))


@pytest.mark.parametrize(("task_class", "driver"), CASES)
def test_a_change_is_followed_by_a_fresh_login(
    task_class: type[_ChangesAccess], driver: str
) -> None:
    connections = Connections()
    reported = run(task_class(connections, CHANGED), driver, connections=connections)
    assert reported.result == CHANGED  # the task's own result, unchanged
    assert connections.calls == ["login", "disconnect", "login"]


@pytest.mark.parametrize(
    "outcome",
    [
        TaskSuccessResult(changed=False),
        TaskFailureResult(message="rejected", kind="command"),
        TaskSkipResult(reason="not_applicable"),
    ],
    ids=["unchanged", "failed", "skipped"],
)
@pytest.mark.parametrize(("task_class", "driver"), CASES)
def test_no_new_session_without_a_change(
    task_class: type[_ChangesAccess], driver: str, outcome: HostTaskResult
) -> None:
    connections = Connections()
    reported = run(task_class(connections, outcome), driver, connections=connections)
    assert reported.result == outcome
    assert connections.calls == ["login"]


@pytest.mark.parametrize(("task_class", "driver"), CASES)
def test_a_change_that_locks_us_out_fails_the_host_as_a_connection_failure(
    task_class: type[_ChangesAccess], driver: str
) -> None:
    connections = Connections()
    logins: list[float] = []
    connect = connections.connect

    def timed(node: Any, host: Any) -> Any:
        logins.append(time.monotonic())
        return connect(node, host)

    connections.connect = timed  # type: ignore[method-assign]
    task_instance = task_class(connections, CHANGED, lock_out=-1)
    reported = run(
        task_instance,
        driver,
        connections=connections,
        retry=RunnerRetrySettings(allow=True, max_attempts=3),
    )
    result = reported.result
    assert isinstance(result, TaskFailureResult)
    assert result.kind is TaskFailureKind.CONNECTION
    assert result.retryable is False  # the task must not apply its change again
    assert result.message == (
        f"task {task_instance_name(task_class)!r} changed host 'r1', but a new fake session "
        "could not be established afterwards (3 attempt(s)): opening connection 'fake' for "
        f"task {task_instance_name(task_class)!r} on host 'r1' failed: ConnectionRefusedError: "
        "the device refused the login. The change may already be applied; it was not rolled back"
    )
    assert result.warnings == ("acl 10 grew",)
    assert result.details == {
        "session_verification": {"attempts": 3, "last_failure_kind": "connection"},
        "task_result": {"changed": True, "summary": "acl replaced", "diff": None},
    }
    assert connections.calls == ["login"] + ["disconnect", "login"] * 3
    assert (reported.attempts, reported.retries_exhausted) == (1, False)
    assert len(task_instance.sessions) == 1
    verifications = logins[-3:]
    assert all(b - a >= VERIFY.delay_ms / 1000 for a, b in itertools.pairwise(verifications))


def task_instance_name(task_class: type) -> str:
    return "acl_async" if task_class is ReplaceAclAsync else "acl"


@pytest.mark.parametrize(("task_class", "driver"), CASES)
def test_a_session_that_comes_up_on_a_later_attempt_passes(
    task_class: type[_ChangesAccess], driver: str
) -> None:
    connections = Connections()
    reported = run(task_class(connections, CHANGED, lock_out=2), driver, connections=connections)
    assert reported.result == CHANGED
    assert connections.calls == ["login"] + ["disconnect", "login"] * 3


@pytest.mark.parametrize("driver", DRIVERS)
def test_check_and_verify_checks_through_the_new_session(driver: str) -> None:
    @task(
        name="acl_verified",
        connection_plugin_name="fake",
        session_verification=SessionVerificationConfig(),
        idempotency=IdempotencyMode.CHECK_AND_VERIFY,
    )
    class VerifiedAcl(ReplaceAcl):
        def check(self, task: Any, host: Any, context: Any) -> IdempotencyCheckResult:
            self.sessions.append(context.connection())
            if len(self.sessions) == 1:
                return IdempotencyCheckResult.change_required("+acl")
            return IdempotencyCheckResult.converged()

    connections = Connections()
    instance = VerifiedAcl(connections, CHANGED)
    assert run(instance, driver, connections=connections).result == CHANGED
    before, during, after = instance.sessions
    assert before is during
    assert after is not during  # the post-check used the session verification opened
    assert connections.calls == ["login", "disconnect", "login"]


def test_no_verification_in_a_dry_run_or_without_the_declaration() -> None:
    node = tree_from_plan(plan_run(ReplaceAcl(Connections(), CHANGED), 0))
    assert SessionVerificationPolicy(dry_run=False).applies(node)
    assert not SessionVerificationPolicy(dry_run=True).applies(node)

    @task(name="plain", connection_plugin_name="fake")
    class Plain:
        def start(self, task: Any, host: Any, context: Any) -> HostTaskResult:
            return TaskSuccessResult(changed=True)

    assert not SessionVerificationPolicy(dry_run=False).applies(tree_from_plan(plan_run(Plain, 0)))
