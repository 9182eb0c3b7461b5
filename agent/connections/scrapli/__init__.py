"""The `scrapli` connection plugin: device CLIs through scrapli (`pip install 'genja[scrapli]'`).

Only the settings declaration is imported here (the client reads it when settings load); the
plugin is `agent.connections.scrapli._plugin`, loaded by agents through its entry point.
"""

from agent.connections.scrapli._settings import ScrapliExtras, ScrapliSettings

__all__ = ["ScrapliExtras", "ScrapliSettings"]
