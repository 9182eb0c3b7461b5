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

    def parse(
        self, output: str, *, command: str, platform: str | None = None
    ) -> list[dict[str, Any]]:
        """`output` of `command` as rows (one dict per record, keys lower case), by the
        ntc-templates TextFSM template for the platform: `platform`, else the connection's
        (the host's inventory platform). Raises `ParseError`, which fails the host as
        `unsupported`, when no template exists or the output does not fit it."""
        from genja.task._parsing import parse_output

        if platform is None:
            platform = getattr(self._connection, "platform", None)
        return parse_output(output, command=command, platform=platform)

    def __repr__(self) -> str:
        kind = type(self._connection).__name__ if self._connection is not None else "none"
        return f"TaskRuntimeContext(connection={kind}, current_attempt={self._attempt}" + (
            ", dry_run=True)" if self._dry_run else ")"
        )
