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

    def __repr__(self) -> str:
        kind = type(self._connection).__name__ if self._connection is not None else "none"
        return f"TaskRuntimeContext(connection={kind})"
