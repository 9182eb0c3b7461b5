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
import difflib
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genja._errors import ConfigurationError
from genja._plugin_settings import build_section, parse_bool, plugin_settings_types, suggestion
from genja._runner_defaults import (
    DEFAULT_AGENT_MEMORY_LIMIT,
    DEFAULT_HEARTBEAT_TIMEOUT,
    DEFAULT_HOST_CONCURRENCY,
    DEFAULT_LOGINS_PER_AGENT,
    DEFAULT_MAX_RESULT_SIZE,
    MAX_RESULT_SIZE_LIMIT,
)
from genja._sizes import format_size, parse_size

# ---------------------------------------------------------------- checks
#
# A field declared with `_checked(default, check)` is validated by its `check` when settings
# load: the check returns the value to keep or raises ValueError saying what it expected, and
# the loader words the error with the file, the line and the key. To add a setting, declare its
# field with its check; nothing else needs to know about it.

Check = Callable[[Any], Any]

# protobuf's Duration, which carries timeouts to agents, holds at most 10,000 years.
_MAX_SECONDS = 315_576_000_000
# Login caps travel as uint32.
_MAX_UINT32 = 2**32 - 1


def _checked(default: Any, check: Check, doc: str = "") -> Any:
    return field(default=default, metadata={"check": check, "doc": doc})


def _whole_number(lowest: int, highest: int | None = None, note: str = "") -> Check:
    """A check for an int (never a bool) in [lowest, highest]; `note` explains a special value."""
    span = f">= {lowest}" if highest is None else f"from {lowest} to {highest}"
    expected = f"must be a whole number {span}{f' ({note})' if note else ''}"

    def check(value: Any) -> int:
        if (
            value.__class__ is not int
            or value < lowest
            or (highest is not None and value > highest)
        ):
            raise ValueError(f"{expected}, got {value!r}")
        return int(value)

    return check


