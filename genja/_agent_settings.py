"""An agent's own settings file (`genja-agent --settings FILE`): what belongs to the machine the
agent runs on (a jump host), not to the client that sends it runs.

The file has the shape of a client's settings file, limited to these keys:

- each connection plugin's file paths (`ssh.config_file`, `ssh.known_hosts`, `netmiko.known_hosts`,
  `scrapli.ssh_config_file`, ...), resolved against the file's own folder on the agent's machine;
- `runner.options.host_concurrency`: hosts the agent works on at once;
- `runner.options.max_logins_per_agent`: a cap on the logins it has in progress;
- `logging.level`: the level it logs at.

Precedence. The agent's file wins for what is local to its machine: its paths are the only ones
a run uses there (a client sends none to a coordinator server: the client's files are not on the
agent's machine), and its login cap bounds every run (a run's own cap may be lower, never higher).
The client's settings give the rest of each run: timeouts, host key policy, retries, its login
caps. Anything else in the file is refused at start, naming the file and the line, as the client's
settings loader does: a client's key here is a mistake worth hearing about (`ssh.connect_timeout`
would do nothing on the agent). Command-line options (`--host-concurrency`, `--log-level`) win
over the file.

Pure logic and file reading; no gRPC, no plugin code (only their settings declarations).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_RUNNER_KEYS = ("host_concurrency", "max_logins_per_agent")


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """What an agent's settings file set; None (or no entry) for what it left out."""

    source: Path | None = None
    # Plugin name -> path key -> absolute path on the agent's machine.
    connection_paths: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    host_concurrency: int | None = None
    max_logins: int | None = None  # 0: no cap of its own
    log_level: str | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> AgentSettings:
        """The agent settings in `path`; ConfigurationError naming the file, the key and (YAML)
        the line when a key is wrong or does not belong to an agent."""
        # Imported here, not at the top: an agent started without --settings (every local
        # agent) never parses a file, and the loader (YAML) and the settings model are a good
        # part of its start-up time.
        from genja._loader import load_document
        from genja._settings import Settings

        source = Path(path)
        data = load_document(source)
        if data is None:
            return cls(source=source)
        # The client's loader first: the same types, checks, suggestions for misspelt keys, path
        # resolution against the file's folder, and `validate()` (an ssh config that parses).
        settings = Settings.from_dict(data, source=source, environ={})
        _check_agent_keys(data, source)
        runner = (data.get("runner") or {}).get("options") or {}
        options = settings.runner.options
        paths = {
            name: {
                key: getattr(settings.connections[name], key)
                for key, value in (data.get(name) or {}).items()
                if value is not None
            }
            for name in settings.connections
            if data.get(name)
        }
        return cls(
            source=source,
            connection_paths={name: keys for name, keys in paths.items() if keys},
            host_concurrency=options.host_concurrency if "host_concurrency" in runner else None,
            max_logins=options.max_logins_per_agent if "max_logins_per_agent" in runner else None,
            log_level=settings.logging.level if "level" in (data.get("logging") or {}) else None,
        )

    def connection_settings(self, sent: Mapping[str, Any]) -> dict[str, Any]:
        """A run's plugin settings (`sent` by the client, by plugin name) with this agent's
        paths over them."""
        merged = dict(sent)
        for name, paths in self.connection_paths.items():
            merged[name] = {**(merged.get(name) or {}), **paths}
        return merged

    def login_limit(self, run_limit: int) -> int:
        """The cap on logins in progress for a run whose own cap is `run_limit`: the lower of
        the two; 0 means no cap."""
        caps = [cap for cap in (run_limit, self.max_logins or 0) if cap > 0]
        return min(caps) if caps else 0


def agent_keys() -> list[str]:
    """Every key an agent's settings file may hold, dotted."""
    from genja._plugin_settings import path_keys, plugin_settings_types  # see from_file

    keys = [f"runner.options.{key}" for key in _RUNNER_KEYS]
    keys.append("logging.level")
    for name, section_type in sorted(plugin_settings_types().items()):
        keys.extend(f"{name}.{key}" for key in path_keys(section_type))
    return keys


def _check_agent_keys(data: Mapping[str, Any], source: Path) -> None:
    """Refuse keys that are valid client settings but no agent's."""
    from genja._settings import settings_error  # see from_file

    allowed = set(agent_keys())
    prefixes = {key.rsplit(".", 1)[0] for key in allowed} | {"runner"}
    for key_path, value in _leaves(data):
        if key_path in allowed or value is None:
            continue
        if isinstance(value, Mapping) and key_path in prefixes:
            continue
        raise settings_error(
            source,
            key_path,
            f"{key_path} is not an agent setting: runs take it from the client's settings "
            "(an agent's settings file holds what belongs to its machine: "
            f"{', '.join(agent_keys())})",
        )


def _leaves(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every entry, nested sections included before their entries."""
    found: list[tuple[str, Any]] = []
    for key, value in data.items():
        key_path = f"{prefix}{key}"
        found.append((key_path, value))
        if isinstance(value, Mapping):
            found.extend(_leaves(value, f"{key_path}."))
    return found
