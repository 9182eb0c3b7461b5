"""The dry-run policy: in a dry run, each node's dry-run entry point runs instead of `start`.

A task that declares `supports_dry_run=True` has its `dry_run` (or `dry_run_async`) called,
with its connection opened as for `start` and `context.dry_run` True. A task that does not is
not called at all: its host fails with an `unsupported` failure that is not retryable (as in
Genja 0.4, before any entry point runs). The policy applies to every node of a dry run and to
none of any other run.
"""

from __future__ import annotations

import dataclasses

from agent._pipeline import ExecNode, NodeCall, PolicySteps, proceed
from genja.task._results import TaskFailureKind, TaskFailureResult


def unsupported(node: ExecNode) -> TaskFailureResult:
    name = node.info.name
    method = "dry_run_async" if node.is_async else "dry_run"
    return TaskFailureResult(
        message=f"task {name!r} does not support dry-run: it was not run (declare "
        f"@task(supports_dry_run=True) and define {method}(self, task, host, context))",
        kind=TaskFailureKind.UNSUPPORTED,
    )


class DryRunPolicy:
    """The `dry_run` layer (see the module docstring); one per run."""

    name = "dry_run"

    def __init__(self, dry_run: bool) -> None:
        self._dry_run = dry_run

    def applies(self, node: ExecNode) -> bool:
        return self._dry_run

    def around(self, call: NodeCall) -> PolicySteps:
        if not call.node.info.supports_dry_run:
            return unsupported(call.node)
        return (yield from proceed(dataclasses.replace(call, dry_run=True)))
