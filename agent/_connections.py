"""Connection plugins on the agent, found by name, and the connections they opened.

Plugins come from the `genja.connections` entry-point group (the client checks names against
the same group before a run starts) and from `register_plugin`. The agent keeps one open
connection per (host, plugin) across runs: a later task on the same host reuses it after a
liveness check, and a dead one is replaced by one new login. A connection that failed to open is
never cached, and is not tried again in the same run: the failure is remembered per (run, host,
plugin) until `forget_run`, so a 3-node tree costs a host with a wrong password one failed
login, not three. New logins pass a limiter, so thousands of hosts do not all handshake at once.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from agent.connections._plugin import OpenContext
from genja._host import Host
from genja._runner_defaults import DEFAULT_LOGINS_PER_AGENT

log = logging.getLogger("genja.agent")

_ENTRY_POINT_GROUP = "genja.connections"


class UnknownPluginError(LookupError):
    pass


class ConnectionPlugins:
    """The plugins one agent knows, by name."""

    def __init__(self) -> None:
        self._plugins: dict[str, Any] = {}
        self._scanned = False

    def _scan(self) -> dict[str, Any]:
        """The plugins by name, entry points found on first use: importing importlib.metadata
        and reading every installed distribution's entry points is a good part of an agent's
        start-up, and a run whose tasks open no connection never needs them. A registered
        plugin wins over an entry point of the same name."""
        if not self._scanned:
            from importlib.metadata import entry_points

            for point in entry_points(group=_ENTRY_POINT_GROUP):
                self._plugins.setdefault(point.name, point)
            self._scanned = True
        return self._plugins

    def register_plugin(self, name: str, plugin: Any) -> None:
        self._plugins[name] = plugin

    def names(self) -> list[str]:
        return sorted(self._scan())

    def resolve(self, name: str) -> Any:
        try:
            plugin = self._scan()[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownPluginError(
                f"connection plugin {name!r} is not installed on this agent (installed: {known})"
            ) from None
        if hasattr(plugin, "load") and hasattr(plugin, "group"):  # an entry point
            try:
                loaded = plugin.load()
            except ImportError as error:
                raise UnknownPluginError(
                    f"connection plugin {name!r} cannot load on this agent: {error} "
                    f"(pip install 'genja[{name}]')"
                ) from None
            plugin = self._plugins[name] = loaded
        return plugin


class LoginLimiter:
    """A semaphore whose size can change between runs (each RunStart carries the cap)."""

    def __init__(self, limit: int = DEFAULT_LOGINS_PER_AGENT) -> None:
        self._limit = limit
        self._active = 0
        self._changed = threading.Condition()

    def set_limit(self, limit: int) -> None:
        """`limit` <= 0 means no cap."""
        with self._changed:
            self._limit = limit
            self._changed.notify_all()

    def __enter__(self) -> None:
        with self._changed:
            while 0 < self._limit <= self._active:
                self._changed.wait()
            self._active += 1

    def __exit__(self, *_: object) -> None:
        with self._changed:
            self._active -= 1
            self._changed.notify()


def _fingerprint(host: Host, settings: Mapping[str, Any]) -> str:
    """What a cached connection was opened with; a change means log in again. Hashed, so the
    cache holds no extra copy of the password."""
    options = host.connection_options
    blob = json.dumps(
        [
            host.hostname,
            host.port,
            host.username,
            host.password,
            host.platform,
            {name: repr(o) + repr(o.password) for name, o in sorted(options.items())},
            settings,
        ],
        sort_keys=True,
        default=repr,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Entry:
    connection: Any
    fingerprint: str


class ConnectionCache:
    """The agent's open connections, by (host id, plugin name). Thread-safe: `get` runs in the
    worker threads of many hosts at once; one lock per key keeps two tasks of the same host
    from both logging in."""

    def __init__(
        self, plugins: ConnectionPlugins, executor: concurrent.futures.Executor | None
    ) -> None:
        self._plugins = plugins
        self._executor = executor
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._instances: dict[str, Any] = {}
        self._failed: dict[tuple[str, str, str], BaseException] = {}
        self.limiter = LoginLimiter()
        self.logins = 0  # new connections opened, for logs and tests

    def __len__(self) -> int:
        """Connections held open (as far as the cache knows: a device may have closed one)."""
        return len(self._entries)

    def _instance(self, name: str) -> Any:
        with self._lock:
            instance = self._instances.get(name)
            if instance is None:
                instance = self._instances[name] = self._plugins.resolve(name)()
            return instance

    def get(
        self,
        host: Host,
        name: str,
        settings: Mapping[str, Any],
        *,
        run_id: str | None = None,
        before_login: Callable[[Host, str], None] | None = None,
    ) -> Any:
        """The open connection of `host` for plugin `name`; logs in when there is none, it
        died, or the host's connection details changed. Raises what the plugin raised, and
        within run `run_id` raises it again, without a new login, for later calls (until
        `discard`); or what `before_login(host, name)` raised to refuse a login (a run's login
        budget)."""
        key = (host.id, name)
        fingerprint = _fingerprint(host, settings)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            failed = self._failed.get((run_id, host.id, name)) if run_id is not None else None
            if failed is not None:
                raise failed.with_traceback(None)
            entry = self._entries.get(key)
            if entry is not None:
                if entry.fingerprint == fingerprint and _alive(entry.connection):
                    return entry.connection
                log.info(
                    "connection %s of host %r is closed or stale: logging in again", name, host.id
                )
                del self._entries[key]
                _close(entry.connection)
            if before_login is not None:
                before_login(host, name)
            plugin = self._instance(name)
            typed = getattr(plugin, "settings_type", None)
            context = OpenContext(typed(**settings) if typed else settings, self._executor)
            try:
                with self.limiter:
                    connection = plugin.open(host, context)
            except Exception as error:
                # One line: the classified errors name the host, the address and the cause.
                log.warning("%s", error if str(error) else f"host {host.id!r}: {error!r}")
                if run_id is not None:
                    with self._lock:
                        self._failed[(run_id, host.id, name)] = error
                raise
            self._entries[key] = _Entry(connection, fingerprint)
            with self._lock:
                self.logins += 1
            return connection

    def forget_run(self, run_id: str) -> None:
        """Drop what run `run_id` remembered (its failed logins): a later run tries again."""
        with self._lock:
            for key in [key for key in self._failed if key[0] == run_id]:
                del self._failed[key]

    def discard(self, host_id: str, name: str) -> None:
        """Close the cached connection of (`host_id`, `name`), if any, and forget its failed
        logins: the next `get` logs in anew (a retry after a failure on the connection)."""
        with self._lock:
            key_lock = self._key_locks.setdefault((host_id, name), threading.Lock())
            for key in [key for key in self._failed if key[1:] == (host_id, name)]:
                del self._failed[key]
        with key_lock:
            entry = self._entries.pop((host_id, name), None)
        if entry is not None:
            _close(entry.connection)

    def close_all(self, host_ids: Collection[str] | None = None) -> int:
        """Close every connection (and what plugins share between them), or only those of
        `host_ids` (plugins keep what they share); how many closed."""
        if host_ids is not None:
            wanted = set(host_ids)
            with self._lock:
                keys = [key for key in self._entries if key[0] in wanted]
                closing = [self._entries.pop(key) for key in keys]
            for entry in closing:
                _close(entry.connection)
            return len(closing)
        with self._lock:
            entries, self._entries = self._entries, {}
            instances = list(self._instances.values())
        for entry in entries.values():
            _close(entry.connection)
        for instance in instances:
            closer = getattr(instance, "close", None)
            if closer is not None:
                try:
                    closer()
                except Exception:
                    log.exception("closing a connection plugin failed")
        return len(entries)


def _alive(connection: Any) -> bool:
    check = getattr(connection, "is_alive", None)
    if check is None:
        return True
    try:
        return bool(check())
    except Exception:
        return False


def _close(connection: Any) -> None:
    closer = getattr(connection, "close", None)
    if closer is None:
        return
    try:
        closer()
    except Exception:
        log.debug("closing a connection failed", exc_info=True)
