"""Host key checking shared by every login of one agent.

paramiko's own `load_host_keys` + `AutoAddPolicy` rewrites the whole file from each client; with
hundreds of logins at once in threads they would race. Here one store per known_hosts file is
read once, and `accept-new` appends a learned key under a lock.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import paramiko

from agent.connections._errors import AuthenticationFailedError


class KnownHosts:
    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._keys = paramiko.HostKeys()
        if self._path.exists():
            self._keys.load(str(self._path))

    def prime(self, client: Any, name: str) -> None:
        """Copy what the store knows about `name` into the client, which then refuses a
        different key by itself (BadHostKeyException)."""
        with self._lock:
            entry = self._keys.lookup(name)
            known = dict(entry) if entry is not None else {}
        host_keys = client.get_host_keys()
        for key_type, key in known.items():
            host_keys.add(name, key_type, key)

    def learn(self, name: str, key: Any) -> None:
        with self._lock:
            if self._keys.lookup(name) is not None:
                return
            self._keys.add(name, key.get_name(), key)
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("a", encoding="ascii") as handle:
                handle.write(f"{name} {key.get_name()} {key.get_base64()}\n")


class AcceptNewPolicy(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """OpenSSH's StrictHostKeyChecking=accept-new: learn unknown hosts, refuse changed keys."""

    def __init__(self, store: KnownHosts) -> None:
        self._store = store

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        self._store.learn(hostname, key)


class StrictPolicy(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    def __init__(self, path: str, host_id: str) -> None:
        self._path = path
        self._host_id = host_id

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        raise AuthenticationFailedError(
            f"host {self._host_id!r}: the host key of {hostname} is not in {self._path} "
            "(ssh.host_key_policy is strict)",
            host_id=self._host_id,
        )
