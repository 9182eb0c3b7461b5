"""Connection plugins shipped with genja, and the errors they raise."""

from agent.connections._errors import (
    AuthenticationFailedError,
    CommandFailedError,
    CommandTimeoutError,
    ConnectFailedError,
    ConnectionConfigError,
    ConnectionFailure,
    ConnectTimeoutError,
)
from agent.connections._plugin import Connection, ConnectionPlugin, OpenContext
from agent.connections._ssh import AsyncSSHConnection, SSHConnection, SSHPlugin

__all__ = [
    "AsyncSSHConnection",
    "AuthenticationFailedError",
    "CommandFailedError",
    "CommandTimeoutError",
    "ConnectFailedError",
    "ConnectTimeoutError",
    "Connection",
    "ConnectionConfigError",
    "ConnectionFailure",
    "ConnectionPlugin",
    "OpenContext",
    "SSHConnection",
    "SSHPlugin",
]
