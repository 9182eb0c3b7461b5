"""Hosts as tasks see them: resolved, immutable, and careful with secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """Per-connection-plugin overrides of a host's fields (Nornir's `connection_options`)."""

    hostname: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    platform: str | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Host:
    """One inventory target with its inherited values already resolved.

    `hostname` is the address to connect to; when the inventory gives none it is the host's id,
    as Ansible does with `inventory_hostname`. `password` is never shown by `repr`.
    """

    id: str
    hostname: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    platform: str | None = None
    groups: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    connection_options: Mapping[str, ConnectionOptions] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("a host id must be a non-empty string")
        if self.hostname is None:
            object.__setattr__(self, "hostname", self.id)
        if not isinstance(self.groups, tuple):
            object.__setattr__(self, "groups", tuple(self.groups))

    @property
    def name(self) -> str:
        """The host's inventory name (Nornir's spelling of `id`)."""
        return self.id

    def get(self, key: str, default: Any = None) -> Any:
        """A value from `data`, as Nornir's `host.get` does."""
        return self.data.get(key, default)
