"""What the `netconf` plugin reads: its settings section and a host's extras. Imports nothing
heavy.

The NETCONF port is `connection_options.netconf.port`, else `port` here (830): the host's own
`port` is its CLI's in most inventories, and is not used. Timeouts are in seconds:
`connect_timeout` (TCP connect and SSH login), `timeout` (one RPC's reply).
`host_key_policy` is `accept-any` (ncclient with hostkey_verify off) or `strict` (the key must be
in the agent user's ~/.ssh/known_hosts, as ncclient checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal


@dataclass(frozen=True, slots=True)
class NetconfExtras:
    """`connection_options.netconf.extras` of a host; None means "as the settings say".

    `device_handler` is ncclient's device handler (`junos`, `iosxr`, `nexus`, `iosxe`, `csr`,
    `default`, ...), derived from the host's platform when unset."""

    device_handler: str | None = None
    key_file: str | None = None
    passphrase: str | None = field(default=None, repr=False, metadata={"secret": True})
    allow_agent: bool | None = None
    look_for_keys: bool | None = None
    connect_timeout: float | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class NetconfSettings:
    """The `netconf` section of the settings file."""

    Extras: ClassVar[type] = NetconfExtras
    requires: ClassVar[tuple[str, ...]] = ("ncclient",)

    port: int = 830
    connect_timeout: float = 10.0
    timeout: float = 30.0
    host_key_policy: Literal["accept-any", "strict"] = "accept-any"
