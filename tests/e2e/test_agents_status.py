"""`genja agents` against a real `genja-coordinator serve`: its pools, its local agent and a
remote one, and what the remote one is doing (hosts in flight during a run, connections it
holds open to a real sshd afterwards); as a table and as JSON."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import genja
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task
from genja_rpc._pb import PROTOCOL_VERSION
from tests.servers.coordinator import (
    BIN,
    CoordinatorServer,
    agent_settings,
    start_server,
    wait_for,
)
from tests.servers.processes import write_secret
from tests.servers.sshd import SSHServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@task(name="wait_for_gate")
class WaitForGate:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        deadline = time.monotonic() + 120
        while not Path(host.data["gate"]).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return TaskSuccessResult()


@task(name="uname", connection_plugin_name="ssh")
class Uname:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult(result=context.connection().execute_command("uname -s"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorServer]:
    folder = tmp_path_factory.mktemp("agents-status")
    server = start_server(folder, ("jump1", "spare"), local_agents=1)
    try:
        home = folder / "agent-home"
        home.mkdir()
        server.start_agent(
            "jump1-0", "jump1", cwd=home, args=["--settings", str(agent_settings(home))]
        )
        yield server
    finally:
        server.close()


def _settings_file(server: CoordinatorServer, folder: Path, **options: Any) -> Path:
    path = folder / "settings.yaml"
    path.write_text(
        json.dumps({"runner": {"options": server.runner_options(**options)}}), encoding="utf-8"
    )
    return path


def _agents(settings: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # pytest sets it
    return subprocess.run(
        [str(BIN / "genja"), "agents", "-s", str(settings), *args],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


def _status(settings: Path) -> dict[str, Any]:
    done = _agents(settings, "--json")
    assert done.returncode == 0, done.stderr
    status: dict[str, Any] = json.loads(done.stdout)
    return status


def _jump1(settings: Path) -> dict[str, Any]:
    (agent,) = _status(settings)["pools"]["jump1"]
    return agent  # type: ignore[no-any-return]


def test_json_lists_pools_agents_and_their_versions(
    server: CoordinatorServer, tmp_path: Path
) -> None:
    settings = _settings_file(server, tmp_path)
    status = _status(settings)
    assert status["coordinator"] == server.address
    assert status["version"] == genja.__version__
    assert status["protocol"] == PROTOCOL_VERSION
    assert status["runs"] == 0
    assert sorted(status["pools"]) == ["jump1", "local", "spare"]
    assert status["pools"]["spare"] == []
    (local,) = status["pools"]["local"]
    assert local["agent_id"].startswith("local-")
    assert local["pid"] not in (server.process.pid, os.getpid())
    (remote,) = status["pools"]["jump1"]
    assert remote == {
        "agent_id": "jump1-0",
        "pool": "jump1",
        "hostname": socket.gethostname(),
        "version": genja.__version__,
        "protocol": PROTOCOL_VERSION,
        "pid": server.agents[0].pid,
        "connected_since": remote["connected_since"],
        "concurrency": remote["concurrency"],
        "answered": True,
        "hosts_in_flight": 0,
        "open_connections": 0,
        "runs": 0,
    }
    assert remote["concurrency"] > 0
    assert remote["connected_since"].endswith("+00:00")


def test_the_table_shows_every_pool_and_agent(server: CoordinatorServer, tmp_path: Path) -> None:
    done = _agents(_settings_file(server, tmp_path))
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert f"coordinator {server.address} (genja {genja.__version__}, protocol" in text
    assert "2 agents in 3 pools, 0 runs in progress" in text
    for column in ("pool", "agent", "host", "genja", "pid", "connected since", "in flight"):
        assert column in text
    assert "no agent connected" in text  # pool spare
    row = next(line for line in text.splitlines() if "jump1-0" in line)
    assert str(server.agents[0].pid) in row
    assert " ago)" in row


def test_hosts_in_flight_and_open_connections_are_the_agents_own(
    server: CoordinatorServer, tmp_path: Path, sshd: SSHServer
) -> None:
    settings = _settings_file(server, tmp_path)
    gate = tmp_path / "gate"
    hosts = {f"edge{i}": {"data": {"agent_pool": "jump1", "gate": str(gate)}} for i in range(3)}
    client = genja.Settings.from_dict({"runner": {"options": server.runner_options()}})
    outcome: dict[str, Any] = {}
    with genja.Genja.from_hosts(hosts, client) as g:
        runner = threading.Thread(target=lambda: outcome.update(r=g.run_task(WaitForGate)))
        runner.start()
        try:
            wait_for(lambda: _jump1(settings)["hosts_in_flight"] == 3, "three hosts in flight")
            assert _status(settings)["runs"] == 1
        finally:
            gate.touch()
            runner.join(timeout=120)
    assert outcome["r"].host_summary().passed == 3
    assert _jump1(settings)["hosts_in_flight"] == 0

    ssh_hosts = {
        f"srv{i}": {
            "hostname": "127.0.0.1",
            "port": sshd.port,
            "username": sshd.username,
            "password": sshd.password,
            "data": {"agent_pool": "jump1"},
        }
        for i in range(2)
    }
    ssh = genja.Settings.from_dict({"runner": {"options": server.runner_options()}})
    with genja.Genja.from_hosts(ssh_hosts, ssh) as g:
        assert g.run_task(Uname).host_summary().passed == 2
        assert _jump1(settings)["open_connections"] == 2
        g.close_connections()
        wait_for(lambda: _jump1(settings)["open_connections"] == 0, "connections closed")


def test_without_a_coordinator_or_with_a_wrong_token_it_says_so(
    server: CoordinatorServer, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text("runner:\n  worker_count: 1\n", encoding="utf-8")
    done = _agents(plain)
    assert done.returncode == 2
    assert "runner.options.coordinator is not set" in done.stderr
    assert "Traceback" not in done.stderr

    wrong = write_secret(tmp_path / "wrong.token", "not-the-token")
    done = _agents(_settings_file(server, tmp_path, coordinator_token_file=str(wrong)))
    assert done.returncode == 2
    assert "refused this client (UNAUTHENTICATED)" in done.stderr
    assert "not-the-token" not in done.stderr
