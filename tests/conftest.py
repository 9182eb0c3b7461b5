"""Shared fixtures: real SSH servers on loopback, started once per session and stopped after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers.fakenos_devices import FakeDevices, start_devices
from servers.silent import SilentListener
from servers.sshd import SSHServer, sshd_available, start_sshd


@pytest.fixture(scope="session")
def sshd() -> Iterator[SSHServer]:
    reason = sshd_available()
    if reason is not None:
        pytest.skip(reason)
    server = start_sshd()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def devices() -> Iterator[FakeDevices]:
    """One fakenos device of each CLI family the shell mode knows paging commands for."""
    running = start_devices(
        {
            "r-ios": "cisco_ios",
            "r-eos": "arista_eos",
            "r-nxos": "cisco_nxos",
            "r-junos": "juniper_junos",
        }
    )
    yield running
    running.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    listener = SilentListener()
    yield listener.port
    listener.stop()


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    return tmp_path / "known_hosts"
