"""The runtime context handed to every task entry point call."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genja.task._results import HostTaskResult


class TaskRuntimeContext:
    """The narrow, task-facing view of one (task, host) execution.

    It carries the connection the runner resolved for the task (or None),
    `current_attempt`: 1 for the first call, 2 for the first retry, and so on (see
    `RetryConfig`), `dry_run`: True when the call is a dry run's (`dry_run` / `dry_run_async`,
    see `TaskRunOptions`), and `parent_result`: the result the parent task reported for the
    same host (None for the root task). Depth and other bookkeeping stay inside the runtime on
    purpose: tasks should not branch on them.
    """

    __slots__ = ("_attempt", "_connection", "_dry_run", "_parent")

    def __init__(
        self,
        connection: Any = None,
        *,
        current_attempt: int = 1,
        dry_run: bool = False,
        parent_result: HostTaskResult | None = None,
    ) -> None:
        self._connection = connection
        self._attempt = current_attempt
        self._dry_run = dry_run
        self._parent = parent_result

    @property
    def current_attempt(self) -> int:
        """The 1-based attempt this call is: above 1 when a retryable failure is retried."""
        return self._attempt

    @property
    def parent_result(self) -> HostTaskResult | None:
        """The parent task's result on this host, as it shows in the result tree (passed,
        failed or skipped: a sub-task runs whatever its parent did, and may check); None for
        the root task. Read-only: each read is a copy, so changing it changes neither the
        parent's result nor what a sibling sees. `execution_metadata` is not set yet."""
        return None if self._parent is None else copy.deepcopy(self._parent)

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
        parent = "none" if self._parent is None else self._parent.status.value
        dry = ", dry_run=True" if self._dry_run else ""
        return (
            f"TaskRuntimeContext(connection={kind}, current_attempt={self._attempt}, "
            f"parent_result={parent}{dry})"
        )
