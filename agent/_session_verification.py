"""The session verification policy: after a change, a new session must come up.

For a node whose task declares `session_verification` (and has a connection plugin), not in a
dry run: when the inner layers return a passed result with `changed=True`, the host's cached
connection is closed and a new one opened at once, up to `max_attempts` times, `delay_ms`
apart. When one opens, the node's result is the task's, unchanged (and the next node, or the
`CHECK_AND_VERIFY` post-check, uses the new session). When none does, the host fails with a
`connection` failure (not retryable: the task must not run again) whose message says the change
may already be applied and nothing was rolled back, and which carries the task's result.

Each login counts against the run's login budget (`runner.max_connection_attempts`), as every
login does: a change that broke our credentials must not lock the account on the device's AAA.
"""

from __future__ import annotations

from agent._pipeline import ExecNode, NodeCall, Pause, PolicySteps, proceed, reconnect
from genja.task._results import (
    TaskFailureKind,
    TaskFailureResult,
    TaskSuccessResult,
)


def _locked_out(
    call: NodeCall, result: TaskSuccessResult, attempts: int, last: TaskFailureResult
) -> TaskFailureResult:
    info = call.node.info
    return TaskFailureResult(
        message=f"task {info.name!r} changed host {call.host.id!r}, but a new "
        f"{info.connection_plugin_name} session could not be established afterwards "
        f"({attempts} attempt(s)): {last.message}. The change may already be applied; it was "
        "not rolled back",
        kind=TaskFailureKind.CONNECTION,
        warnings=result.warnings,
        messages=result.messages,
        details={
            "session_verification": {
                "attempts": attempts,
                "last_failure_kind": last.kind.value,
            },
            "task_result": {
                "changed": result.changed,
                "summary": result.summary,
                "diff": result.diff,
            },
        },
    )


class SessionVerificationPolicy:
    """The `session_verification` layer (see the module docstring); one per run."""

    name = "session_verification"

    def __init__(self, dry_run: bool) -> None:
        self._dry_run = dry_run

    def applies(self, node: ExecNode) -> bool:
        info = node.info
        return (
            not self._dry_run
            and info.session_verification is not None
            and bool(info.connection_plugin_name)
        )

    def around(self, call: NodeCall) -> PolicySteps:
        result = yield from proceed(call)
        if not isinstance(result, TaskSuccessResult) or not result.changed:
            return result
        config = call.node.info.session_verification
        assert config is not None
        for attempt in range(1, config.max_attempts + 1):
            failure = yield from reconnect(login=True)
            if failure is None:
                return result
            if attempt == config.max_attempts:
                return _locked_out(call, result, attempt, failure)
            if config.delay_ms:
                yield Pause(config.delay_ms / 1000)
        raise AssertionError("unreachable: max_attempts is at least 1")
