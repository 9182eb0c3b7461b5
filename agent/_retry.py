"""The retry policy: a node whose call failed retryably is called again, within its budget.

A node is retried when its effective policy allows more than one attempt (the runner's
`runner.retry` defaults with the task's `RetryConfig` laid over them, field by field) and its
result is a `TaskFailureResult` with `retryable=True`; any other result ends the node. Between
two attempts the policy waits `delay_ms`; before an attempt that follows a `connection` or
`timeout` failure of a node with a connection plugin, it drops the host's cached connection,
so the retry logs in anew instead of reusing a session that may be broken (a timed-out command
may also still be running on it). When the last allowed attempt fails retryably, the node's
execution metadata says its retries ran out.

Each attempt is its own call: `task_timeout` bounds each one, and the task sees which one it is
as `context.current_attempt`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from agent._pipeline import ExecNode, NodeCall, Note, Pause, PolicySteps, Reconnect, proceed
from genja.task._results import TaskFailureKind, TaskFailureResult
from genja.task._retry import RetryConfig

if TYPE_CHECKING:
    from genja._settings import RunnerRetrySettings

# Failures after which the connection is not to be trusted for the next attempt.
_CONNECTION_KINDS = frozenset((TaskFailureKind.CONNECTION, TaskFailureKind.TIMEOUT))


def effective_retry(task: RetryConfig | None, defaults: RunnerRetrySettings) -> tuple[int, float]:
    """(attempts in all, seconds between two) for a task: its overrides over the defaults. One
    attempt when retries are not allowed."""
    allow = defaults.allow
    attempts = defaults.max_attempts
    delay_ms = defaults.delay_ms
    if task is not None:
        allow = allow if task.allow is None else task.allow
        attempts = attempts if task.max_attempts is None else task.max_attempts
        delay_ms = delay_ms if task.delay_ms is None else task.delay_ms
    return (attempts if allow else 1), delay_ms / 1000


class RetryPolicy:
    """The `retry` layer (see the module docstring); one per run."""

    name = "retry"

    def __init__(self, defaults: RunnerRetrySettings) -> None:
        self._defaults = defaults

    def applies(self, node: ExecNode) -> bool:
        attempts, _ = effective_retry(node.info.retry, self._defaults)
        return attempts > 1

    def around(self, call: NodeCall) -> PolicySteps:
        node = call.node
        attempts, delay = effective_retry(node.info.retry, self._defaults)
        result = yield from proceed(call)
        while isinstance(result, TaskFailureResult) and result.retryable:
            if call.attempt >= attempts:
                yield Note(retries_exhausted=True)
                break
            if node.info.connection_plugin_name and result.kind in _CONNECTION_KINDS:
                yield Reconnect()
            if delay > 0:
                yield Pause(delay)
            call = dataclasses.replace(call, attempt=call.attempt + 1)
            result = yield from proceed(call)
        return result
