"""Settings: the sections of a genja settings file (YAML or JSON), with defaults.

Every section and key is optional. Unknown keys are errors that name the key and the file, with
a suggestion for near misses. Relative paths are resolved against the settings file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genja._errors import ConfigurationError


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
class SSHSettings:
    """Defaults of the `ssh` connection plugin; hosts override them in
    `connection_options.ssh.extras`. Timeouts are in seconds. `host_key_policy` is
    `accept-new` (learn unknown hosts into `known_hosts`, refuse changed keys), `strict`
    (only hosts already in `known_hosts`) or `accept-any` (no checking: labs only).
    `known_hosts` defaults to ~/.ssh/known_hosts."""

    config_file: str | None = None
    connect_timeout: float = 10.0
    auth_timeout: float = 30.0
    command_timeout: float = 60.0
    keepalive_interval: int = 30
    host_key_policy: str = "accept-new"
    known_hosts: str | None = None


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


@dataclass(frozen=True, slots=True)
class Settings:
    core: CoreSettings = field(default_factory=CoreSettings)
    inventory: InventorySettings = field(default_factory=InventorySettings)
    ssh: SSHSettings = field(default_factory=SSHSettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    source: Path | None = None

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in these settings are resolved against."""
        return self.source.parent if self.source is not None else Path.cwd()

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @classmethod
    def from_file(cls, path: str | Path) -> Settings:
        path = Path(path)
        data = load_document(path)
        if data is None:
            data = {}
        return cls.from_dict(data, source=path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: Path | None = None) -> Settings:
        where = str(source) if source is not None else "settings"
        _check_mapping(data, where, "")
        sections = {
            "core": CoreSettings,
            "inventory": InventorySettings,
            "ssh": SSHSettings,
            "runner": RunnerSettings,
            "logging": LoggingSettings,
        }
        _check_keys(data, sections, where, "")
        built: dict[str, Any] = {}
        for name, section_type in sections.items():
            raw = data.get(name)
            if raw is None:
                continue
            _check_mapping(raw, where, name)
            built[name] = _build_section(section_type, raw, where, name)
        return cls(**built, source=source)


def load_document(path: Path) -> Any:
    """Parse a YAML or JSON file; ConfigurationError naming the file (and line) otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: file not found") from None
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot read: {error.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text) if text.strip() else None
        except json.JSONDecodeError as error:
            raise ConfigurationError(
                f"{path}: line {error.lineno}: invalid JSON: {error.msg}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigurationError(f"{path}:{line} invalid YAML: {problem}") from None


def _build_section(section_type: type, raw: Mapping[str, Any], where: str, name: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    _check_keys(raw, fields, where, name)
    values: dict[str, Any] = {}
    defaults = section_type()
    for key, value in raw.items():
        expected = type(getattr(defaults, key))
        key_path = f"{name}.{key}"
        if value is None:
            continue
        if expected is bool and not isinstance(value, bool):
            raise ConfigurationError(f"{where}: {key_path} must be true or false, got {value!r}")
        if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigurationError(f"{where}: {key_path} must be a whole number, got {value!r}")
        if expected is str and not isinstance(value, str):
            raise ConfigurationError(f"{where}: {key_path} must be a string, got {value!r}")
        if isinstance(getattr(defaults, key), Mapping):
            _check_mapping(value, where, key_path)
            values[key] = dict(value)
        else:
            values[key] = value
    if name == "runner":
        count = values.get("worker_count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ConfigurationError(f"{where}: runner.worker_count must be >= 1, got {count!r}")
        _check_keys(values.get("options", {}), RUNNER_OPTIONS, where, "runner.options")
    return section_type(**values)


def _check_mapping(value: Any, where: str, key_path: str) -> None:
    if not isinstance(value, Mapping):
        what = key_path or "the top level"
        raise ConfigurationError(f"{where}: {what} must be a mapping, got {type(value).__name__}")


def _check_keys(data: Mapping[str, Any], known: Mapping[str, Any], where: str, prefix: str) -> None:
    for key in data:
        if key in known:
            continue
        full = f"{prefix}.{key}" if prefix else str(key)
        close = difflib.get_close_matches(str(key), list(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
        raise ConfigurationError(f"{where}: unknown key {full!r}{hint}")
