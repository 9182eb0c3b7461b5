"""Why a connection or a command failed, in the terms a result uses.

Plugins raise these (translated from paramiko and socket errors at one boundary); the agent turns
one that escapes a task, or the opening of its connection, into a failed result of the matching
kind. Every leaf is also the matching builtin, so tasks may catch either::

    ConnectionFailure (GenjaError)
    ├── ConnectFailedError (ConnectionError)        DNS, refused, unreachable, session closed
    ├── AuthenticationFailedError (PermissionError) bad credentials, changed or unknown host key
    ├── ConnectTimeoutError (TimeoutError)          no answer in time while logging in
    ├── CommandTimeoutError (TimeoutError)          no prompt / exit status in time
    ├── CommandFailedError                          non-zero exit status with check=True
    └── ConnectionConfigError (ValueError)          bad connection options in the inventory

Messages name the host and the cause, never a password, passphrase or key.
"""

from __future__ import annotations

from collections.abc import Iterable

from genja._errors import GenjaError
from genja._secrets import mask
from genja.task._results import TaskFailureKind


class ConnectionFailure(GenjaError):
    kind = TaskFailureKind.CONNECTION
    retryable = True

    def __init__(self, message: str, *, host_id: str | None = None) -> None:
        super().__init__(message)
        self.host_id = host_id


class ConnectFailedError(ConnectionFailure, ConnectionError):
    kind = TaskFailureKind.CONNECTION
    retryable = True


class AuthenticationFailedError(ConnectionFailure, PermissionError):
    kind = TaskFailureKind.AUTHENTICATION
    retryable = False


class ConnectTimeoutError(ConnectionFailure, TimeoutError):
    kind = TaskFailureKind.TIMEOUT
    retryable = True


class CommandTimeoutError(ConnectionFailure, TimeoutError):
    kind = TaskFailureKind.TIMEOUT
    retryable = True


class CommandFailedError(ConnectionFailure):
    kind = TaskFailureKind.COMMAND
    retryable = False

    def __init__(
        self, message: str, *, host_id: str | None = None, exit_status: int, output: str
    ) -> None:
        super().__init__(message, host_id=host_id)
        self.exit_status = exit_status
        self.output = output


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret masked: a last guard for messages built from library errors,
    which should not carry secrets but are not ours to vouch for."""
    masked: str = mask(text, [secret for secret in secrets if secret])
    return masked


class ConnectionConfigError(ConnectionFailure, ValueError):
    """Connection options that cannot work (unknown keys, bad values): fix the inventory."""

    kind = TaskFailureKind.VALIDATION
    retryable = False
