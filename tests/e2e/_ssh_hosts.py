"""Hosts and settings that reach the test sshd, for end-to-end runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.servers.sshd import SSHServer


def ssh_settings(known_hosts: Path) -> dict[str, Any]:
    """The `ssh` settings section: a throwaway known_hosts file, a generous connect timeout."""
    return {"ssh": {"known_hosts": str(known_hosts), "connect_timeout": 30}}


def sshd_host(server: SSHServer, *, password: bool = True, **data: Any) -> dict[str, Any]:
    """An inventory entry for `server`'s test account: by password, or (`password=False`) by
    the server's client key only."""
    host: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": server.port,
        "username": server.username,
        "data": data,
    }
    if password:
        host["password"] = server.password
    else:
        host["connection_options"] = {"ssh": {"extras": {"key_file": str(server.key_file)}}}
    return host
