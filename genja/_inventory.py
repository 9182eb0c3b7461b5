"""The inventory: hosts, groups and defaults files, resolved into immutable `Host` objects.

Inheritance, highest precedence first:

1. the host's own fields;
2. its groups in the order it lists them (the first listed group wins), each group followed by
   its own parent groups, depth-first, before the next listed group; a group reached twice
   counts at its first place;
3. the defaults.

`data` merges by top-level key with the same precedence (a nested mapping is taken whole from
the layer that has its key, as in Nornir and Ansible). `connection_options` merge per plugin,
field by field, and their `extras` key by key.

Loading is built for big inventories: everything that depends only on a host's list of groups
(the group chain, inherited values, their sources) is computed once per distinct list and
shared by every host that lists the same groups.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from genja._errors import ConfigurationError, InventoryError
from genja._host import (
    FROM_DEFAULTS,
    FROM_HOST,
    FROM_HOST_ID,
    HOST_FIELDS,
    ConnectionOptions,
    Host,
    SourceKind,
    ValueSource,
)
from genja._loader import collector_paused, load_document, locate_line
from genja._settings import Settings

_KEYS = (*HOST_FIELDS, "groups", "data", "connection_options")
_KEY_SET = frozenset(_KEYS)
_OPTION_KEYS = (*HOST_FIELDS, "extras")
_OPTION_KEY_SET = frozenset(_OPTION_KEYS)
_STRING_FIELDS = ("hostname", "username", "password", "platform")
_MAX_PORT = 65535
_PORT = f"must be a whole number from 1 to {_MAX_PORT}"
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}\Z")

# `FileInventoryPlugin` is Genja 0.4's name of the file inventory, `SimpleInventory` Nornir's.
KNOWN_PLUGINS = ("file", "FileInventoryPlugin", "SimpleInventory")

log = logging.getLogger("genja.inventory")


@dataclass(frozen=True, slots=True)
class _Where:
    """Names the place of an entry in errors; the line is looked up only when one happens."""

    path: Path | None
    kind: str  # "host", "group", "defaults"
    name: str | None = None

    def error(self, message: str, *keys: str) -> InventoryError:
        """`keys`: the path to the wrong value inside the entry, to find its line."""
        path = [self.name, *keys] if self.name is not None else list(keys)
        line = locate_line(self.path, path) if self.path is not None else None
        place = str(self.path) if self.path is not None else "inventory"
        at = f" line {line}:" if line is not None else ""
        what = f"{self.kind} {self.name!r}" if self.name is not None else self.kind
        return InventoryError(f"{place}:{at} {what}: {message}")


@dataclass(frozen=True, slots=True)
class Inventory:
    """Resolved hosts by id, in file order, plus the group and default definitions as loaded
    (with `${env:...}` references already replaced).

    Each host's id is its key: a Host given without an id takes its key (see `Host.keyed`), one
    whose id is another key is an InventoryError, never a silent re-keying."""

    hosts: Mapping[str, Host] = field(default_factory=dict)
    groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if all(host.id == key for key, host in self.hosts.items()):
            return
        try:
            keyed = {key: host.keyed(key) for key, host in self.hosts.items()}
        except ValueError as error:
            raise InventoryError(f"inventory: {error}") from None
        object.__setattr__(self, "hosts", keyed)

    def __len__(self) -> int:
        return len(self.hosts)

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts.values())

    def group_members(self, group: str, *, inherited: bool = True) -> list[str]:
        """Ids of the hosts in `group`, directly or (by default) through group parents."""
        return [h.id for h in self.hosts.values() if h.in_group(group, inherited=inherited)]

    @classmethod
    def from_hosts(
        cls,
        hosts: Mapping[str, Mapping[str, Any] | Host] | Iterable[Host],
        *,
        groups: Mapping[str, Mapping[str, Any]] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> Inventory:
        """An in-memory inventory from Host objects or from host ids mapped to fields (which
        inherit from `groups` and `defaults` exactly as files do)."""
        if not isinstance(hosts, Mapping):
            by_id: dict[str, Host] = {}
            for host in hosts:
                if not isinstance(host, Host) or not host.id:
                    raise InventoryError(
                        f"inventory: {host!r} has no id; give hosts ids, or a mapping of ids "
                        "to hosts"
                    )
                by_id[host.id] = host
            return cls(hosts=by_id)
        # Copies: loading fills in inherited data and expands ${env:...} in place.
        raw: dict[str, Any] = {}
        ready: dict[str, Host] = {}
        for host_id, value in hosts.items():
            if isinstance(value, Host):
                ready[host_id] = value
            else:
                raw[host_id] = _copy_entry(value)
        resolver = _Resolver(
            {name: _copy_entry(entry) for name, entry in (groups or {}).items()},
            _copy_entry(defaults),
            None,
            None,
        )
        built = resolver.hosts(raw, None)
        return cls(
            hosts={host_id: ready.get(host_id) or built[host_id] for host_id in hosts},
            groups=resolver.groups,
            defaults=resolver.defaults,
        )

    @classmethod
    def from_files(
        cls,
        hosts_file: Path,
        groups_file: Path | None = None,
        defaults_file: Path | None = None,
        *,
        transform: Callable[..., Any] | None = None,
        transform_options: Mapping[str, Any] | None = None,
    ) -> Inventory:
        """Load hosts, groups and defaults files (YAML or JSON; an empty or missing-content
        file is an empty map). `transform` is called as `transform(host, **transform_options)`
        for every host and may return a replacement Host (or None to keep it)."""
        with collector_paused():
            return cls._load_files(
                Path(hosts_file),
                Path(groups_file) if groups_file is not None else None,
                Path(defaults_file) if defaults_file is not None else None,
                transform,
                transform_options,
            )

    @classmethod
    def _load_files(
        cls,
        hosts_file: Path,
        groups_file: Path | None,
        defaults_file: Path | None,
        transform: Callable[..., Any] | None,
        transform_options: Mapping[str, Any] | None,
    ) -> Inventory:
        hosts_raw = _load_map(hosts_file, "host")
        groups_raw = _load_map(groups_file, "group") if groups_file is not None else {}
        defaults_raw = _load_defaults(defaults_file) if defaults_file is not None else {}
        resolver = _Resolver(groups_raw, defaults_raw, groups_file, defaults_file)
        hosts = resolver.hosts(hosts_raw, hosts_file)
        if transform is not None:
            hosts = _transform(hosts, transform, transform_options or {})
        return cls(hosts=hosts, groups=resolver.groups, defaults=resolver.defaults)

    @classmethod
    def from_settings(cls, settings: Settings) -> Inventory:
        plugin = settings.inventory.plugin
        where = settings.source or "settings"
        if plugin not in KNOWN_PLUGINS:
            raise InventoryError(
                f"{where}: inventory.plugin {plugin!r} is not known; known plugins: file"
            )
        options = settings.inventory.options
        transform = None
        if settings.inventory.transform_function:
            transform = import_function(
                settings.inventory.transform_function, f"{where}: inventory.transform_function"
            )
        hosts_file = options.get("hosts_file")
        if not hosts_file:
            return cls()
        optional = {
            key: settings.resolve_path(options[key]) if options.get(key) else None
            for key in ("groups_file", "defaults_file")
        }
        started = time.perf_counter()
        inventory = cls.from_files(
            settings.resolve_path(hosts_file),
            optional["groups_file"],
            optional["defaults_file"],
            transform=transform,
            transform_options=settings.inventory.transform_function_options,
        )
        log.info(
            "loaded %d hosts and %d groups from %s in %.2f s",
            len(inventory.hosts),
            len(inventory.groups),
            settings.resolve_path(hosts_file),
            time.perf_counter() - started,
        )
        return inventory


# ---------------------------------------------------------------- files


def _copy_entry(entry: Any) -> Any:
    if not isinstance(entry, Mapping):
        return entry if entry is not None else {}
    copy = dict(entry)
    for key in ("data", "connection_options"):
        if isinstance(copy.get(key), Mapping):
            copy[key] = dict(copy[key])
    options = copy.get("connection_options")
    if isinstance(options, dict):
        for plugin, values in options.items():
            if isinstance(values, Mapping):
                options[plugin] = dict(values)
    return copy


def _read(path: Path) -> Any:
    try:
        return load_document(path)
    except InventoryError:
        raise
    except ConfigurationError as error:
        raise InventoryError(str(error)) from None


def _load_map(path: Path, kind: str) -> dict[str, Any]:
    data = _read(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InventoryError(
            f"{path}: expected a mapping of {kind} names to their fields, got {type(data).__name__}"
        )
    for name, entry in data.items():
        if not isinstance(name, str):
            raise _Where(path, kind, str(name)).error(f"{kind} names must be strings")
        if entry is not None and not isinstance(entry, dict):
            raise _Where(path, kind, name).error(
                f"must be a mapping of fields, got {type(entry).__name__}"
            )
    return data


def _load_defaults(path: Path) -> dict[str, Any]:
    data = _read(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InventoryError(f"{path}: expected a mapping of fields, got {type(data).__name__}")
    return data


def import_function(spec: str, where: str) -> Callable[..., Any]:
    """`package.module:function` (or `package.module.function`) as a callable."""
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ConfigurationError(f"{where}: {spec!r} is not of the form 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(f"{where}: cannot import {module_name!r}: {error}") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ConfigurationError(f"{where}: {module_name!r} has no function {attr!r}")
    return function  # type: ignore[no-any-return]


def _transform(
    hosts: dict[str, Host], function: Callable[..., Any], options: Mapping[str, Any]
) -> dict[str, Host]:
    name = getattr(function, "__qualname__", repr(function))
    result: dict[str, Host] = {}
    for host_id, host in hosts.items():
        try:
            changed = function(host, **options)
        except Exception as error:
            raise InventoryError(
                f"transform function {name} failed for host {host_id!r}: "
                f"{type(error).__name__}: {error}"
            ) from error
        if changed is None:
            result[host_id] = host
        elif isinstance(changed, Host):
            if changed.id != host_id:
                raise InventoryError(
                    f"transform function {name} changed the id of host {host_id!r}"
                )
            result[host_id] = changed
        else:
            raise InventoryError(
                f"transform function {name} returned {type(changed).__name__} for host "
                f"{host_id!r}; return a Host (e.g. dataclasses.replace(host, ...)) or None"
            )
    return result


# ---------------------------------------------------------------- checks


def _check_entry(entry: Mapping[str, Any], where: _Where) -> None:
    """Types of one host, group or defaults entry; `${env:...}` passwords replaced in place."""
    if not _KEY_SET.issuperset(entry):
        for key in entry:
            if key not in _KEY_SET:
                raise where.error(f"unknown field {key!r}{_suggest(key, _KEYS)}", key)
    port = entry.get("port")
    if port is not None and (port.__class__ is not int or not 0 < port <= _MAX_PORT):
        raise where.error(f"port {_PORT}, got {port!r}", "port")
    for key in _STRING_FIELDS:
        value = entry.get(key)
        if value is not None and value.__class__ is not str:
            raise where.error(f"{key} must be a string, got {_shown(key, value)}", key)
    password = entry.get("password")
    if password is not None and password.startswith("${"):
        entry["password"] = _expand_env(password, where, "password")  # type: ignore[index]
    groups = entry.get("groups")
    if groups is not None and (
        groups.__class__ is not list or not all(g.__class__ is str for g in groups)
    ):
        raise where.error(f"groups must be a list of group names, got {groups!r}", "groups")
    data = entry.get("data")
    if data is not None and data.__class__ is not dict:
        raise where.error(f"data must be a mapping, got {type(data).__name__}", "data")
    options = entry.get("connection_options")
    if options is not None:
        _check_connection_options(options, where)


def _check_connection_options(options: Any, where: _Where) -> None:
    key = "connection_options"
    if not isinstance(options, dict):
        raise where.error(f"{key} must be a mapping of plugin names to options", key)
    for plugin, values in options.items():
        path = f"{key}.{plugin}"
        if values is None:
            options[plugin] = {}
            continue
        if not isinstance(values, dict):
            raise where.error(f"{path} must be a mapping", key, plugin)
        for name in values:
            if name not in _OPTION_KEY_SET:
                unknown = f"unknown field {path}.{name}{_suggest(name, _OPTION_KEYS)}"
                raise where.error(unknown, key, plugin, name)
        port = values.get("port")
        if port is not None and (port.__class__ is not int or not 0 < port <= _MAX_PORT):
            raise where.error(f"{path}.port {_PORT}, got {port!r}", key, plugin, "port")
        for name in _STRING_FIELDS:
            value = values.get(name)
            if value is not None and not isinstance(value, str):
                shown = _shown(name, value)
                raise where.error(f"{path}.{name} must be a string, got {shown}", key, plugin, name)
        password = values.get("password")
        if password is not None and password.startswith("${"):
            values["password"] = _expand_env(password, where, f"{path}.password")
        extras = values.get("extras")
        if extras is None:
            continue
        if not isinstance(extras, dict):
            raise where.error(f"{path}.extras must be a mapping", key, plugin, "extras")
        for name, value in extras.items():
            if isinstance(value, str) and value.startswith("${"):
                expanded = _expand_env(value, where, f"{path}.extras.{name}")
                if expanded is not value:
                    extras[name] = _FromEnv(expanded)


def _shown(key: str, value: Any) -> str:
    """A wrong value for an error message; for a password only its type, never the value."""
    return type(value).__name__ if key == "password" else repr(value)


class _FromEnv(str):
    """An extras value read from an `${env:...}` reference: marked so the options built from
    it list its key in `env_extras` (a secret, whatever the key's name)."""


def _expand_env(value: str, where: _Where, key: str) -> str:
    match = _ENV_REF.match(value)
    if match is None:
        return value
    name = match.group(1)
    resolved = os.environ.get(name)
    if resolved is None:
        # Names the variable, never a value.
        message = f"{key} refers to environment variable {name}, which is not set"
        raise where.error(message, *key.split("."))
    return resolved


def _suggest(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(known)}"


# ---------------------------------------------------------------- resolution


@dataclass(slots=True)
class _Inherited:
    """What every host listing the same groups inherits, computed once for all of them."""

    all_groups: tuple[str, ...]
    fields: dict[str, Any]
    field_sources: dict[str, ValueSource]
    data: dict[str, Any]
    data_sources: dict[str, ValueSource]
    options: dict[str, dict[str, Any]]  # plugin -> field -> value (extras merged)
    option_sources: dict[str, ValueSource]
    built_options: dict[str, ConnectionOptions]
    shapes: dict[Any, Mapping[str, ValueSource]] = field(default_factory=dict)


class _Resolver:
    def __init__(
        self,
        groups: dict[str, Any],
        defaults: dict[str, Any],
        groups_path: Path | None,
        defaults_path: Path | None,
    ) -> None:
        self._groups_path = groups_path
        for name in list(groups):
            if groups[name] is None:
                groups[name] = {}
            where = _Where(groups_path, "group", name)
            if not isinstance(groups[name], dict):
                raise where.error(f"must be a mapping of fields, got {type(groups[name]).__name__}")
            _check_entry(groups[name], where)
        if not isinstance(defaults, dict):
            raise _Where(defaults_path, "defaults").error(
                f"must be a mapping of fields, got {type(defaults).__name__}"
            )
        _check_entry(defaults, _Where(defaults_path, "defaults"))
        self.groups = groups
        self.defaults = defaults
        self._sources = {name: ValueSource(SourceKind.GROUP, name) for name in groups}
        self._chains: dict[str, tuple[str, ...]] = {}
        for name in groups:
            self._chain_of(name, ())
        self._inherited: dict[tuple[str, ...], _Inherited] = {}

    def _chain_of(self, name: str, trail: tuple[str, ...]) -> tuple[str, ...]:
        """The group followed by its parents depth-first; cycles and unknown parents raise."""
        known = self._chains.get(name)
        if known is not None:
            return known
        if name in trail:
            cycle = " -> ".join((*trail, name))
            raise InventoryError(f"{self._groups_path or 'groups'}: group cycle: {cycle}")
        chain = [name]
        for parent in self.groups[name].get("groups") or ():
            if parent not in self.groups:
                raise _Where(self._groups_path, "group", name).error(
                    f"unknown parent group {parent!r} (chain: "
                    f"{' -> '.join((*trail, name, parent))})"
                    f"{_suggest_group(parent, self.groups)}",
                    "groups",
                )
            chain.extend(self._chain_of(parent, (*trail, name)))
        result = tuple(dict.fromkeys(chain))
        self._chains[name] = result
        return result

    def _inherit(self, groups: tuple[str, ...], where: _Where) -> _Inherited:
        for name in groups:
            if name not in self.groups:
                raise where.error(
                    f"unknown group {name!r}{_suggest_group(name, self.groups)}", "groups"
                )
        chain: list[str] = []
        for name in groups:
            chain.extend(self._chains[name])
        all_groups = tuple(dict.fromkeys(chain))
        layers = [(self.groups[name], self._sources[name]) for name in all_groups]
        layers.append((self.defaults, FROM_DEFAULTS))
        fields: dict[str, Any] = {}
        field_sources: dict[str, ValueSource] = {}
        data: dict[str, Any] = {}
        data_sources: dict[str, ValueSource] = {}
        options: dict[str, dict[str, Any]] = {}
        option_sources: dict[str, ValueSource] = {}
        for layer, source in layers:
            for key in HOST_FIELDS:
                value = layer.get(key)
                if value is not None and key not in fields:
                    fields[key] = value
                    field_sources[key] = source
            for key, value in (layer.get("data") or {}).items():
                if key not in data:
                    data[key] = value
                    data_sources[f"data.{key}"] = source
            _merge_options(options, option_sources, layer.get("connection_options"), source)
        return _Inherited(
            all_groups=all_groups,
            fields=fields,
            field_sources=field_sources,
            data=data,
            data_sources=data_sources,
            options=options,
            option_sources=option_sources,
            built_options={p: _build_options(v) for p, v in options.items()},
        )

    def hosts(self, raw: Mapping[str, Any], path: Path | None) -> dict[str, Host]:
        result: dict[str, Host] = {}
        inherited_by_groups = self._inherited
        for host_id, given in raw.items():
            entry = given if given is not None else {}
            if entry.__class__ is not dict:
                raise _Where(path, "host", host_id).error(
                    f"must be a mapping of fields, got {type(entry).__name__}"
                )
            _check_entry(entry, _Where(path, "host", host_id))
            listed = entry.get("groups")
            groups = tuple(listed) if listed else ()
            inherited = inherited_by_groups.get(groups)
            if inherited is None:
                inherited = self._inherit(groups, _Where(path, "host", host_id))
                inherited_by_groups[groups] = inherited
            result[host_id] = _build_host(host_id, entry, groups, inherited)
        return result


def _suggest_group(name: str, groups: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(groups), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _merge_options(
    into: dict[str, dict[str, Any]],
    sources: dict[str, ValueSource],
    layer_options: Mapping[str, Any] | None,
    source: ValueSource,
) -> None:
    """Fold one (lower precedence) layer's connection_options under what `into` already has."""
    if not layer_options:
        return
    for plugin, values in layer_options.items():
        target = into.setdefault(plugin, {})
        for key, value in values.items():
            if value is None:
                continue
            if key == "extras":
                extras = target.setdefault("extras", {})
                for extra_key, extra_value in value.items():
                    if extra_key not in extras:
                        extras[extra_key] = extra_value
                        sources[f"connection_options.{plugin}.extras.{extra_key}"] = source
            elif key not in target:
                target[key] = value
                sources[f"connection_options.{plugin}.{key}"] = source


def _merge_inherited_options(
    into: dict[str, dict[str, Any]], sources: dict[str, ValueSource], inherited: _Inherited
) -> None:
    for plugin, values in inherited.options.items():
        target = into.setdefault(plugin, {})
        for key, value in values.items():
            if key == "extras":
                extras = target.setdefault("extras", {})
                for extra_key, extra_value in value.items():
                    if extra_key not in extras:
                        extras[extra_key] = extra_value
                        name = f"connection_options.{plugin}.extras.{extra_key}"
                        sources[name] = inherited.option_sources[name]
            elif key not in target:
                target[key] = value
                name = f"connection_options.{plugin}.{key}"
                sources[name] = inherited.option_sources[name]


def _build_options(values: Mapping[str, Any]) -> ConnectionOptions:
    extras = values.get("extras") or {}
    from_env = frozenset(key for key, value in extras.items() if value.__class__ is _FromEnv)
    if from_env:
        extras = {key: str(value) if key in from_env else value for key, value in extras.items()}
    return ConnectionOptions(
        hostname=values.get("hostname"),
        port=values.get("port"),
        username=values.get("username"),
        password=values.get("password"),
        platform=values.get("platform"),
        extras=extras,
        env_extras=from_env,
    )


def _build_host(
    host_id: str, entry: dict[str, Any], groups: tuple[str, ...], inherited: _Inherited
) -> Host:
    fields = inherited.fields
    own = tuple(key for key in HOST_FIELDS if entry.get(key) is not None)
    values = {key: entry[key] if key in own else fields.get(key) for key in HOST_FIELDS}
    own_data = entry.get("data")
    if own_data:
        data_shape: tuple[str, ...] = tuple(own_data)
        data = own_data
        for key, value in inherited.data.items():
            if key not in data:
                data[key] = value
    else:
        data = dict(inherited.data)
        data_shape = ()
    own_options = entry.get("connection_options")
    if own_options:
        merged: dict[str, dict[str, Any]] = {}
        option_sources: dict[str, ValueSource] = {}
        _merge_options(merged, option_sources, own_options, FROM_HOST)
        _merge_inherited_options(merged, option_sources, inherited)
        options = {plugin: _build_options(v) for plugin, v in merged.items()}
        sources: Mapping[str, ValueSource] = _sources(own, data_shape, inherited, option_sources)
    else:
        options = inherited.built_options
        shape = (own, data_shape)
        cached = inherited.shapes.get(shape)
        if cached is None:
            cached = _sources(own, data_shape, inherited, inherited.option_sources)
            inherited.shapes[shape] = cached
        sources = cached
    return Host(
        id=host_id,
        groups=groups,
        data=data,
        connection_options=options,
        all_groups=inherited.all_groups,
        sources=sources,
        **values,
    )


def _sources(
    own: tuple[str, ...],
    data_shape: tuple[str, ...],
    inherited: _Inherited,
    option_sources: Mapping[str, ValueSource],
) -> Mapping[str, ValueSource]:
    result: dict[str, ValueSource] = dict(inherited.field_sources)
    for key in own:
        result[key] = FROM_HOST
    if "hostname" not in result:
        result["hostname"] = FROM_HOST_ID
    result.update(inherited.data_sources)
    for key in data_shape:
        result[f"data.{key}"] = FROM_HOST
    result.update(option_sources)
    return MappingProxyType(result)
