"""The netconf plugin in-process against a real NETCONF server on loopback (see
tests/servers/netconf_main.py)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections.abc import Iterator

import pytest

from agent.connections import (
    AuthenticationFailedError,
    CommandFailedError,
    ConnectFailedError,
    OpenContext,
)
from genja import Host
from genja._host import ConnectionOptions
from tests.servers.netconf_server import NetconfServer, start_netconf

pytest.importorskip("ncclient")
pytest.importorskip("netconf")
from agent.connections.netconf import NetconfSettings
from agent.connections.netconf._plugin import NetconfPlugin

CONFIG = (
    '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
    '<system xmlns="urn:example:system"><hostname>{name}</hostname></system></config>'
)


@pytest.fixture(scope="module")
def server() -> Iterator[NetconfServer]:
    running = start_netconf()
    yield running
    running.stop()


@pytest.fixture
def context() -> Iterator[OpenContext]:
    with concurrent.futures.ThreadPoolExecutor(2) as threads:
        yield OpenContext(NetconfSettings(connect_timeout=30), threads)


def _host(server: NetconfServer, password: str | None = None, port: int | None = None) -> Host:
    return Host(
        "nc1",
        hostname="127.0.0.1",
        port=22,  # the CLI's port: not used by the netconf plugin
        username=server.username,
        password=password or server.password,
        platform="linux",  # ncclient's default device handler
        connection_options={"netconf": ConnectionOptions(port=port or server.port)},
    )


def test_get_edit_candidate_commit(server: NetconfServer, context: OpenContext):
    connection = NetconfPlugin().open(_host(server), context)
    try:
        assert connection.is_alive()
        assert "<hostname>nc1</hostname>" in connection.get()
        connection.edit_config(CONFIG.format(name="nc1-new"), target="candidate")
        assert "nc1-new" in connection.get_config(source="candidate")
        assert "nc1-new" not in connection.get_config()
        connection.commit()
        assert "<hostname>nc1-new</hostname>" in connection.get_config()
        assert "<location>lab</location>" in connection.get_config()  # merged, not replaced
        view = connection.async_view()
        assert "nc1-new" in asyncio.run(view.get())
        with pytest.raises(CommandFailedError, match="<unlock> failed"):
            connection.unlock("candidate")  # a lock this session does not hold
        with pytest.raises(CommandFailedError, match="not valid NETCONF XML"):
            connection.edit_config("<config-not/>")
    finally:
        connection.close()
    assert not connection.is_alive()


def test_wrong_password_is_an_authentication_failure(server: NetconfServer, context: OpenContext):
    with pytest.raises(AuthenticationFailedError) as caught:
        NetconfPlugin().open(_host(server, password="not-the-password"), context)
    assert "not-the-password" not in str(caught.value)


def test_dead_port_is_a_connection_failure(server: NetconfServer, context: OpenContext):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(ConnectFailedError, match="refused"):
            NetconfPlugin().open(_host(server, port=sock.getsockname()[1]), context)
