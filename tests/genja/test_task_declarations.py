"""@task's dry-run, idempotency and session verification declarations, checked at decoration,
and the run options that ask for a dry run."""

from __future__ import annotations

from typing import Any

import pytest

import genja
from genja import TaskDefinitionError, TaskRunOptions
from genja._run_options import resolve_run_options
from genja.task import (
    IdempotencyCheckResult,
    IdempotencyMode,
    SessionVerificationConfig,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    definition_of,
    task,
)


def test_declarations_reach_the_definition_and_the_task_info() -> None:
    @task(
        name="ensure",
        connection_plugin_name="ssh",
        supports_dry_run=True,
        idempotency=IdempotencyMode.CHECK_AND_VERIFY,
        session_verification=SessionVerificationConfig(max_attempts=3, delay_ms=500),
    )
    class Ensure:
        def start(self, task: Any, host: Any, context: Any) -> Any:
            return TaskSuccessResult()

        def dry_run(self, task: Any, host: Any, context: Any) -> Any:
            return TaskSuccessResult()

        def check(self, task: Any, host: Any, context: Any) -> Any:
            return IdempotencyCheckResult.converged()

    info = TaskInfo.from_definition(definition_of(Ensure))
    assert info.supports_dry_run is True
    assert info.idempotency is IdempotencyMode.CHECK_AND_VERIFY
    assert info.session_verification == SessionVerificationConfig(3, 500)


def _declare(body: str, **declared: Any) -> None:
    namespace: dict[str, Any] = {}
    exec(f"class Declared:\n    {body}\n", namespace)
    task(name="declared", **declared)(namespace["Declared"])


SYNC_START = "def start(self, t, h, c): pass"
ASYNC_START = "async def start_async(self, t, h, c): pass"


@pytest.mark.parametrize(
    ("body", "declared", "message"),
    [
        (
            SYNC_START,
            {"supports_dry_run": True},
            "task class Declared is a sync task with supports_dry_run=True, so it must define "
            "a dry-run method named 'dry_run(self, task, host, context)'",
        ),
        (
            ASYNC_START,
            {"supports_dry_run": True},
            "task class Declared is an async task with supports_dry_run=True, so it must "
            "define a dry-run method named 'dry_run_async(self, task, host, context)'",
        ),
        (
            f"{SYNC_START}\n    async def dry_run_async(self, t, h, c): pass",
            {"supports_dry_run": True},
            "task class Declared is a sync task, so dry-run support requires a dry-run method "
            "named 'dry_run(self, task, host, context)', not 'dry_run_async'",
        ),
        (
            f"{SYNC_START}\n    async def dry_run(self, t, h, c): pass",
            {"supports_dry_run": True},
            "task class Declared: dry_run must be defined as a plain 'def' (it is not async)",
        ),
        (
            f"{ASYNC_START}\n    def dry_run_async(self, t, h, c): pass",
            {"supports_dry_run": True},
            "task class Declared: dry_run_async must be defined with 'async def'",
        ),
        (
            SYNC_START,
            {"idempotency": IdempotencyMode.CHECK},
            "task class Declared is a sync task with idempotency enabled, so it must define an "
            "idempotency check method named 'check(self, task, host, context)'",
        ),
        (
            f"{ASYNC_START}\n    def check(self, t, h, c): pass",
            {"idempotency": IdempotencyMode.CHECK_AND_VERIFY},
            "task class Declared is an async task, so idempotency support requires an "
            "idempotency check method named 'check_async(self, task, host, context)', not 'check'",
        ),
        (SYNC_START, {"supports_dry_run": 1}, "supports_dry_run must be True or False"),
        (SYNC_START, {"idempotency": "check"}, "idempotency must be an IdempotencyMode"),
        (
            SYNC_START,
            {"session_verification": SessionVerificationConfig()},
            "session_verification requires connection_plugin_name",
        ),
        (
            SYNC_START,
            {"session_verification": {"max_attempts": 2}, "connection_plugin_name": "ssh"},
            "session_verification must be a SessionVerificationConfig",
        ),
    ],
)
def test_declarations_need_their_methods(body: str, declared: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskDefinitionError) as caught:
        _declare(body, **declared)
    assert message in str(caught.value)


def test_a_dry_run_method_without_the_declaration_is_ignored() -> None:
    _declare(f"{SYNC_START}\n    async def dry_run(self, t, h, c): pass")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be a whole number from 1"),
        ({"delay_ms": -1}, "delay_ms must be a whole number from 0"),
    ],
)
def test_session_verification_config_is_validated(fields: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SessionVerificationConfig(**fields)


def test_check_results() -> None:
    converged = IdempotencyCheckResult.converged(summary="set")
    assert (converged.is_converged, converged.status) == (True, "converged")
    required = IdempotencyCheckResult.change_required(diff="+x", details={"now": []})
    assert required.to_dict() == {"status": "change_required", "diff": "+x", "details": {"now": []}}
    with pytest.raises(TypeError):
        IdempotencyCheckResult.change_required(diff=3)  # type: ignore[arg-type]


def test_the_context_says_whether_the_call_is_a_dry_run() -> None:
    assert TaskRuntimeContext().dry_run is False
    context = TaskRuntimeContext(dry_run=True)
    assert context.dry_run is True
    assert repr(context) == (
        "TaskRuntimeContext(connection=none, current_attempt=1, parent_result=none, dry_run=True)"
    )


def test_run_options() -> None:
    options = TaskRunOptions(max_depth=1)
    assert options.with_dry_run().to_dict() == {"max_depth": 1, "dry_run": True}
    assert options.with_max_depth(3).max_depth == 3
    assert resolve_run_options(None, None, 10) == (10, False)
    assert resolve_run_options(2, None, 10) == (2, False)
    assert resolve_run_options(None, TaskRunOptions(dry_run=True), 10) == (10, True)
    assert resolve_run_options(2, TaskRunOptions(dry_run=True), 10) == (2, True)
    assert resolve_run_options(None, TaskRunOptions(max_depth=0), 10) == (0, False)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: TaskRunOptions(max_depth=True), ValueError, "whole number >= 0 or None"),
        (lambda: TaskRunOptions(max_depth=-1), ValueError, "whole number >= 0 or None"),
        (
            lambda: TaskRunOptions(max_depth=TaskRunOptions()),  # type: ignore[arg-type]
            TypeError,
            "pass the options object itself as run_options=",
        ),
        (lambda: TaskRunOptions(dry_run="yes"), TypeError, "dry_run must be True or False"),  # type: ignore[arg-type]
        (
            lambda: resolve_run_options(TaskRunOptions(), None, 10),  # type: ignore[arg-type]
            TypeError,
            "pass a TaskRunOptions as run_options=",
        ),
        (
            lambda: resolve_run_options(1, TaskRunOptions(max_depth=1), 10),
            TypeError,
            "not both",
        ),
        (
            lambda: resolve_run_options(None, {"dry_run": True}, 10),  # type: ignore[arg-type]
            TypeError,
            "run_options must be a genja.TaskRunOptions, got dict",
        ),
    ],
)
def test_bad_run_options(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_upstream_names_are_importable_from_genja() -> None:
    assert genja.IdempotencyMode is IdempotencyMode
    assert genja.IdempotencyCheckResult is IdempotencyCheckResult
    assert genja.SessionVerificationConfig is SessionVerificationConfig
