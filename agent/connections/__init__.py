"""The connection plugin interface: what a plugin implements, what it raises, what it returns.

The plugins genja ships live beside it, one package each (`ssh`, `netmiko`, `scrapli`,
`netconf`); agents load them by name from the `genja.connections` entry-point group, and the
client reads their settings declarations from `genja.connection_settings`. Nothing here imports
a device library.
"""

from agent.connections._errors import (
    AuthenticationFailedError,
    CommandFailedError,
    CommandTimeoutError,
    ConnectFailedError,
    ConnectionConfigError,
    ConnectionFailure,
    ConnectTimeoutError,
    TransferFailedError,
)
from agent.connections._extras import host_extras
from agent.connections._plugin import Connection, ConnectionPlugin, OpenContext
from agent.connections._result import CommandResult

__all__ = [
    "AuthenticationFailedError",
    "CommandFailedError",
    "CommandResult",
    "CommandTimeoutError",
    "ConnectFailedError",
    "ConnectTimeoutError",
    "Connection",
    "ConnectionConfigError",
    "ConnectionFailure",
    "ConnectionPlugin",
    "OpenContext",
    "TransferFailedError",
    "host_extras",
]
