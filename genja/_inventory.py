"""The inventory: hosts, groups and defaults, resolved into immutable `Host` objects.

Inheritance, highest precedence first: the host's own fields; its groups in listed order (the
first listed group wins), each group's parent groups depth-first after it; then defaults. `data`
merges key by key in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genja._errors import InventoryError
from genja._host import ConnectionOptions, Host
from genja._settings import Settings, load_document

_FIELDS = ("hostname", "port", "username", "password", "platform")
_KEYS = frozenset((*_FIELDS, "groups", "data", "connection_options"))


@dataclass(frozen=True, slots=True)
class Inventory:
    """Resolved hosts by id, in file order, plus the raw group and default definitions."""

    hosts: Mapping[str, Host] = field(default_factory=dict)
    groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.hosts)

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts.values())

    @classmethod
    def from_hosts(
        cls, hosts: Mapping[str, Mapping[str, Any] | Host] | Iterable[Host]
    ) -> Inventory:
        """An in-memory inventory from Host objects or from a mapping of host id to fields."""
        if isinstance(hosts, Mapping):
            built: dict[str, Host] = {}
            for host_id, value in hosts.items():
                if isinstance(value, Host):
                    built[host_id] = value
                else:
                    built[host_id] = resolve_host(host_id, value, {}, {}, "hosts")
            return cls(hosts=built)
        return cls(hosts={host.id: host for host in hosts})

    @classmethod
    def from_files(
        cls,
        hosts_file: Path,
        groups_file: Path | None = None,
        defaults_file: Path | None = None,
    ) -> Inventory:
        hosts_raw = _load_map(hosts_file)
        groups_raw = _load_map(groups_file) if groups_file is not None else {}
        defaults_raw = _load_map(defaults_file) if defaults_file is not None else {}
        for name, entry in groups_raw.items():
            _check_entry(entry, f"{groups_file}: group {name!r}")
        _check_entry(defaults_raw, f"{defaults_file}: defaults")
        hosts = {
            str(host_id): resolve_host(
                str(host_id), entry, groups_raw, defaults_raw, f"{hosts_file}: host {host_id!r}"
            )
            for host_id, entry in hosts_raw.items()
        }
        return cls(hosts=hosts, groups=groups_raw, defaults=defaults_raw)

    @classmethod
    def from_settings(cls, settings: Settings) -> Inventory:
        plugin = settings.inventory.plugin
        if plugin not in ("file", "SimpleInventory"):
            raise InventoryError(
                f"{settings.source or 'settings'}: inventory.plugin {plugin!r} is not known; "
                "known plugins: file"
            )
        options = settings.inventory.options
        hosts_file = options.get("hosts_file")
        if not hosts_file:
            return cls()
        optional = {
            key: settings.resolve_path(options[key]) if options.get(key) else None
            for key in ("groups_file", "defaults_file")
        }
        return cls.from_files(
            settings.resolve_path(hosts_file), optional["groups_file"], optional["defaults_file"]
        )


def _load_map(path: Path) -> dict[str, Any]:
    data = load_document(path)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InventoryError(
            f"{path}: expected a mapping of names to entries, got {type(data).__name__}"
        )
    for name, entry in data.items():
        if entry is not None and not isinstance(entry, Mapping):
            raise InventoryError(
                f"{path}: entry {name!r} must be a mapping, got {type(entry).__name__}"
            )
    return {str(name): dict(entry or {}) for name, entry in data.items()}


def _check_entry(entry: Mapping[str, Any], where: str) -> None:
    for key in entry:
        if key not in _KEYS:
            raise InventoryError(
                f"{where}: unknown field {key!r}; fields: {', '.join(sorted(_KEYS))}"
            )
    port = entry.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise InventoryError(f"{where}: port must be a whole number, got {port!r}")
    for key in ("hostname", "username", "password", "platform"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise InventoryError(f"{where}: {key} must be a string, got {value!r}")
    groups = entry.get("groups")
    if groups is not None and (
        not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)
    ):
        raise InventoryError(f"{where}: groups must be a list of group names")
    data = entry.get("data")
    if data is not None and not isinstance(data, Mapping):
        raise InventoryError(f"{where}: data must be a mapping")


def _group_chain(
    names: Iterable[str],
    groups: Mapping[str, Mapping[str, Any]],
    where: str,
    trail: tuple[str, ...],
) -> Iterator[str]:
    for name in names:
        if name in trail:
            cycle = " -> ".join((*trail, name))
            raise InventoryError(f"{where}: group cycle {cycle}")
        if name not in groups:
            via = f" (via {' -> '.join(trail)})" if trail else ""
            raise InventoryError(f"{where}: unknown group {name!r}{via}")
        yield name
        yield from _group_chain(groups[name].get("groups") or (), groups, where, (*trail, name))


def resolve_host(
    host_id: str,
    entry: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, Any]],
    defaults: Mapping[str, Any],
    where: str,
) -> Host:
    _check_entry(entry, where)
    chain = list(dict.fromkeys(_group_chain(entry.get("groups") or (), groups, where, ())))
    layers = [entry, *(groups[name] for name in chain), defaults]
    values: dict[str, Any] = {}
    for key in _FIELDS:
        values[key] = next((layer[key] for layer in layers if layer.get(key) is not None), None)
    data: dict[str, Any] = {}
    for layer in reversed(layers):
        data.update(layer.get("data") or {})
    connection_options: dict[str, ConnectionOptions] = {}
    for layer in reversed(layers):
        for plugin, options in (layer.get("connection_options") or {}).items():
            connection_options[plugin] = ConnectionOptions(
                hostname=options.get("hostname"),
                port=options.get("port"),
                username=options.get("username"),
                password=options.get("password"),
                platform=options.get("platform"),
                extras=dict(options.get("extras") or {}),
            )
    return Host(
        id=host_id,
        groups=tuple(entry.get("groups") or ()),
        data=data,
        connection_options=connection_options,
        **values,
    )
