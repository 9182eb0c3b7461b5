"""Connection plugin names and settings, checked on the client before any host runs.

Plugins are found through the `genja.connections` entry-point group, the same group local agents
load them from, so a name the client accepts is a name its agents can open. The plugins' code is
imported only on agents: here we look at names, never at paramiko.
"""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points
from typing import Any

from genja._errors import ConfigurationError
from genja._plan import RunPlan
from genja._settings import Settings

ENTRY_POINT_GROUP = "genja.connections"
SSH_HOST_KEY_POLICIES = ("accept-new", "strict", "accept-any")


def known_connection_plugins() -> list[str]:
    return sorted({point.name for point in entry_points(group=ENTRY_POINT_GROUP)})


def check_connection_plugins(plan: RunPlan) -> None:
    """ConfigurationError naming the task and the plugin when a task asks for a connection
    plugin that is not installed."""
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


def connection_settings(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings each plugin gets on the agents, by plugin name, with paths made absolute
    (agents may run in another folder)."""
    ssh = dataclasses.asdict(settings.ssh)
    where = str(settings.source) if settings.source is not None else "settings"
    for key in ("config_file", "known_hosts"):
        if ssh.get(key):
            ssh[key] = str(settings.resolve_path(ssh[key]))
    if ssh.get("host_key_policy") not in SSH_HOST_KEY_POLICIES:
        raise ConfigurationError(
            f"{where}: ssh.host_key_policy must be one of {', '.join(SSH_HOST_KEY_POLICIES)}, "
            f"got {ssh.get('host_key_policy')!r}"
        )
    for key in ("connect_timeout", "auth_timeout", "command_timeout"):
        value = ssh.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigurationError(
                f"{where}: ssh.{key} must be a positive number of seconds, got {value!r}"
            )
    return {"ssh": ssh}
