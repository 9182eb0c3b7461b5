"""Why a connection or a command failed, in the terms a result uses.

Plugins raise these (translated from their library's errors at one boundary); the agent turns
one that escapes a task, or the opening of its connection, into a failed result of the matching
kind. Every leaf is also the matching builtin, so tasks may catch either::

    TaskError (genja.task)
    └── ConnectionFailure
        ├── ConnectFailedError (ConnectionError)        DNS, refused, unreachable, session closed
        ├── AuthenticationFailedError (PermissionError) bad credentials, changed or unknown host key
        ├── ConnectTimeoutError (TimeoutError)          no answer in time while logging in
        ├── CommandTimeoutError (TimeoutError)          no prompt / exit status in time
        ├── CommandFailedError                          non-zero exit status with check=True, a CLI
        │                                               error, output over max_output, an RPC error
        ├── TransferFailedError (OSError)               an SFTP put / get that failed
        └── ConnectionConfigError (ValueError)          bad connection options in the inventory

Messages name the host and the cause, never a password, passphrase or key.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from genja._secrets import mask
from genja.task._errors import TaskError
from genja.task._results import TaskFailureKind


class ConnectionFailure(TaskError):
    kind = TaskFailureKind.CONNECTION
    retryable = True


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
        self,
        message: str,
        *,
        host_id: str | None = None,
        exit_status: int | None = None,
        output: str = "",
    ) -> None:
        super().__init__(message, host_id=host_id)
        self.exit_status = exit_status
        self.output = output


class TransferFailedError(ConnectionFailure, OSError):
    kind = TaskFailureKind.COMMAND
    retryable = False


class ConnectionConfigError(ConnectionFailure, ValueError):
    """Connection options that cannot work (unknown keys, bad values): fix the inventory."""

    kind = TaskFailureKind.VALIDATION
    retryable = False


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret masked: a last guard for messages built from library errors,
    which should not carry secrets but are not ours to vouch for."""
    masked: str = mask(text, [secret for secret in secrets if secret])
    return masked


def socket_failure(
    error: BaseException, where: str, host_id: str, connect_timeout: float
) -> ConnectionFailure | None:
    """The classified error for a failure to reach a TCP port (DNS, refused, unreachable, no
    answer), or None when `error` is not one."""
    if isinstance(error, socket.gaierror):
        return ConnectFailedError(f"{where}: cannot resolve the name: {error}", host_id=host_id)
    if isinstance(error, TimeoutError):
        return ConnectTimeoutError(
            f"{where}: no answer within {connect_timeout:g}s", host_id=host_id
        )
    if isinstance(error, ConnectionRefusedError):
        return ConnectFailedError(f"{where}: connection refused", host_id=host_id)
    if isinstance(error, OSError) and error.errno is not None:
        return ConnectFailedError(f"{where}: {error.strerror or error}", host_id=host_id)
    return None


def open_socket(
    hostname: str, port: int, timeout: float, *, host_id: str, where: str
) -> socket.socket:
    """A TCP connection to hostname:port with TCP_NODELAY (without it, Nagle's algorithm meets
    delayed ACKs: ~40 ms per round trip); failures classified."""
    try:
        sock = socket.create_connection((hostname, port), timeout=timeout)
    except OSError as error:
        failure = socket_failure(error, where, host_id, timeout)
        if failure is None:
            raise
        raise failure from error
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
