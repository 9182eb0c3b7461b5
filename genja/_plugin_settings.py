"""The settings sections of connection plugins: declared by each plugin, checked at load.

A connection plugin says what it reads from the settings file in a frozen dataclass (its section,
named after the plugin) and what a host may put in `connection_options.<plugin>.extras` in a
second one (the section's `Extras` class attribute). Both are registered, apart from the plugin's
code, in the `genja.connection_settings` entry-point group::

    [project.entry-points."genja.connection_settings"]
    ssh = "agent.connections.ssh:SSHSettings"

The module an entry point names must import nothing heavy: the client loads it whenever
settings load, and `genja` never imports the plugins themselves (paramiko, netmiko, ...).

Fields are converted and checked from their annotations, so the dataclass is the one place that
holds a key's type and default: `bool`, `int` and `float` (positive unless the field's metadata
says `{"min": 0}`), `str`, `Literal[...]` choices, `X | None`, and `Mapping` (passed through).
A `str` field with `{"path": True}` in its metadata is resolved against the settings file's
folder; one with `{"secret": True}` is never echoed in an error. A section may also define
`validate(self)`, raising ValueError for checks that span keys or read files.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Union

from genja._errors import ConfigurationError

SETTINGS_GROUP = "genja.connection_settings"

_TRUE = frozenset(("true", "1", "yes", "on"))
_FALSE = frozenset(("false", "0", "no", "off"))


def plugin_settings_types() -> dict[str, type]:
    """Every installed plugin's settings class, by plugin name."""
    # Imported here: an agent imports this module for plugins' host extras, and needs no
    # entry points (nor the cost of importlib.metadata at its start) unless it reads settings.
    from importlib.metadata import entry_points

    found: dict[str, type] = {}
    for point in entry_points(group=SETTINGS_GROUP):
        if point.name in found:
            continue
        try:
            loaded = point.load()
        except Exception as error:
            raise ConfigurationError(
                f"connection plugin {point.name!r}: its settings class {point.value!r} cannot "
                f"be loaded: {type(error).__name__}: {error}"
            ) from None
        if not (isinstance(loaded, type) and dataclasses.is_dataclass(loaded)):
            raise ConfigurationError(
                f"connection plugin {point.name!r}: {point.value!r} is not a dataclass"
            )
        found[point.name] = loaded
    return found


def path_keys(section_type: type) -> tuple[str, ...]:
    """The keys of a plugin section that name files (`{"path": True}` in their metadata):
    paths on the machine that reads them."""
    return tuple(f.name for f in dataclasses.fields(section_type) if f.metadata.get("path"))


def parse_bool(value: Any) -> bool:
    """true/false, 1/0, yes/no, on/off (any case), or a real bool; ValueError otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ValueError(f"expected true/false, 1/0, yes/no or on/off, got {value!r}")


def suggestion(key: str, known: list[str]) -> str:
    """`; did you mean 'x'?`, or the known keys when none is close."""
    close = difflib.get_close_matches(key, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"


Error = Callable[[str, str], Exception]  # (key path, message) -> the error to raise


def build_section(
    section_type: type,
    raw: Any,
    name: str,
    error: Error,
    base_dir: Path | None = None,
) -> Any:
    """The section `name` of a settings file as an instance of `section_type`.

    `error(key_path, message)` makes the exception for a bad key (the settings loader adds the
    file and line); `base_dir` resolves relative paths (None: left as written)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return _raise(error(name, f"{name} must be a mapping, got {type(raw).__name__}"))
    values = _convert_all(section_type, raw, name, error, base_dir)
    instance = section_type(**values)
    check = getattr(instance, "validate", None)
    if check is not None:
        try:
            check()
        except ValueError as problem:
            raise error(name, str(problem)) from None
    return instance


def build_extras(extras_type: type, raw: Mapping[str, Any], where: str) -> Any:
    """A host's `extras` for a plugin as an instance of `extras_type`; ValueError naming the
    host's key, with a suggestion for a near miss."""

    def error(key_path: str, message: str) -> Exception:
        return ValueError(message)

    return extras_type(**_convert_all(extras_type, raw, where, error, None))


def _raise(error: Exception) -> Any:
    raise error


def _convert_all(
    section_type: type, raw: Mapping[str, Any], prefix: str, error: Error, base_dir: Path | None
) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(section_type) if f.init}
    hints = typing.get_type_hints(section_type)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        key_path = f"{prefix}.{key}"
        if key not in fields:
            raise error(key_path, f"unknown key {key_path!r}{suggestion(str(key), list(fields))}")
        if value is None:
            continue
        meta = fields[key].metadata
        try:
            converted = _convert(hints[key], value, meta)
        except ValueError as problem:
            raise error(key_path, f"{key_path} {problem}") from None
        if meta.get("path") and isinstance(converted, str) and base_dir is not None:
            try:
                path = Path(converted).expanduser()
            except RuntimeError as problem:  # ~user with no such user, or no home folder
                raise error(
                    key_path, f"{key_path}: cannot expand {converted!r}: {problem}"
                ) from None
            converted = str(path if path.is_absolute() else base_dir / path)
        values[key] = converted
    return values


def _convert(hint: Any, value: Any, meta: Mapping[str, Any]) -> Any:
    shown = "(hidden)" if meta.get("secret") else repr(value)
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(options) == 1:
            return _convert(options[0], value, meta)
        for option in options:
            try:
                return _convert(option, value, meta)
            except ValueError:
                continue
        raise ValueError(f"has the wrong type, got {shown}")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(str, choices))}, got {shown}")
        return value
    if hint is bool:
        try:
            return parse_bool(value)
        except ValueError:
            raise ValueError(f"must be true or false, got {shown}") from None
    if hint in (int, float):
        lowest = meta.get("min")
        kinds = (int, float) if hint is float else (int,)
        bad = isinstance(value, bool) or not isinstance(value, kinds)
        if not bad and (value < lowest if lowest is not None else value <= 0):
            bad = True
        if bad:
            what = "number" if hint is float else "whole number"
            if lowest is not None:
                raise ValueError(f"must be a {what} >= {lowest}, got {shown}")
            raise ValueError(f"must be a positive {what}, got {shown}")
        return float(value) if hint is float else value
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {shown}")
        return value
    if origin in (dict, Mapping, typing.get_origin(Mapping[str, Any])):
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a mapping, got {type(value).__name__}")
        return dict(value)
    if origin in (list, tuple):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError(f"must be a list, got {shown}")
        (item,) = typing.get_args(hint)[:1]
        return tuple(_convert(item, v, meta) for v in value)
    return value
