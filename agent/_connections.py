"""Connection plugins on the agent, found by name.

A plugin is a class with `open(host) -> connection` (sync; the agent calls it from a worker
thread). The connection a task sees through `context.connection()` is whatever `open` returned.
Plugins come from the `genja.connections` entry-point group and from `register_plugin`.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

_ENTRY_POINT_GROUP = "genja.connections"


class UnknownPluginError(LookupError):
    pass


class ConnectionPlugins:
    """The plugins one agent knows, by name."""

    def __init__(self) -> None:
        self._plugins: dict[str, Any] = {}
        for point in entry_points(group=_ENTRY_POINT_GROUP):
            self._plugins.setdefault(point.name, point)

    def register_plugin(self, name: str, plugin: Any) -> None:
        self._plugins[name] = plugin

    def names(self) -> list[str]:
        return sorted(self._plugins)

    def resolve(self, name: str) -> Any:
        try:
            plugin = self._plugins[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownPluginError(
                f"connection plugin {name!r} is not installed on this agent (installed: {known})"
            ) from None
        if hasattr(plugin, "load") and hasattr(plugin, "group"):  # an entry point
            plugin = self._plugins[name] = plugin.load()
        return plugin
