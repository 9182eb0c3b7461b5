"""The scrapli plugin in-process against fakenos devices: sync (paramiko) and asyncio
(asyncssh) drivers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from agent.connections import (
    AuthenticationFailedError,
    CommandFailedError,
    ConnectFailedError,
    ConnectTimeoutError,
    OpenContext,
)
from genja import Host
from genja._host import ConnectionOptions
from genja.task import TaskRuntimeContext
from tests.servers.fakenos_devices import FakeDevices

pytest.importorskip("scrapli")
from agent.connections.scrapli import ScrapliSettings
from agent.connections.scrapli._plugin import ScrapliPlugin

TRANSPORTS = ["paramiko", "asyncssh"]


def device_host(devices: FakeDevices, name: str, **fields: Any) -> Host:
    extras = {"auth_secondary": devices.password}
    values = {**devices.fields(name), **fields}
    return Host(name, connection_options={"scrapli": ConnectionOptions(extras=extras)}, **values)


@pytest.fixture
def plugin() -> Iterator[ScrapliPlugin]:
    plugin = ScrapliPlugin()
    yield plugin
    plugin.close()


@pytest.fixture
def threads() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        yield pool


def _context(transport: str, threads: Any = None, **settings: Any) -> OpenContext:
    return OpenContext(ScrapliSettings(transport=transport, **settings), threads)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_show_version_config_set_and_parsing(
    plugin: ScrapliPlugin, devices: FakeDevices, threads: Any, transport: str
):
    connection = plugin.open(device_host(devices, "r-cfg"), _context(transport, threads))
    try:
        assert connection.is_async_driver is (transport == "asyncssh")
        response = connection.send_command("show version")
        assert "genja test CLI" in response.result
        configs = connection.send_configs(["interface Loopback1", "description genja"])
        assert not configs.failed
        with pytest.raises(CommandFailedError, match="rejected"):
            connection.execute_command("show no such thing", check=True)
        view = connection.async_view()

        async def both() -> tuple[Any, Any]:
            return await asyncio.gather(
                view.execute_command("show version"), view.send_command("show version")
            )

        result, again = asyncio.run(both())
        assert result == response.result == again.result
    finally:
        connection.close()


def test_textfsm_rows_through_the_task_context(
    plugin: ScrapliPlugin, devices: FakeDevices, threads: Any
):
    connection = plugin.open(device_host(devices, "r-nxos"), _context("paramiko", threads))
    try:
        output = connection.send_command("show version").result
        rows = TaskRuntimeContext(connection).parse(output, command="show version")
        assert rows
        assert rows[0]["os"]
    finally:
        connection.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_password_is_an_authentication_failure(
    plugin: ScrapliPlugin, devices: FakeDevices, transport: str
):
    host = device_host(devices, "r-eos", password="not-the-password")
    with pytest.raises(AuthenticationFailedError) as caught:
        plugin.open(host, _context(transport))
    assert "not-the-password" not in str(caught.value)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dead_port_is_a_connection_failure(plugin: ScrapliPlugin, transport: str):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        host = Host(
            "gone", hostname="127.0.0.1", port=sock.getsockname()[1], username="x",
            password="y", platform="eos",
        )  # fmt: skip
        with pytest.raises(ConnectFailedError, match="refused"):
            plugin.open(host, _context(transport))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_silent_port_is_a_timeout(plugin: ScrapliPlugin, silent_port: int, transport: str):
    host = Host(
        "mute", hostname="127.0.0.1", port=silent_port, username="x", password="y",
        platform="eos",
    )  # fmt: skip
    context = _context(transport, timeout_socket=2, timeout_transport=2)
    with pytest.raises(ConnectTimeoutError):
        plugin.open(host, context)
