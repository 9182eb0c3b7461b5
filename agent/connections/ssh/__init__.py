"""The `ssh` connection plugin (paramiko): commands on exec channels, SFTP, for servers.

Only the settings declaration is imported here (the client reads it when settings load, and
must not import paramiko for that); the plugin itself is `agent.connections.ssh._plugin`,
loaded by agents through the `genja.connections` entry point.
"""

from agent.connections.ssh._settings import SSHExtras, SSHSettings

__all__ = ["SSHExtras", "SSHSettings"]
