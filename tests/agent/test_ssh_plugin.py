"""The ssh plugin in-process against a real OpenSSH sshd and fakenos devices."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.connections import (
    AuthenticationFailedError,
    CommandFailedError,
    CommandTimeoutError,
    ConnectFailedError,
    ConnectionConfigError,
    ConnectTimeoutError,
    OpenContext,
    SSHConnection,
    SSHPlugin,
)
from genja import Host
from genja._host import ConnectionOptions
from tests.servers.fakenos_devices import FakeDevices, start_devices
from tests.servers.sshd import SSHServer


def _host(server: SSHServer, **extras: Any) -> Host:
    return Host(
        "srv",
        hostname="127.0.0.1",
        port=server.port,
        username=server.username,
        password=extras.pop("password", server.password),
        connection_options={"ssh": ConnectionOptions(extras=extras)} if extras else {},
    )


@pytest.fixture
def plugin() -> Any:
    plugin = SSHPlugin()
    yield plugin
    plugin.close()


@pytest.fixture
def context(known_hosts: Path) -> OpenContext:
    return OpenContext({"known_hosts": str(known_hosts), "connect_timeout": 30})


def test_password_login_runs_commands(plugin: SSHPlugin, context: OpenContext, sshd: SSHServer):
    connection = plugin.open(_host(sshd), context)
    try:
        assert connection.execute_command("id -un") == f"{sshd.username}\n"
        assert connection.is_alive()
        nodelay = connection._client.get_transport().sock.getsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY
        )
        assert nodelay
    finally:
        connection.close()
    assert not connection.is_alive()


def test_key_file_login(plugin: SSHPlugin, context: OpenContext, sshd: SSHServer):
    connection = plugin.open(_host(sshd, password=None, key_file=str(sshd.key_file)), context)
    try:
        assert connection.execute_command("echo key") == "key\n"
    finally:
        connection.close()


def test_encrypted_key_in_memory_with_passphrase(
    plugin: SSHPlugin, context: OpenContext, sshd: SSHServer, tmp_path: Path
):
    key = tmp_path / "locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "open sesame", "-f", str(key)], check=True
    )
    authorized = sshd.workdir / "authorized_keys"
    authorized.write_text(authorized.read_text() + key.with_suffix(".pub").read_text())
    host = _host(sshd, password=None, private_key=key.read_text(), passphrase="open sesame")
    connection = plugin.open(host, context)
    try:
        assert connection.execute_command("echo locked") == "locked\n"
    finally:
        connection.close()
    without = _host(sshd, password=None, private_key=key.read_text())
    with pytest.raises(AuthenticationFailedError, match="passphrase"):
        plugin.open(without, context)


def test_check_turns_exit_status_into_command_failure(
    plugin: SSHPlugin, context: OpenContext, sshd: SSHServer
):
    connection = plugin.open(_host(sshd), context)
    try:
        assert connection.execute_command("echo out; exit 3") == "out\n"
        with pytest.raises(CommandFailedError, match="status 3") as caught:
            connection.execute_command("echo oops >&2; exit 3", check=True)
        assert caught.value.exit_status == 3
    finally:
        connection.close()


def test_command_timeout(plugin: SSHPlugin, context: OpenContext, sshd: SSHServer):
    connection = plugin.open(_host(sshd), context)
    try:
        with pytest.raises(CommandTimeoutError, match=r"did not finish within 0\.5s"):
            connection.execute_command("sleep 30", timeout=0.5)
        assert connection.execute_command("echo still here") == "still here\n"
    finally:
        connection.close()


def test_session_closed_mid_command(plugin: SSHPlugin, context: OpenContext, sshd: SSHServer):
    connection = plugin.open(_host(sshd), context)
    try:
        with pytest.raises(ConnectFailedError, match="closed before"):
            connection.execute_command("kill -9 $PPID; sleep 5")
    finally:
        connection.close()


def test_wrong_password_is_an_authentication_failure(
    plugin: SSHPlugin, context: OpenContext, sshd: SSHServer
):
    with pytest.raises(AuthenticationFailedError) as caught:
        plugin.open(_host(sshd, password="not-the-password"), context)
    message = str(caught.value)
    assert "srv" in message
    assert sshd.username in message
    assert "not-the-password" not in message
    assert caught.value.retryable is False


def test_refused_port_is_a_connection_failure(plugin: SSHPlugin, context: OpenContext):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        host = Host("gone", hostname="127.0.0.1", port=port, username="x", password="y")
        with pytest.raises(ConnectFailedError, match="refused") as caught:
            plugin.open(host, context)
    assert caught.value.retryable is True


def test_silent_server_is_a_timeout(plugin: SSHPlugin, known_hosts: Path, silent_port: int):
    context = OpenContext({"known_hosts": str(known_hosts), "connect_timeout": 1})
    host = Host("mute", hostname="127.0.0.1", port=silent_port, username="x", password="y")
    with pytest.raises(ConnectTimeoutError, match="no SSH banner within 1s"):
        plugin.open(host, context)


def test_strict_policy_refuses_unknown_hosts(plugin: SSHPlugin, known_hosts: Path, sshd: SSHServer):
    strict = OpenContext({"known_hosts": str(known_hosts), "host_key_policy": "strict"})
    with pytest.raises(AuthenticationFailedError, match="not in"):
        plugin.open(_host(sshd), strict)
    learn = OpenContext({"known_hosts": str(known_hosts), "host_key_policy": "accept-new"})
    plugin.open(_host(sshd), learn).close()
    assert f"[127.0.0.1]:{sshd.port}" in known_hosts.read_text()
    fresh = SSHPlugin()  # reads the file anew
    fresh.open(_host(sshd), strict).close()


def test_changed_host_key_is_refused(plugin: SSHPlugin, known_hosts: Path, sshd: SSHServer):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(known_hosts.parent / "k")],
        check=True,
    )
    public = (known_hosts.parent / "k.pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {public[0]} {public[1]}\n")
    context = OpenContext({"known_hosts": str(known_hosts), "host_key_policy": "accept-new"})
    with pytest.raises(AuthenticationFailedError, match="does not match"):
        plugin.open(_host(sshd), context)


def test_ssh_config_file(plugin: SSHPlugin, known_hosts: Path, sshd: SSHServer, tmp_path: Path):
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host lab-server\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.username}\n"
        f"  IdentityFile {sshd.key_file}\n"
    )
    context = OpenContext({"known_hosts": str(known_hosts), "config_file": str(config)})
    connection = plugin.open(Host("lab-server"), context)
    try:
        assert connection.execute_command("echo via config") == "via config\n"
    finally:
        connection.close()


def test_unknown_extras_key_is_a_validation_error(plugin: SSHPlugin, context: OpenContext):
    host = Host("h", connection_options={"ssh": ConnectionOptions(extras={"pasword": "x"})})
    with pytest.raises(ConnectionConfigError, match="pasword"):
        plugin.open(host, context)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("r-ios", "Cisco IOS XE Software"),
        ("r-eos", "cEOSLab"),
        ("r-nxos", "System version: 7.0(7)N1(1)"),
        ("r-junos", "JUNOS"),
    ],
)
def test_shell_mode_on_network_devices(
    plugin: SSHPlugin, context: OpenContext, devices: FakeDevices, name: str, expected: str
):
    device = devices.devices[name]
    host = Host(
        name,
        hostname="127.0.0.1",
        port=device.port,
        username=devices.username,
        password=devices.password,
        platform=device.platform,
    )
    connection = plugin.open(host, context)
    try:
        assert connection.mode == "shell"
        assert connection.prompt == name
        output = connection.execute_command("show version")
        assert expected in output
        assert not output.startswith("show version")
        assert not output.rstrip().endswith((f"{name}#", f"{name}>"))
        with pytest.raises(CommandFailedError, match="rejected"):
            connection.execute_command("show no such thing", check=True)
        view = connection.async_view()
        again = asyncio.run(view.execute_command("show version"))
        assert again == output
    finally:
        connection.close()


def test_device_killed_mid_session(plugin: SSHPlugin, context: OpenContext):
    lab = start_devices({"r-doomed": "cisco_ios"})
    try:
        device = lab.devices["r-doomed"]
        host = Host(
            "r-doomed",
            hostname="127.0.0.1",
            port=device.port,
            username=lab.username,
            password=lab.password,
            platform="cisco_ios",
        )
        connection: SSHConnection = plugin.open(host, context)
        assert "IOS" in connection.execute_command("show version")
        lab.kill()
        with pytest.raises(ConnectFailedError, match="closed the session"):
            connection.execute_command("show version", timeout=10)
    finally:
        lab.stop()


def test_exported_names():
    import agent.connections

    assert sorted(agent.connections.__all__) == sorted(
        name for name in dir(agent.connections) if not name.startswith("_")
    )
