"""What the `scrapli` plugin reads: its settings section and a host's extras. Imports nothing
heavy.

`transport` picks scrapli's driver: `paramiko` (default), `system` (OpenSSH) or `ssh2` run the
synchronous driver; `asyncssh` runs scrapli's asyncio driver natively, on an event loop of the
plugin's own. Timeouts are scrapli's, in seconds: `timeout_socket` (TCP connect),
`timeout_transport` (SSH login and reads), `timeout_ops` (one command or config set).
`auth_strict_key` checks host keys against `ssh_known_hosts_file` (default ~/.ssh/known_hosts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Transport = Literal["paramiko", "system", "ssh2", "asyncssh"]
ASYNC_TRANSPORTS = frozenset({"asyncssh"})


@dataclass(frozen=True, slots=True)
class ScrapliExtras:
    """`connection_options.scrapli.extras` of a host; None means "as the settings say".

    `platform` overrides the scrapli platform derived from the host's (`cisco_iosxe`, ...);
    `auth_secondary` is the enable secret; `channel_log` a file for scrapli's session
    transcript; `options` go to scrapli's driver as they are, for anything not listed here."""

    platform: str | None = None
    auth_secondary: str | None = field(default=None, repr=False, metadata={"secret": True})
    auth_private_key: str | None = None
    auth_private_key_passphrase: str | None = field(
        default=None, repr=False, metadata={"secret": True}
    )
    transport: Transport | None = None
    timeout_socket: float | None = None
    timeout_transport: float | None = None
    timeout_ops: float | None = None
    channel_log: str | None = None
    options: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ScrapliSettings:
    """The `scrapli` section of the settings file."""

    Extras: ClassVar[type] = ScrapliExtras
    requires: ClassVar[tuple[str, ...]] = ("scrapli",)

    transport: Transport = "paramiko"
    timeout_socket: float = 15.0
    timeout_transport: float = 30.0
    timeout_ops: float = 30.0
    auth_strict_key: bool = False
    ssh_config_file: str | None = field(default=None, metadata={"path": True})
    ssh_known_hosts_file: str | None = field(default=None, metadata={"path": True})
