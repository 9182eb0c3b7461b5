"""What the `netmiko` plugin reads: its settings section and a host's extras. Imports nothing
heavy.

Timeouts are in seconds: `conn_timeout` (TCP connect), `banner_timeout` (SSH banner),
`auth_timeout` (login; netmiko's default when unset), `read_timeout` (one command's output, the
default of `send_command`). `host_key_policy` is `accept-any` (netmiko's own default: any key,
nothing written) or `strict` (the key must be in `known_hosts`, default ~/.ssh/known_hosts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal


@dataclass(frozen=True, slots=True)
class NetmikoExtras:
    """`connection_options.netmiko.extras` of a host; None means "as the settings say".

    `device_type` overrides the one derived from the host's platform; `secret` is the enable
    secret (the session enters enable mode at login when it is set); `options` go to netmiko's
    `ConnectHandler` as they are, for anything not listed here."""

    device_type: str | None = None
    secret: str | None = field(default=None, repr=False, metadata={"secret": True})
    key_file: str | None = None
    passphrase: str | None = field(default=None, repr=False, metadata={"secret": True})
    use_keys: bool | None = None
    allow_agent: bool | None = None
    session_log: str | None = None
    conn_timeout: float | None = None
    banner_timeout: float | None = None
    auth_timeout: float | None = None
    read_timeout: float | None = None
    fast_cli: bool | None = None
    options: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class NetmikoSettings:
    """The `netmiko` section of the settings file."""

    Extras: ClassVar[type] = NetmikoExtras
    requires: ClassVar[tuple[str, ...]] = ("netmiko",)

    conn_timeout: float = 10.0
    banner_timeout: float = 15.0
    auth_timeout: float | None = None
    read_timeout: float = 10.0
    fast_cli: bool = True
    host_key_policy: Literal["accept-any", "strict"] = "accept-any"
    known_hosts: str | None = field(default=None, metadata={"path": True})
    ssh_config_file: str | None = field(default=None, metadata={"path": True})
