"""The `netmiko` connection plugin: device CLIs through netmiko (`pip install 'genja[netmiko]'`).

Only the settings declaration is imported here (the client reads it when settings load); the
plugin is `agent.connections.netmiko._plugin`, loaded by agents through its entry point.
"""

from agent.connections.netmiko._settings import NetmikoExtras, NetmikoSettings

__all__ = ["NetmikoExtras", "NetmikoSettings"]
