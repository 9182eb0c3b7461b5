"""The ssh plugin in-process against a real OpenSSH sshd."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.connections import (
    AuthenticationFailedError,
    CommandFailedError,
    CommandResult,
    CommandTimeoutError,
    ConnectFailedError,
    ConnectionConfigError,
    ConnectTimeoutError,
    OpenContext,
    TransferFailedError,
)
from agent.connections.ssh import SSHSettings
from agent.connections.ssh._plugin import SSHPlugin
from genja import Host
from genja._host import ConnectionOptions
from genja._secrets import MASK
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
    return OpenContext(SSHSettings(known_hosts=str(known_hosts), connect_timeout=30))


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


def test_exit_status_and_stderr_are_visible(
    plugin: SSHPlugin, context: OpenContext, sshd: SSHServer
):
    connection = plugin.open(_host(sshd), context)
    try:
        result = connection.execute_command("echo out; echo err >&2; exit 3")
        assert isinstance(result, CommandResult)
        assert result == "out\n"  # still the stdout string tasks used before
        assert (result.stdout, result.stderr, result.exit_status, result.ok) == (
            "out\n",
            "err\n",
            3,
            False,
        )
        assert connection.execute_command("true").ok
    finally:
        connection.close()


def test_three_megabytes_on_stderr_do_not_stall(
    plugin: SSHPlugin, context: OpenContext, sshd: SSHServer
):
    """stdout and stderr are read as they come: a command filling stderr while stdout stays
    open used to wait for the command timeout."""
    connection = plugin.open(_host(sshd), context)
    try:
        command = "head -c 3000000 /dev/zero | tr '\\0' e >&2; echo done"
        result = connection.execute_command(command, timeout=60)
        assert result == "done\n"
        assert len(result.stderr) == 3_000_000
        assert result.exit_status == 0
    finally:
        connection.close()


def test_output_over_max_output_is_a_command_failure(
    plugin: SSHPlugin, known_hosts: Path, sshd: SSHServer
):
    context = OpenContext(SSHSettings(known_hosts=str(known_hosts), max_output=100_000))
    connection = plugin.open(_host(sshd), context)
    try:
        with pytest.raises(CommandFailedError, match=r"more than 100,000 bytes \(max_output"):
            connection.execute_command("head -c 5000000 /dev/zero")
        assert connection.execute_command("echo fine") == "fine\n"
    finally:
        connection.close()


def test_sftp_round_trip(plugin: SSHPlugin, context: OpenContext, sshd: SSHServer, tmp_path: Path):
    source = tmp_path / "running-config"
    source.write_text("hostname r1\ninterface lo0\n")
    remote = f"/tmp/genja-sftp-{sshd.port}-{tmp_path.name}"
    connection = plugin.open(_host(sshd), context)
    try:
        assert connection.put(source, remote) == source.stat().st_size
        back = tmp_path / "back"
        assert connection.get(remote, back) == source.stat().st_size
        assert back.read_text() == source.read_text()
        with pytest.raises(TransferFailedError, match="sftp get"):
            connection.get("/no/such/file", tmp_path / "missing")
    finally:
        connection.execute_command(f"rm -f {remote}")
        connection.close()


def test_session_log_masks_secrets(
    plugin: SSHPlugin, context: OpenContext, sshd: SSHServer, tmp_path: Path
):
    log_file = tmp_path / "logs" / "srv.log"
    connection = plugin.open(_host(sshd, session_log=str(log_file)), context)
    try:
        connection.execute_command(f"echo {sshd.password}; echo oops >&2")
    finally:
        connection.close()
    text = log_file.read_text()
    assert f"$ echo {MASK}; echo oops >&2" in text
    assert "[stderr]\noops" in text
    assert sshd.password not in text


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
    context = OpenContext(SSHSettings(known_hosts=str(known_hosts), connect_timeout=1))
    host = Host("mute", hostname="127.0.0.1", port=silent_port, username="x", password="y")
    with pytest.raises(ConnectTimeoutError, match="no SSH banner within 1s"):
        plugin.open(host, context)


def test_strict_policy_refuses_unknown_hosts(plugin: SSHPlugin, known_hosts: Path, sshd: SSHServer):
    strict = OpenContext(SSHSettings(known_hosts=str(known_hosts), host_key_policy="strict"))
    with pytest.raises(AuthenticationFailedError, match="not in"):
        plugin.open(_host(sshd), strict)
    learn = OpenContext(SSHSettings(known_hosts=str(known_hosts), host_key_policy="accept-new"))
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
    context = OpenContext(SSHSettings(known_hosts=str(known_hosts), host_key_policy="accept-new"))
    with pytest.raises(AuthenticationFailedError, match="does not match"):
        plugin.open(_host(sshd), context)


def test_ssh_config_file(plugin: SSHPlugin, known_hosts: Path, sshd: SSHServer, tmp_path: Path):
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host lab-server\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.username}\n"
        f"  IdentityFile {sshd.key_file}\n"
    )
    context = OpenContext(SSHSettings(known_hosts=str(known_hosts), config_file=str(config)))
    connection = plugin.open(Host("lab-server"), context)
    try:
        assert connection.execute_command("echo via config") == "via config\n"
    finally:
        connection.close()


def test_unknown_extras_key_is_a_validation_error(plugin: SSHPlugin, context: OpenContext):
    host = Host("h", connection_options={"ssh": ConnectionOptions(extras={"key_fle": "x"})})
    with pytest.raises(ConnectionConfigError, match="did you mean 'key_file'"):
        plugin.open(host, context)
    shell = Host("h", connection_options={"ssh": ConnectionOptions(extras={"mode": "shell"})})
    with pytest.raises(ConnectionConfigError, match="netmiko or scrapli"):
        plugin.open(shell, context)
    secret = {"ssh": ConnectionOptions(extras={"passphrase": 12345})}
    with pytest.raises(ConnectionConfigError) as caught:
        plugin.open(Host("h", connection_options=secret), context)
    assert "12345" not in str(caught.value)


def test_exported_names():
    import agent.connections
    import agent.connections.ssh

    for module in (agent.connections, agent.connections.ssh):
        assert sorted(module.__all__) == sorted(
            name
            for name in dir(module)
            if not name.startswith("_") and not isinstance(getattr(module, name), type(module))
        )
