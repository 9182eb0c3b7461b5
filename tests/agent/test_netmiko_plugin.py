"""The netmiko plugin in-process against fakenos devices (real SSH servers on loopback)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.connections import (
    AuthenticationFailedError,
    CommandFailedError,
    CommandResult,
    ConnectFailedError,
    ConnectionConfigError,
    ConnectTimeoutError,
    OpenContext,
)
from genja import Host
from genja._host import ConnectionOptions
from genja.task import ParseError, TaskFailureKind
from tests.servers.fakenos_devices import FakeDevices

pytest.importorskip("netmiko")
from agent.connections.netmiko import NetmikoSettings
from agent.connections.netmiko._plugin import NetmikoPlugin


def device_host(devices: FakeDevices, name: str, **fields: Any) -> Host:
    values: dict[str, Any] = {
        **devices.fields(name),
        "connection_options": {
            "netmiko": ConnectionOptions(extras={"secret": devices.password}),
        },
    }
    values.update(fields)
    return Host(name, **values)


@pytest.fixture
def context() -> Iterator[OpenContext]:
    with concurrent.futures.ThreadPoolExecutor(2) as threads:
        yield OpenContext(NetmikoSettings(conn_timeout=30, read_timeout=30), threads)


@pytest.fixture
def plugin() -> NetmikoPlugin:
    return NetmikoPlugin()


@pytest.mark.parametrize("name", ["r-ios", "r-nxos"])
def test_show_version_parsed_into_rows(
    plugin: NetmikoPlugin, context: OpenContext, devices: FakeDevices, name: str
):
    connection = plugin.open(device_host(devices, name), context)
    try:
        rows = connection.send_command("show version", use_textfsm=True)
        assert isinstance(rows, list)
        assert rows
        assert isinstance(rows[0], dict)
        assert ("hostname" in rows[0]) or ("os" in rows[0])
        with pytest.raises(ParseError, match="no ntc-templates template") as caught:
            connection.send_command("show genja nothing", use_textfsm=True)
        assert caught.value.kind is TaskFailureKind.UNSUPPORTED
    finally:
        connection.close()


def test_is_alive_writes_nothing_to_the_cli(
    plugin: NetmikoPlugin, context: OpenContext, devices: FakeDevices, tmp_path: Path
):
    """The cache asks `is_alive` before every reuse: netmiko's own writes a NUL byte, whose
    echo (fakenos sends it back) broke the next command's prompt search."""
    log = tmp_path / "session.log"
    options = ConnectionOptions(extras={"secret": devices.password, "session_log": str(log)})
    host = device_host(devices, "r-ios", connection_options={"netmiko": options})
    connection = plugin.open(host, context)
    try:
        for _ in range(3):
            assert connection.is_alive()
            assert "Cisco IOS" in connection.send_command("show version")
    finally:
        connection.close()
    assert not connection.is_alive()
    assert "\x00" not in log.read_text(errors="replace")


def test_config_set_check_and_async_view(
    plugin: NetmikoPlugin, context: OpenContext, devices: FakeDevices
):
    connection = plugin.open(device_host(devices, "r-cfg"), context)
    try:
        assert connection.is_alive()
        output = connection.send_config_set(["interface Loopback1", "description genja"])
        assert "r-cfg(config-if)#description genja" in output
        assert "[OK]" in connection.save_config()
        result = connection.execute_command("show version")
        assert isinstance(result, CommandResult)
        assert "Cisco IOS" in result
        assert result.exit_status is None
        with pytest.raises(CommandFailedError, match="rejected"):
            connection.execute_command("show no such thing", check=True)
        view = connection.async_view()

        async def twice() -> list[CommandResult]:
            return list(
                await asyncio.gather(
                    view.execute_command("show version"), view.execute_command("show version")
                )
            )

        assert asyncio.run(twice()) == [result, result]
    finally:
        connection.close()
    assert not connection.is_alive()


def test_wrong_password_is_an_authentication_failure(
    plugin: NetmikoPlugin, context: OpenContext, devices: FakeDevices
):
    host = device_host(devices, "r-eos", password="not-the-password")
    with pytest.raises(AuthenticationFailedError) as caught:
        plugin.open(host, context)
    assert "r-eos" in str(caught.value)
    assert "not-the-password" not in str(caught.value)


def test_dead_port_is_a_connection_failure(plugin: NetmikoPlugin, context: OpenContext):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        host = Host(
            "gone",
            hostname="127.0.0.1",
            port=sock.getsockname()[1],
            username="x",
            password="y",
            platform="ios",
        )
        with pytest.raises(ConnectFailedError, match="refused"):
            plugin.open(host, context)


def test_silent_port_is_a_timeout(plugin: NetmikoPlugin, silent_port: int):
    context = OpenContext(NetmikoSettings(conn_timeout=2, banner_timeout=1))
    host = Host(
        "mute", hostname="127.0.0.1", port=silent_port, username="x", password="y", platform="eos"
    )
    with pytest.raises(ConnectTimeoutError, match="no SSH banner within 1s"):
        plugin.open(host, context)


def test_hosts_without_platform_or_with_unknown_extras_are_validation_errors(
    plugin: NetmikoPlugin, context: OpenContext
):
    with pytest.raises(ConnectionConfigError, match="needs a platform"):
        plugin.open(Host("bare"), context)
    typo = {"netmiko": ConnectionOptions(extras={"secrett": "x"})}
    with pytest.raises(ConnectionConfigError, match="did you mean 'secret'"):
        plugin.open(Host("typo", platform="ios", connection_options=typo), context)