def _duration(value: Any) -> float:
    """A check for a duration: a positive int or float (never a bool), as a float."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= _MAX_SECONDS  # also refuses NaN
    ):
        raise ValueError(
            f"must be a positive number of seconds (at most {_MAX_SECONDS}), got {value!r}"
        )
    return float(value)


def _size(lowest: int, highest: int) -> Check:
    """A check for a size in bytes (`genja._sizes`: 16777216, "16MiB", "512 KB") in
    [lowest, highest], as an int."""
    span = f"from {format_size(lowest)} to {format_size(highest)}"

    def check(value: Any) -> int:
        size = parse_size(value)
        if not lowest <= size <= highest:
            raise ValueError(f"must be a size {span}, got {value!r}")
        return size

    return check


def _text(value: Any) -> str:
    """A check for a non-empty string (an address, a path)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _path(value: Any) -> str:
    """A check for a file path."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a path, got {value!r}")
    return value


def _runner_name(value: Any) -> str:
    """A check for `runner.plugin`: a runner installed in the `genja.runners` entry points."""
    from genja._runtimes import installed_runners

    known = installed_runners()
    if not isinstance(value, str) or value not in known:
        close = difflib.get_close_matches(str(value), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"must name an installed runner ({', '.join(known) or 'none'}; runners register "
            f"in the 'genja.runners' entry-point group), got {value!r}{hint}"
        )
    return value


def _finish_section(section: Any, name: str) -> None:
    """What every section does when built (in code, or by the loader): a None given for a
    field that has a default means that default (as Genja 0.4's settings classes take None),
    a mapping given for a nested section is built into it, and the fields' checks run, so a
    section is valid however it was made. An error names the key and "settings"."""
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        default = _default_of(item)
        key_path = f"{name}.{item.name}"
        if value is None and default is not None:
            value = default
        elif dataclasses.is_dataclass(default) and not isinstance(value, type(default)):
            value = _nested(default, value, _Where(None), key_path)
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise _Where(None).error(key_path, f"{key_path} must be true or false, got {value!r}")
        check = item.metadata.get("check")
        unchanged = type(value) is type(default) and value == default  # defaults are valid
        if check is not None and value is not None and not unchanged:
            value = _apply(check, value, _Where(None), key_path)
        if value is not getattr(section, item.name):
            object.__setattr__(section, item.name, value)  # frozen: only while being built


def _default_of(item: dataclasses.Field[Any]) -> Any:
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return None if item.default is dataclasses.MISSING else item.default


@dataclass(frozen=True, slots=True)
class CoreSettings:
    raise_on_error: bool = False

    def __post_init__(self) -> None:
        _finish_section(self, "core")


@dataclass(frozen=True, slots=True)
class InventoryOptions(Mapping[str, str]):
    """The files of the file inventory (`inventory.options`). Also a read-only mapping of the
    paths that are set, so `options["hosts_file"]` and `options.hosts_file` both work (the
    latter is Genja 0.4's `OptionsConfig`). Relative paths are resolved against the settings
    file's folder."""

    hosts_file: str | None = _checked(None, _path)
    groups_file: str | None = _checked(None, _path)
    defaults_file: str | None = _checked(None, _path)

    def __post_init__(self) -> None:
        _finish_section(self, "inventory.options")

    def __getitem__(self, key: str) -> str:
        value = getattr(self, key, None) if key in _INVENTORY_OPTIONS else None
        if value is None:
            raise KeyError(key)
        return str(value)

    def __iter__(self) -> Iterator[str]:
        return (key for key in _INVENTORY_OPTIONS if getattr(self, key) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


_INVENTORY_OPTIONS = tuple(f.name for f in dataclasses.fields(InventoryOptions))


@dataclass(frozen=True, slots=True)
class InventorySettings:
    """Where hosts come from. `plugin` is `file` (also spelled `FileInventoryPlugin`, as in
    Genja 0.4, or `SimpleInventory`, as in Nornir)."""

    plugin: str = "file"
    options: InventoryOptions = field(default_factory=InventoryOptions)
    transform_function: str | None = None
    transform_function_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _finish_section(self, "inventory")


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """Tunables of the runner (`runner.options`), checked when settings load. Every field's
    `doc` says what it means; `RUNNER_OPTIONS` lists them. Timeouts are in seconds; None means
    no deadline (or, for `coordinator`, an embedded coordinator with local agents).

    Built in code (or by `dataclasses.replace`) it is checked too, so a RunnerOptions is always
    valid; `Settings.from_dict` takes `runner.options` as a mapping or as a RunnerOptions."""

    coordinator: str | None = _checked(
        None, _text, "address of a `genja-coordinator serve` to run on instead of an embedded one"
    )
    coordinator_token_file: str | None = _checked(
        None, _text, "file holding the client token of that coordinator (mode 0600)"
    )
    coordinator_tls_ca: str | None = _checked(
        None, _text, "PEM file of the CA that signed that coordinator's TLS certificate"
    )
    coordinator_tls_cert: str | None = _checked(
        None, _text, "PEM certificate of this client, for a coordinator that asks for one"
    )
    coordinator_tls_key: str | None = _checked(
        None, _text, "PEM private key of coordinator_tls_cert (mode 0600)"
    )
    host_concurrency: int = _checked(
        DEFAULT_HOST_CONCURRENCY,
        _whole_number(1),
        f"hosts one agent works on at once (default {DEFAULT_HOST_CONCURRENCY})",
    )
    task_timeout: float | None = _checked(
        None, _duration, "seconds one task may take for one host before it fails as a timeout"
    )
    run_timeout: float | None = _checked(
        None, _duration, "seconds a whole run may take; unfinished hosts then fail as timeouts"
    )
    agent_start_timeout: float = _checked(
        60.0, _duration, "seconds to wait for local agents to connect (default 60)"
    )
    max_logins_per_agent: int = _checked(
        DEFAULT_LOGINS_PER_AGENT,
        _whole_number(0, _MAX_UINT32, "0: no cap"),
        "new connections (SSH logins) one agent opens at once "
        f"(default {DEFAULT_LOGINS_PER_AGENT}, 0: no cap)",
    )
    max_logins: int = _checked(
        0,
        _whole_number(0, _MAX_UINT32, "0: no cap"),
        "new connections all of a run's agents open at once (default 0: no cap)",
    )
    max_result_size: int = _checked(
        DEFAULT_MAX_RESULT_SIZE,
        _size(1024, MAX_RESULT_SIZE_LIMIT),
        "largest result one task may return for one host, as JSON (a size like 16MiB; "
        f"default {format_size(DEFAULT_MAX_RESULT_SIZE)}, at most "
        f"{format_size(MAX_RESULT_SIZE_LIMIT)}); a larger one fails its host as validation",
    )
    agent_memory_limit: int = _checked(
        DEFAULT_AGENT_MEMORY_LIMIT,
        _size(0, 1024**5),
        "resident memory past which a local agent is replaced, its running hosts failed "
        "(a size like 2GiB; default 2GiB, 0: no limit)",
    )
    heartbeat_timeout: float = _checked(
        DEFAULT_HEARTBEAT_TIMEOUT,
        _duration,
        "seconds of silence after which an agent or a coordinator server counts as frozen "
        f"(default {DEFAULT_HEARTBEAT_TIMEOUT:g})",
    )

    def __post_init__(self) -> None:
        _finish_section(self, "runner.options")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunnerOptions:
        """Options from a mapping shaped like `runner.options`, checked as settings are; an
        error names the key and "settings"."""
        options: RunnerOptions = _build_section(cls, data, _Where(None), "runner.options")
        return options


# runner.options keys this runner understands, with what each means.
RUNNER_OPTIONS = {f.name: f.metadata["doc"] for f in dataclasses.fields(RunnerOptions)}


# Local agents are processes of ~50 MB each: a slip like 100000 would exhaust the machine's
# memory before anything could say so.
MAX_WORKER_COUNT = 256


@dataclass(frozen=True, slots=True)
class RunnerRetrySettings:
    """The retry defaults of every task (`runner.retry`); a task's `RetryConfig` overrides
    them field by field. Only failures a task marks `retryable` are retried, and only when
    `allow`: up to `max_attempts` calls in all (the first one included), `delay_ms`
    milliseconds apart. Built in code, it is checked too."""

    allow: bool = False
    max_attempts: int = _checked(
        1, _whole_number(1, _MAX_UINT32), "calls in all, the first one included (default 1)"
    )
    delay_ms: int = _checked(
        0, _whole_number(0, _MAX_UINT32), "milliseconds to wait before each retry (default 0)"
    )

    def __post_init__(self) -> None:
        _finish_section(self, "runner.retry")


DEFAULT_CONNECTION_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """How runs execute. `worker_count` is the number of local agent processes (default: the
    CPU count). `options` holds runner tunables; see `RunnerOptions`. `retry` holds the retry
    defaults of tasks; see `RunnerRetrySettings`. `max_connection_attempts` bounds the logins
    one host may attempt per connection plugin in one run (retries included), so a device
    that refuses us is not hammered until its AAA locks the account; 0 means no bound."""

    plugin: str = _checked("agents", _runner_name)
    worker_count: int | None = _checked(None, _whole_number(1, MAX_WORKER_COUNT))
    options: RunnerOptions = field(default_factory=RunnerOptions)
    max_task_depth: int = _checked(10, _whole_number(0))
    retry: RunnerRetrySettings = field(default_factory=RunnerRetrySettings)
    max_connection_attempts: int = _checked(
        DEFAULT_CONNECTION_ATTEMPTS, _whole_number(0, _MAX_UINT32, "0: no bound")
    )

    def __post_init__(self) -> None:
        _finish_section(self, "runner")


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """genja's own logging (the `genja` logger and the agents' records, forwarded to it).

    `file_size` is in bytes; `max_file_count` is how many rotated files are kept besides the
    current one. With `enabled` and no `log_file`, the file is `genja.log` beside the settings.
    """

    enabled: bool = False
    level: str = _checked("INFO", lambda value: _log_level(value, "must be"))
    log_file: str | None = None
    to_console: bool = False
    file_size: int = _checked(10 * 1024 * 1024, _whole_number(1))
    max_file_count: int = _checked(5, _whole_number(0))

    def __post_init__(self) -> None:
        _finish_section(self, "logging")


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


@dataclass(frozen=True, slots=True, init=False)
class Settings:
    """Every section of the settings. Built in code, each section may be given as its class
    (`RunnerSettings(...)`, or Genja 0.4's name `RunnerConfig(...)`), as a mapping shaped like
    the file, or as None for its defaults; `from_file` and `from_dict` read the file's shape."""

    core: CoreSettings = field(default_factory=CoreSettings)
    inventory: InventorySettings = field(default_factory=InventorySettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    # One section per installed connection plugin, by plugin name (see genja._plugin_settings).
    connections: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def __init__(
        self,
        core: Any = None,
        inventory: Any = None,
        ssh: Any = None,
        runner: Any = None,
        logging: Any = None,
        *,
        connections: Mapping[str, Any] | None = None,
        source: Path | None = None,
        **plugin_sections: Any,
    ) -> None:
        """Built in code, a connection plugin's section may be given by its name, as its
        settings class or as a mapping shaped like the file (`Settings(ssh=SSHConfig(...))`,
        `Settings(netmiko={"read_timeout": 30})`); plugins not given get their defaults. The
        positional order is Genja 0.4's: core, inventory, ssh, runner, logging."""
        types = plugin_settings_types()
        given = dict(connections or {})
        if ssh is not None:
            plugin_sections["ssh"] = ssh
        for name, section in plugin_sections.items():
            if name not in types:
                known = [*(f.name for f in dataclasses.fields(self)), *types]
                raise ConfigurationError(
                    f"settings: unknown section {name!r}{suggestion(name, known)}"
                )
            given[name] = section
        built: dict[str, Any] = {}
        for name, schema in types.items():
            section = given.get(name)
            if section is None or not isinstance(section, schema):
                section = build_section(schema, section, name, _Where(None).error, Path.cwd())
            built[name] = section
        for name, value in (
            ("core", core),
            ("inventory", inventory),
            ("runner", runner),
            ("logging", logging),
            ("connections", built),
            ("source", source),
        ):
            object.__setattr__(self, name, value)
        _finish_section(self, "settings")

    def validate(self) -> None:
        """Check what building a section could not on its own (that `ssh.config_file` exists
        and reads as an OpenSSH client config: each plugin section's `validate()`).
        `from_file` and `from_dict` do this already; as Genja 0.4's `Settings.validate()`."""
        for section in self.connections.values():
            check = getattr(section, "validate", None)
            if check is None:
                continue
            try:
                check()
            except ValueError as error:
                raise ConfigurationError(f"{self.source or 'settings'}: {error}") from None

    @property
    def ssh(self) -> Any:
        """The `ssh` plugin's section (`connections["ssh"]`)."""
        return self.connections["ssh"]

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in these settings are resolved against."""
        return self.source.parent if self.source is not None else Path.cwd()

    def resolve_path(self, value: str) -> Path:
        try:
            path = Path(value).expanduser()
        except RuntimeError as error:  # ~user with no such user, or no home folder
            place = self.source or "settings"
            raise ConfigurationError(f"{place}: cannot expand {value!r}: {error}") from None
        return path if path.is_absolute() else self.base_dir / path

    @classmethod
    def from_file(cls, path: str | Path, *, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from a YAML or JSON file; an empty file means all defaults."""
        path = Path(path)
        from genja._loader import load_document  # only files need the YAML loader

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
        settings = cls(**built, connections=connections, source=source)
        settings.validate()
        return settings


def settings_error(source: Path | None, key_path: str, message: str) -> ConfigurationError:
    """The error for `key_path` of the settings file `source`, worded as the loader words its
    own: `FILE: line N: message` (the line when it can be found)."""
    return _Where(source).error(key_path, message)


@dataclass(frozen=True, slots=True)
class _Where:
    source: Path | None

    def error(self, key_path: str, message: str) -> ConfigurationError:
        place = str(self.source) if self.source is not None else "settings"
        line = None
        if self.source is not None and key_path:
            from genja._loader import locate_line

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
    if (section, key) == ("runner", "plugin"):
        return _runner_name(value)
    if isinstance(default, bool):
        return parse_bool(value)
    if key == "worker_count":
        check = _whole_number(1, MAX_WORKER_COUNT)
        try:
            return check(int(value))
        except ValueError:
            return check(value)  # the message names the value as it was given
    if key == "level":
        return _log_level(value)
    return value


def _log_level(value: Any, expected: str = "expected") -> str:
    """A level name in any case, as logging spells it (`info` -> `INFO`)."""
    if isinstance(value, str) and value.strip().upper() in LOG_LEVELS:
        return value.strip().upper()
    raise ValueError(f"{expected} one of {', '.join(LOG_LEVELS)}, got {value!r}")


def _build_section(section_type: type, raw: Mapping[str, Any], where: _Where, name: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    _check_keys(raw, fields, where, name)
    values: dict[str, Any] = {}
    defaults = section_type()
    for key, given in raw.items():
        value = given
        default = getattr(defaults, key)
        key_path = f"{name}.{key}"
        if value is None:
            continue
        check = fields[key].metadata.get("check")
        if check is not None:
            value = _apply(check, value, where, key_path)
        elif dataclasses.is_dataclass(default):  # a nested section: runner.options, .retry
            value = _nested(default, value, where, key_path)
        elif isinstance(default, bool):
            try:
                value = parse_bool(value)
            except ValueError as error:
                raise where.error(key_path, f"{key_path}: {error}") from None
        elif isinstance(default, int | float):
            kinds = (int, float) if isinstance(default, float) else (int,)
            if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
                what = "a positive number" if isinstance(default, float) else "a whole number > 0"
                raise where.error(key_path, f"{key_path} must be {what}, got {value!r}")
            if isinstance(default, float):
                value = float(value)
        elif isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                raise where.error(
                    key_path, f"{key_path} must be a mapping, got {type(value).__name__}"
                )
            value = dict(value)
        elif not isinstance(value, str):
            raise where.error(key_path, f"{key_path} must be a string, got {value!r}")
        values[key] = value
    return section_type(**values)


def _apply(check: Check, value: Any, where: _Where, key_path: str) -> Any:
    try:
        return check(value)
    except ValueError as error:
        raise where.error(key_path, f"{key_path} {error}") from None


def _nested(default: Any, value: Any, where: _Where, key_path: str) -> Any:
    if isinstance(value, type(default)):  # built in code, e.g. a RunnerOptions
        return value
    if not isinstance(value, Mapping):
        raise where.error(key_path, f"{key_path} must be a mapping, got {type(value).__name__}")
    return _build_section(type(default), value, where, key_path)


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


def __getattr__(name: str) -> Any:
    """`SSHConfig`, Genja 0.4's name of the `ssh` section's class: the ssh plugin's settings
    class, found through the `genja.connection_settings` entry points (the domain never
    imports a plugin)."""
    if name == "SSHConfig":
        return plugin_settings_types()["ssh"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Genja 0.4's names of the settings classes, exported from `genja` and `genja.settings` so its
# scripts run unchanged: `Settings(runner=RunnerConfig(retry=RunnerRetryConfig(allow=True)))`.
CoreConfig = CoreSettings
InventoryConfig = InventorySettings
OptionsConfig = InventoryOptions
RunnerConfig = RunnerSettings
RunnerRetryConfig = RunnerRetrySettings
LoggingConfig = LoggingSettings
