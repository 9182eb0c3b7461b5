"""Settings: the sections of a genja settings file (YAML or JSON), with defaults.

Every section and key is optional. Where a value comes from, first match wins:

1. the settings file (or the mapping given to `Settings.from_dict`);
2. an environment variable, only for the keys in `ENV_VARIABLES` and only when the file does
   not set them;
3. the default.

An invalid value in the file is a `ConfigurationError` naming the file, the key and (YAML) the
line; an invalid environment value is a `SettingsWarning` and the default is used, so a stray
variable in a shell cannot stop every run. Unknown keys are errors with a suggestion for near
misses. Relative paths are resolved against the settings file's folder.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genja._errors import ConfigurationError
from genja._loader import load_document, locate_line
from genja._plugin_settings import build_section, parse_bool, plugin_settings_types, suggestion


@dataclass(frozen=True, slots=True)
class CoreSettings:
    raise_on_error: bool = False


@dataclass(frozen=True, slots=True)
class InventorySettings:
    plugin: str = "file"
    options: Mapping[str, Any] = field(default_factory=dict)
    transform_function: str | None = None
    transform_function_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """How runs execute. `worker_count` is the number of local agent processes (default: the
    CPU count). `options` holds runner tunables; see `RUNNER_OPTIONS`."""

    plugin: str = "agents"
    worker_count: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    max_task_depth: int = 10


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """genja's own logging (the `genja` logger and the agents' records, forwarded to it).

    `file_size` is in bytes; `max_file_count` is how many rotated files are kept besides the
    current one. With `enabled` and no `log_file`, the file is `genja.log` beside the settings.
    """

    enabled: bool = False
    level: str = "INFO"
    log_file: str | None = None
    to_console: bool = False
    file_size: int = 10 * 1024 * 1024
    max_file_count: int = 5


# runner.options keys this runner understands, with what each means.
RUNNER_OPTIONS = {
    "coordinator": "address of a `genja-coordinator serve` to run on instead of an embedded one",
    "coordinator_token_file": "file holding the client token of that coordinator",
    "coordinator_tls_ca": "PEM file to verify that coordinator's TLS certificate",
    "host_concurrency": "hosts one agent works on at once (default 100)",
    "task_timeout": "seconds one task may take for one host before it fails as a timeout",
    "run_timeout": "seconds a whole run may take; unfinished hosts then fail as timeouts",
    "agent_start_timeout": "seconds to wait for local agents to connect (default 60)",
    "max_logins_per_agent": "new connections (SSH logins) one agent opens at once (default 20)",
    "max_logins": "new connections all of a run's agents open at once (default: no cap)",
}


class SettingsWarning(UserWarning):
    """An environment variable genja could not use; the default was used instead."""


# Environment variables that fill settings the file leaves unset.
ENV_VARIABLES = {
    "GENJA_CORE_RAISE_ON_ERROR": ("core", "raise_on_error"),
    "GENJA_INVENTORY_PLUGIN": ("inventory", "plugin"),
    "GENJA_RUNNER_PLUGIN": ("runner", "plugin"),
    "GENJA_RUNNER_WORKER_COUNT": ("runner", "worker_count"),
    "GENJA_LOGGING_LEVEL": ("logging", "level"),
    "GENJA_LOGGING_LOG_FILE": ("logging", "log_file"),
    "GENJA_LOGGING_TO_CONSOLE": ("logging", "to_console"),
}

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
_INVENTORY_OPTIONS = ("hosts_file", "groups_file", "defaults_file")


@dataclass(frozen=True, slots=True)
class Settings:
    core: CoreSettings = field(default_factory=CoreSettings)
    inventory: InventorySettings = field(default_factory=InventorySettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    # One section per installed connection plugin, by plugin name (see genja._plugin_settings).
    connections: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def ssh(self) -> Any:
        """The `ssh` plugin's section (`connections["ssh"]`)."""
        return self.connections["ssh"]

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in these settings are resolved against."""
        return self.source.parent if self.source is not None else Path.cwd()

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @classmethod
    def from_file(cls, path: str | Path, *, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from a YAML or JSON file; an empty file means all defaults."""
        path = Path(path)
        data = load_document(path)
        if data is None:
            data = {}
        return cls.from_dict(data, source=path, environ=environ)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        source: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Settings from a mapping shaped like the file. `environ` (default: the process
        environment) fills the keys the mapping leaves unset; see `ENV_VARIABLES`."""
        where = _Where(source)
        if not isinstance(data, Mapping):
            raise where.error("", f"the top level must be a mapping, got {type(data).__name__}")
        sections = {
            "core": CoreSettings,
            "inventory": InventorySettings,
            "runner": RunnerSettings,
            "logging": LoggingSettings,
        }
        plugins = {
            name: schema for name, schema in plugin_settings_types().items() if name not in sections
        }
        _check_keys(data, {**sections, **plugins}, where, "")
        raw: dict[str, dict[str, Any]] = {}
        for name in sections:
            section = data.get(name)
            if section is None:
                raw[name] = {}
                continue
            if not isinstance(section, Mapping):
                raise where.error(name, f"{name} must be a mapping, got {type(section).__name__}")
            raw[name] = dict(section)
        _fill_from_environment(raw, os.environ if environ is None else environ, where)
        built = {
            name: _build_section(section_type, raw[name], where, name)
            for name, section_type in sections.items()
        }
        base_dir = source.parent if source is not None else Path.cwd()
        connections = {
            name: build_section(schema, data.get(name), name, where.error, base_dir)
            for name, schema in plugins.items()
        }
        return cls(**built, connections=connections, source=source)


@dataclass(frozen=True, slots=True)
class _Where:
    source: Path | None

    def error(self, key_path: str, message: str) -> ConfigurationError:
        place = str(self.source) if self.source is not None else "settings"
        line = None
        if self.source is not None and key_path:
            line = locate_line(self.source, key_path.split("."))
        at = f" line {line}:" if line is not None else ""
        return ConfigurationError(f"{place}:{at} {message}")


def _fill_from_environment(
    raw: dict[str, dict[str, Any]], environ: Mapping[str, str], where: _Where
) -> None:
    for variable, (section, key) in ENV_VARIABLES.items():
        value = environ.get(variable)
        if value is None or value == "" or raw[section].get(key) is not None:
            continue
        try:
            raw[section][key] = _convert_env(section, key, value)
        except ValueError as error:
            warnings.warn(
                f"ignoring {variable}={value!r}: {error}; using the default",
                SettingsWarning,
                stacklevel=4,
            )


def _convert_env(section: str, key: str, value: str) -> Any:
    default = getattr(_SECTION_DEFAULTS[section], key)
    if isinstance(default, bool):
        return parse_bool(value)
    if key == "worker_count":
        try:
            count = int(value)
        except ValueError:
            raise ValueError(f"expected a whole number >= 1, got {value!r}") from None
        if count < 1:
            raise ValueError(f"expected a whole number >= 1, got {value!r}")
        return count
    if key == "level":
        return _log_level(value)
    return value


def _log_level(value: Any) -> str:
    if isinstance(value, str) and value.strip().upper() in LOG_LEVELS:
        return value.strip().upper()
    raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}")


def _build_section(section_type: type, raw: Mapping[str, Any], where: _Where, name: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    _check_keys(raw, fields, where, name)
    values: dict[str, Any] = {}
    defaults = _SECTION_DEFAULTS[name]
    for key, given in raw.items():
        value = given
        default = getattr(defaults, key)
        key_path = f"{name}.{key}"
        if value is None:
            continue
        if isinstance(default, bool):
            try:
                value = parse_bool(value)
            except ValueError as error:
                raise where.error(key_path, f"{key_path}: {error}") from None
        elif key in ("worker_count", "max_task_depth", "file_size", "max_file_count"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise where.error(key_path, f"{key_path} must be a whole number, got {value!r}")
            lowest = 0 if key in ("max_task_depth", "max_file_count") else 1
            if value < lowest:
                raise where.error(key_path, f"{key_path} must be >= {lowest}, got {value!r}")
        elif isinstance(default, int | float):
            kinds = (int, float) if isinstance(default, float) else (int,)
            if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
                what = "a positive number" if isinstance(default, float) else "a whole number > 0"
                raise where.error(key_path, f"{key_path} must be {what}, got {value!r}")
            if isinstance(default, float):
                value = float(value)
        elif key == "level":
            try:
                value = _log_level(value)
            except ValueError as error:
                raise where.error(key_path, f"{key_path}: {error}") from None
        elif isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                raise where.error(
                    key_path, f"{key_path} must be a mapping, got {type(value).__name__}"
                )
            value = dict(value)
        elif not isinstance(value, str):
            raise where.error(key_path, f"{key_path} must be a string, got {value!r}")
        values[key] = value
    if name == "runner":
        _check_keys(values.get("options", {}), RUNNER_OPTIONS, where, "runner.options")
    if name == "inventory":
        options = values.get("options", {})
        _check_keys(options, dict.fromkeys(_INVENTORY_OPTIONS), where, "inventory.options")
        for key, value in options.items():
            if value is not None and not isinstance(value, str):
                key_path = f"inventory.options.{key}"
                raise where.error(key_path, f"{key_path} must be a path, got {value!r}")
    return section_type(**values)


_SECTION_DEFAULTS: dict[str, Any] = {
    "core": CoreSettings(),
    "inventory": InventorySettings(),
    "runner": RunnerSettings(),
    "logging": LoggingSettings(),
}


def _check_keys(
    data: Mapping[str, Any], known: Mapping[str, Any], where: _Where, prefix: str
) -> None:
    for key in data:
        if key in known:
            continue
        full = f"{prefix}.{key}" if prefix else str(key)
        raise where.error(full, f"unknown key {full!r}{suggestion(str(key), list(known))}")
