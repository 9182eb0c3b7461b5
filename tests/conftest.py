"""Shared fixtures: Genja instances on real local agent processes, always closed; real SSH
servers on loopback, started once per session and stopped after."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import genja
from tests.servers.fakenos_devices import FakeDevices, start_devices
from tests.servers.silent import SilentListener
from tests.servers.sshd import SSHServer, sshd_available, start_sshd


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
    return True


def agent_pids(g: genja.Genja) -> dict[str, int]:
    pids = getattr(g.runtime, "agent_pids", None)
    return pids() if pids is not None else {}


MakeGenja = Callable[..., genja.Genja]


@pytest.fixture
def make_genja() -> Iterator[MakeGenja]:
    """Build a Genja over in-memory hosts with `workers` local agents; every one is closed at
    the end of the test, and its agent processes must be gone."""
    made: list[genja.Genja] = []

    def make(
        hosts: Mapping[str, Any] | int,
        *,
        workers: int = 2,
        processors: Mapping[str, Any] | None = None,
        runner: str = "agents",
        settings: Mapping[str, Any] | None = None,
        runner_settings: Mapping[str, Any] | None = None,
        **runner_options: Any,
    ) -> genja.Genja:
        """`settings` holds sections besides `runner` (e.g. `ssh`), `runner_settings` keys of
        the runner section besides `plugin`, `worker_count` and `options` (e.g. `retry`)."""
        if isinstance(hosts, int):
            hosts = {f"host{i:05d}": {"platform": "ios"} for i in range(hosts)}
        runner_section = {
            "plugin": runner,
            "worker_count": workers,
            "options": runner_options,
            **(runner_settings or {}),
        }
        settings_obj = genja.Settings.from_dict({**(settings or {}), "runner": runner_section})
        g = genja.Genja.from_hosts(hosts, settings_obj, processors=processors)
        made.append(g)
        return g

    yield make
    pids = [pid for g in made for pid in agent_pids(g).values()]
    for g in made:
        g.close()
    leftovers = [pid for pid in pids if _alive(pid)]
    assert not leftovers, f"agent processes left running: {leftovers}"


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
    """One fakenos device per CLI family, and one with a configuration mode (r-cfg), shared
    by every test of the session: fakenos devices are slow to start."""
    running = start_devices(
        {
            "r-ios": "cisco_ios",
            "r-eos": "arista_eos",
            "r-nxos": "cisco_nxos",
            "r-junos": "juniper_junos",
            "r-cfg": "genja_ios",
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
