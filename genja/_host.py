"""Hosts as tasks see them: resolved, immutable, careful with secrets, and able to say where
each inherited value came from."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from genja._secrets import is_secret_key, mask, secret_strings

HOST_FIELDS = ("hostname", "port", "username", "password", "platform")


class SourceKind(enum.Enum):
    """Which layer of the inventory a resolved value came from."""

    HOST = "host"
    GROUP = "group"
    DEFAULTS = "defaults"
    HOST_ID = "id"  # no hostname anywhere: the host's id is used, as Ansible does


@dataclass(frozen=True, slots=True)
class ValueSource:
    """Where one resolved value came from: the host, a named group, the defaults or the id.

    `str()` gives a compact token (`host`, `group:core`, `defaults`, `id`) that `parse` reads
    back; it is what crosses the wire to agents.
    """

    kind: SourceKind
    group: str | None = None
    # str() runs for every value of every host sent to agents: computed once.
    _token: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        token = f"group:{self.group}" if self.kind is SourceKind.GROUP else str(self.kind.value)
        object.__setattr__(self, "_token", token)

    def __str__(self) -> str:
        return self._token

    @classmethod
    def parse(cls, token: str) -> ValueSource:
        kind, _, group = token.partition(":")
        if kind == "group":
            return cls(SourceKind.GROUP, group)
        return cls(SourceKind(kind))

    def describe(self) -> str:
        """Wording for people: `host`, `group 'core'`, `defaults`, `the host id`."""
        if self.kind is SourceKind.GROUP:
            return f"group {self.group!r}"
        if self.kind is SourceKind.HOST_ID:
            return "the host id"
        return str(self.kind.value)


FROM_HOST = ValueSource(SourceKind.HOST)
FROM_DEFAULTS = ValueSource(SourceKind.DEFAULTS)
FROM_HOST_ID = ValueSource(SourceKind.HOST_ID)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _masked_repr(obj: Any, secrets: tuple[str, ...]) -> str:
    """The dataclass repr of `obj` with secrets masked (see genja._secrets)."""
    parts = (
        f"{f.name}={mask(getattr(obj, f.name), secrets)!r}"
        for f in dataclasses.fields(obj)
        if f.repr
    )
    return f"{type(obj).__name__}({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """Per-connection-plugin overrides of a host's fields (Nornir's `connection_options`).

    `env_extras` names the extras whose values came from `${env:...}` references: secrets,
    whatever their key. `repr` masks the password and every secret extra.
    """

    hostname: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    platform: str | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)
    env_extras: frozenset[str] = field(default=frozenset(), repr=False)

    def secret_values(self) -> tuple[str, ...]:
        """Every secret string these options hold: the password and the secret extras."""
        found = [self.password] if self.password else []
        for key, value in self.extras.items():
            if key in self.env_extras or is_secret_key(key):
                found.extend(secret_strings(value))
        return tuple(found)

    def __repr__(self) -> str:
        return _masked_repr(self, self.secret_values())


@dataclass(frozen=True, slots=True)
class Host:
    """One inventory target with its inherited values already resolved.

    `hostname` is the address to connect to; when the inventory gives none it is the host's id,
    as Ansible does with `inventory_hostname`. `repr` shows no secret: not the password, not a
    secret connection option (see `genja._secrets`).

    `groups` are the groups the host lists itself; `all_groups` adds the groups inherited through
    group parents, in precedence order. `sources` maps each resolved value (`"port"`,
    `"data.site"`, `"connection_options.ssh.port"`) to its `ValueSource`; read it with
    `source_of`. Hosts built by hand (not from an inventory) have no sources.

    `id` may be left out when the host is the value of a mapping keyed by id
    (`Genja.from_hosts({"router1": Host(hostname="10.0.0.1")})`, as in Genja 0.4): the key
    becomes its id (and its hostname, when it has none). A host without an id is refused
    anywhere else.
    """

    id: str = ""
    hostname: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    platform: str | None = None
    groups: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    connection_options: Mapping[str, ConnectionOptions] = field(default_factory=dict)
    all_groups: tuple[str, ...] = field(default=(), repr=False)
    sources: Mapping[str, ValueSource] = field(
        default_factory=lambda: _EMPTY, repr=False, compare=False
    )
    # secret_values(), computed on first use: most hosts never need it.
    _secrets: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            raise ValueError(f"a host id must be a string, got {self.id!r}")
        if self.hostname is None and self.id:
            object.__setattr__(self, "hostname", self.id)
        if self.data is None:  # as Genja 0.4 allows
            object.__setattr__(self, "data", {})
        if not isinstance(self.groups, tuple):
            object.__setattr__(self, "groups", tuple(self.groups))
        if not self.all_groups:
            object.__setattr__(self, "all_groups", self.groups)
        elif not isinstance(self.all_groups, tuple):
            object.__setattr__(self, "all_groups", tuple(self.all_groups))

    @property
    def name(self) -> str:
        """The host's inventory name (Nornir's spelling of `id`)."""
        return self.id

    def keyed(self, key: str) -> Host:
        """This host as the value of `key` in a mapping of hosts by id: itself when its id is
        `key`, a copy with that id when it has none; ValueError when its id is another."""
        if self.id == key:
            return self
        if self.id:
            raise ValueError(
                f"host {key!r} is a Host whose id is {self.id!r}; give it the key as its id, "
                "or leave its id out"
            )
        return dataclasses.replace(self, id=key)

    def secret_values(self) -> tuple[str, ...]:
        """Every secret string of this host (passwords, secret connection options), which
        results and messages about it must not show."""
        if self._secrets is None:
            found = [self.password] if self.password else []
            for options in self.connection_options.values():
                found.extend(options.secret_values())
            object.__setattr__(self, "_secrets", tuple(dict.fromkeys(found)))
        return self._secrets  # type: ignore[return-value]

    def __repr__(self) -> str:
        return _masked_repr(self, self.secret_values())

    def get(self, key: str, default: Any = None) -> Any:
        """A value from `data`, as Nornir's `host.get` does."""
        return self.data.get(key, default)

    def in_group(self, group: str, *, inherited: bool = True) -> bool:
        """Membership of `group`, directly or (by default) through group parents."""
        return group in (self.all_groups if inherited else self.groups)

    def source_of(self, key: str) -> ValueSource | None:
        """Where the value at `key` came from: a field (`"port"`), a data key (`"data.site"`,
        or deeper: `"data.site.name"` comes from wherever `data.site` did, since `data` merges
        by top-level key), or a connection option (`"connection_options.ssh.port"`).

        None when the value is not set, or the host was not loaded from an inventory.
        """
        found = self.sources.get(key)
        if found is not None or not key.startswith("data."):
            return found
        parts = key.split(".")
        return self.sources.get(f"data.{parts[1]}") if len(parts) > 2 else None

    def connection_params(self, plugin: str) -> ConnectionOptions:
        """The values a connection plugin should use: its `connection_options` entry, each
        field falling back to the host's own resolved field."""
        options = self.connection_options.get(plugin)
        if options is None:
            return ConnectionOptions(
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self.password,
                platform=self.platform,
            )
        return ConnectionOptions(
            hostname=options.hostname if options.hostname is not None else self.hostname,
            port=options.port if options.port is not None else self.port,
            username=options.username if options.username is not None else self.username,
            password=options.password if options.password is not None else self.password,
            platform=options.platform if options.platform is not None else self.platform,
            extras=options.extras,
            env_extras=options.env_extras,
        )
