"""How the ssh plugin resolves one host's login options (pure logic, no sockets)."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from agent.connections import ConnectionConfigError
from agent.connections.ssh import SSHSettings
from agent.connections.ssh._options import parse_jump, resolve_options
from genja import Host
from genja._host import ConnectionOptions


@pytest.fixture
def config(tmp_path: Path) -> paramiko.SSHConfig:
    path = tmp_path / "ssh_config"
    path.write_text(
        "Host core1\n  HostName 192.0.2.10\n  Port 2222\n  User netops\n"
        "  IdentityFile /keys/core\n  ProxyJump jump\n\n"
        "Host jump\n  HostName 192.0.2.1\n  User hopper\n  IdentityFile /keys/jump\n"
    )
    return paramiko.SSHConfig.from_path(str(path))


def test_config_file_fills_in_what_the_inventory_leaves_out(config: paramiko.SSHConfig):
    options = resolve_options(Host("core1", password="pw"), SSHSettings(), config)
    assert (options.hostname, options.port, options.username) == ("192.0.2.10", 2222, "netops")
    assert options.key_files == ("/keys/core",)
    assert [j.label for j in options.jumps] == ["hopper@192.0.2.1:22"]
    assert options.jumps[0].key_files == ("/keys/jump",)
    assert "pw" not in repr(options)


def test_inventory_and_extras_win(config: paramiko.SSHConfig):
    host = Host(
        "core1",
        port=22,
        username="admin",
        connection_options={
            "ssh": ConnectionOptions(
                username="override",
                extras={"proxy_jump": "me@10.0.0.1:2200", "command_timeout": 5},
            )
        },
    )
    options = resolve_options(host, SSHSettings(command_timeout=60, connect_timeout=3), config)
    assert options.port == 22
    assert options.username == "override"
    assert [j.label for j in options.jumps] == ["me@10.0.0.1:2200"]
    assert options.command_timeout == 5
    assert options.connect_timeout == 3


def test_the_platform_is_kept_for_parsing():
    assert resolve_options(Host("h", platform="ios"), SSHSettings(), None).platform == "ios"


def test_chained_jumps():
    jumps = parse_jump("a@one:2201,two,[2001:db8::1]:22", None)
    assert [j.label for j in jumps] == ["a@one:2201", "two:22", "2001:db8::1:22"]


@pytest.mark.parametrize(
    "extras",
    [{"mode": "exec"}, {"host_key_policy": "trust-me"}, {"connect_timeout": -1}],
)
def test_bad_values_are_validation_errors(extras: dict[str, object]):
    host = Host("h", connection_options={"ssh": ConnectionOptions(extras=extras)})
    with pytest.raises(ConnectionConfigError, match="host 'h'"):
        resolve_options(host, SSHSettings(), None)
