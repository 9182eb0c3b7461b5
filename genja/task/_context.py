"""The runtime context handed to every task entry point call."""

from __future__ import annotations

from typing import Any


class TaskRuntimeContext:
    """The narrow, task-facing view of one (task, host) execution.

    It carries the connection the runner resolved for the task (or None). Depth and other
    bookkeeping stay inside the runtime on purpose: tasks should not branch on them.
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: Any = None) -> None:
        self._connection = connection

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
        return f"TaskRuntimeContext(connection={kind})"
