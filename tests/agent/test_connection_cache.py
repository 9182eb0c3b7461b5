"""The agent's connection cache with an in-memory plugin: reuse, liveness, failures, caps."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from agent._connections import ConnectionCache, ConnectionPlugins, LoginLimiter
from agent.connections import ConnectFailedError, OpenContext
from genja import Host


class _Conn:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.alive = True
        self.closed = False

    def is_alive(self) -> bool:
        return self.alive

    def close(self) -> None:
        self.closed = True


class _Plugin:
    fail_next = 0
    opened: list[_Conn]

    def __init__(self) -> None:
        self.opened = []
        self.closed = False

    def open(self, host: Host, context: OpenContext) -> _Conn:
        if _Plugin.fail_next:
            _Plugin.fail_next -= 1
            raise ConnectFailedError(f"host {host.id!r}: refused")
        connection = _Conn(host)
        self.opened.append(connection)
        return connection

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def cache() -> ConnectionCache:
    plugins = ConnectionPlugins()
    plugins.register_plugin("fake", _Plugin)
    _Plugin.fail_next = 0
    return ConnectionCache(plugins, None)


def test_reuses_a_live_connection(cache: ConnectionCache):
    host = Host("r1")
    first = cache.get(host, "fake", {})
    assert cache.get(host, "fake", {}) is first
    assert cache.get(Host("r2"), "fake", {}) is not first
    assert cache.logins == 2


def test_replaces_a_dead_connection_once(cache: ConnectionCache):
    host = Host("r1")
    first = cache.get(host, "fake", {})
    first.alive = False
    second = cache.get(host, "fake", {})
    assert second is not first
    assert first.closed


def test_changed_credentials_log_in_again(cache: ConnectionCache):
    first = cache.get(Host("r1", password="old"), "fake", {})
    second = cache.get(Host("r1", password="new"), "fake", {})
    assert second is not first
    assert first.closed


def test_a_failed_open_is_never_cached(cache: ConnectionCache):
    _Plugin.fail_next = 1
    with pytest.raises(ConnectFailedError):
        cache.get(Host("r1"), "fake", {})
    assert cache.get(Host("r1"), "fake", {}) is not None
    assert cache.logins == 1


def test_a_failed_login_is_remembered_for_its_run_until_discarded(cache: ConnectionCache):
    """Later nodes of the run fail at once with the same error; another run, or a retry's
    reconnect (`discard`), logs in again."""
    host = Host("r1")
    _Plugin.fail_next = 1
    with pytest.raises(ConnectFailedError) as first:
        cache.get(host, "fake", {}, run_id="run-1")
    _Plugin.fail_next = 5  # a login now would fail again and use one up
    with pytest.raises(ConnectFailedError) as again:
        cache.get(host, "fake", {}, run_id="run-1")
    assert str(again.value) == str(first.value)
    assert _Plugin.fail_next == 5  # no login attempted
    _Plugin.fail_next = 0
    assert cache.get(host, "fake", {}, run_id="run-2") is not None
    cache.discard("r1", "fake")
    assert cache.get(host, "fake", {}, run_id="run-1") is not None
    cache.forget_run("run-1")


def test_close_all_closes_connections_and_plugins(cache: ConnectionCache):
    connections = [cache.get(Host(f"r{i}"), "fake", {}) for i in range(3)]
    assert cache.close_all() == 3
    assert all(c.closed for c in connections)
    assert cache.get(Host("r0"), "fake", {}) is not connections[0]


def test_login_limiter_caps_logins_in_progress():
    limiter = LoginLimiter(3)
    inside = 0
    peak = 0
    lock = threading.Lock()
    release = threading.Event()

    def login() -> None:
        nonlocal inside, peak
        with limiter:
            with lock:
                inside += 1
                peak = max(peak, inside)
            release.wait(10)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=login) for _ in range(10)]
    for thread in threads:
        thread.start()
    while True:
        with lock:
            if inside == 3:
                break
        release.wait(0.01)
    release.set()
    for thread in threads:
        thread.join(10)
    assert peak == 3


def test_limit_zero_means_no_cap():
    limiter = LoginLimiter(1)
    limiter.set_limit(0)
    entered: list[Any] = []
    with limiter, limiter:
        entered.append(1)
    assert entered == [1]
