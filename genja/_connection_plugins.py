"""Connection plugin names and settings, checked on the client before any host runs.

Plugins are found through the `genja.connections` entry-point group, the same group local agents
load them from, so a name the client accepts is a name its agents can open. Their settings
declarations come from `genja.connection_settings` (see `genja._plugin_settings`); the plugins'
code is imported only on agents: here we look at names, never at paramiko.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from importlib.metadata import entry_points
from typing import Any

from genja._errors import ConfigurationError
from genja._plan import RunPlan
from genja._plugin_settings import path_keys
from genja._settings import Settings

ENTRY_POINT_GROUP = "genja.connections"


def known_connection_plugins() -> list[str]:
    return sorted({point.name for point in entry_points(group=ENTRY_POINT_GROUP)})


def check_connection_plugins(plan: RunPlan, settings: Settings | None = None) -> None:
    """ConfigurationError naming the task and the plugin when a task asks for a connection
    plugin that is not installed, or whose library is missing (`requires` of its settings)."""
    known: list[str] | None = None
    for node in plan.nodes():
        name = node.definition.connection_plugin_name
        if not name:
            continue
        if known is None:
            known = known_connection_plugins()
        if name not in known:
            listed = ", ".join(known) or "none"
            raise ConfigurationError(
                f"task {node.name!r} asks for connection plugin {name!r}, which is not "
                f"installed (known connection plugins: {listed}; plugins register in the "
                f"{ENTRY_POINT_GROUP!r} entry-point group)"
            )
        section = settings.connections.get(name) if settings is not None else None
        for module in getattr(section, "requires", ()):
            if importlib.util.find_spec(module) is None:
                raise ConfigurationError(
                    f"task {node.name!r} uses connection plugin {name!r}, which needs the "
                    f"{module!r} package: pip install 'genja[{name}]'"
                )


def connection_settings(settings: Settings, *, paths: bool = True) -> dict[str, dict[str, Any]]:
    """The settings each plugin gets on the agents, by plugin name: plain JSON values, paths
    already absolute (agents may run in another folder). Without `paths`, the keys naming
    files are left out: they are this machine's files, and agents on other machines use their
    own (`genja-agent --settings`, see genja._agent_settings)."""
    plain = {name: _plain(section) for name, section in settings.connections.items()}
    if not paths:
        for name, section in settings.connections.items():
            for key in path_keys(type(section)):
                plain[name].pop(key, None)
    return plain


def local_paths_set(settings: Settings) -> list[str]:
    """The connection plugins' path keys these settings set (`ssh.known_hosts`, ...)."""
    return [
        f"{name}.{key}"
        for name, section in settings.connections.items()
        for key in path_keys(type(section))
        if getattr(section, key, None) is not None
    ]


def _plain(section: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(section) and not isinstance(section, type):
        return dataclasses.asdict(section)
    return dict(section)
