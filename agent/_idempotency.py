"""The idempotency policy: a task's convergence check, before its entry point (and after it).

For a node whose task declares `idempotency=CHECK` or `CHECK_AND_VERIFY` (and not in a dry
run, which calls no check):

1. its `check` runs first (with the task's connection); `converged` ends the node there: the
   host passes with `changed=False` and `start` is not called;
2. otherwise `start` runs (through the inner layers: session verification);
3. with `CHECK_AND_VERIFY`, after a passed `start` the check runs again (through the new
   session, when session verification replaced the connection) and must say `converged`, else
   the host fails with a `validation` failure carrying what the check still found.

A check that raises, or cannot open its connection, is the node's failure, as `start`'s would
be. Under retry (an outer layer) each attempt runs the pre-check again: when an attempt finds
the host converged after an earlier attempt failed retryably, the host passes with a warning
(`passed_with_warnings`): the failed attempt may have applied the change.
"""

from __future__ import annotations

from agent._pipeline import ExecNode, NodeCall, PolicySteps, check, proceed
from genja.task._idempotency import IdempotencyCheckResult, IdempotencyMode
from genja.task._results import (
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskSuccessResult,
)


def _converged(call: NodeCall, found: IdempotencyCheckResult) -> HostTaskResult:
    warnings: tuple[str, ...] = ()
    if call.attempt > 1:
        warnings = (
            f"converged on attempt {call.attempt}, after {call.attempt - 1} failed "
            f"attempt(s): a failed attempt may have applied the change",
        )
    return TaskSuccessResult(
        changed=False,
        summary=found.summary or "already converged; nothing to change",
        warnings=warnings,
        metadata={"idempotency": found.to_dict()},
    )


def _still_required(call: NodeCall, found: IdempotencyCheckResult) -> TaskFailureResult:
    what = found.summary or found.diff or "the check still reports a change required"
    return TaskFailureResult(
        message=f"task {call.node.info.name!r} ran on host {call.host.id!r}, but its "
        f"idempotency check still requires a change afterwards: {what}",
        kind=TaskFailureKind.VALIDATION,
        details={"idempotency": found.to_dict()},
    )


class IdempotencyPolicy:
    """The `idempotency` layer (see the module docstring); one per run."""

    name = "idempotency"

    def __init__(self, dry_run: bool) -> None:
        self._dry_run = dry_run

    def applies(self, node: ExecNode) -> bool:
        return not self._dry_run and node.info.idempotency is not IdempotencyMode.DISABLED

    def around(self, call: NodeCall) -> PolicySteps:
        found = yield from check(call)
        if isinstance(found, TaskFailureResult):
            return found
        if found.is_converged:
            return _converged(call, found)
        result = yield from proceed(call)
        if call.node.info.idempotency is not IdempotencyMode.CHECK_AND_VERIFY:
            return result
        if not isinstance(result, TaskSuccessResult):
            return result
        after = yield from check(call)
        if isinstance(after, TaskFailureResult):
            return after
        if not after.is_converged:
            return _still_required(call, after)
        return result
