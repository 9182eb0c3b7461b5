"""The `netconf` connection plugin: NETCONF over SSH through ncclient
(`pip install 'genja[netconf]'`).

Only the settings declaration is imported here (the client reads it when settings load); the
plugin is `agent.connections.netconf._plugin`, loaded by agents through its entry point.
"""

from agent.connections.netconf._settings import NetconfExtras, NetconfSettings

__all__ = ["NetconfExtras", "NetconfSettings"]
