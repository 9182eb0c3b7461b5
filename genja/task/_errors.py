"""Exceptions a task may raise to fail its host with a chosen kind.

    TaskError (GenjaError)                      fails the host with `kind` and `retryable`
    ├── ParseError (LookupError)                no template for (platform, command), or the
    │                                           output does not fit it: `unsupported`
    └── agent.connections.ConnectionFailure     raised by connection plugins (see there)

Any other exception a task raises fails its host as `internal`.
"""

from __future__ import annotations

from genja._errors import GenjaError
from genja.task._results import TaskFailureKind


class TaskError(GenjaError):
    """Fail this host as `kind`; the message becomes the failure's message."""

    kind: TaskFailureKind = TaskFailureKind.INTERNAL
    retryable: bool = False

    def __init__(self, message: str, *, host_id: str | None = None) -> None:
        super().__init__(message)
        self.host_id = host_id


class ParseError(TaskError, LookupError):
    kind = TaskFailureKind.UNSUPPORTED
    retryable = False
