"""The runtime context handed to every task entry point call."""

from __future__ import annotations

from typing import Any


class TaskRuntimeContext:
    """The narrow, task-facing view of one (task, host) execution.

    It carries the connection the runner resolved for the task (or None) and
    `current_attempt`: 1 for the first call, 2 for the first retry, and so on (see
    `RetryConfig`), and `dry_run`: True when the call is a dry run's (`dry_run` /
    `dry_run_async`, see `TaskRunOptions`). Depth and other bookkeeping stay inside the
    runtime on purpose: tasks should not branch on them.
    """

    __slots__ = ("_attempt", "_connection", "_dry_run")

    def __init__(
        self, connection: Any = None, *, current_attempt: int = 1, dry_run: bool = False
    ) -> None:
        self._connection = connection
        self._attempt = current_attempt
        self._dry_run = dry_run

    @property
    def current_attempt(self) -> int:
        """The 1-based attempt this call is: above 1 when a retryable failure is retried."""
        return self._attempt

    @property
    def dry_run(self) -> bool:
        """Whether this call is a dry run's: report what would change, change nothing."""
        return self._dry_run

    def connection(self) -> Any:
        """The connection opened for this task's `connection_plugin_name`, or None."""
        return self._connection

    def has_connection(self) -> bool:
        return self._connection is not None

    def __repr__(self) -> str:
        kind = type(self._connection).__name__ if self._connection is not None else "none"
        return f"TaskRuntimeContext(connection={kind}, current_attempt={self._attempt}" + (
            ", dry_run=True)" if self._dry_run else ")"
        )
