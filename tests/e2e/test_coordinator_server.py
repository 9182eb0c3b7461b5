"""`genja-coordinator serve` as a real server: clients send runs over TCP loopback, local agents
and a remote agent pool (an agent process dialing in, as one on a jump host would)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import genja
from genja.task import (
    Host,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)
from tests.servers.coordinator import agent_settings
from tests.servers.processes import scratch_tmpdir, stop, write_secret
from tests.servers.sshd import SSHServer

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


@task(name="where")
class Where:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        gate = host.data.get("gate")
        if gate:
            deadline = time.monotonic() + 60
            while not Path(gate).exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        return TaskSuccessResult(metadata={"pid": os.getpid()})


@task(name="plan_where", supports_dry_run=True)
class PlanWhere(Where):
    def dry_run(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult(summary=f"dry run: {context.dry_run}")


@dataclass
class Server:
    process: subprocess.Popen[str]
    address: str
    folder: Path

    def settings(self, **options: Any) -> genja.Settings:
        return genja.Settings.from_dict(
            {
                "runner": {
                    "options": {
                        "coordinator": self.address,
                        "coordinator_token_file": str(self.folder / "client.token"),
                        **options,
                    }
                }
            }
        )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    write_secret(tmp_path / "client.token", "client-secret-token\n")
    write_secret(tmp_path / "agent.token", "agent-secret-token\n")
    # Its log goes to a file (a pipe nobody reads would fill up and block it); its work folder
    # to a TMPDIR of ours, since a test that kills it leaves that folder behind.
    with scratch_tmpdir() as tmpdir, (tmp_path / "coordinator.log").open("w") as log:
        process = subprocess.Popen(
            [
                str(BIN / "genja-coordinator"), "serve", "--listen", "127.0.0.1:0",
                "--agents", "1", "--client-token-file", str(tmp_path / "client.token"),
                "--agent-token-file", f"jump1={tmp_path / 'agent.token'}",
                # The local agent's known_hosts: the client's paths do not reach a server.
                "--agent-settings", str(agent_settings(tmp_path)),
            ],
            stdout=subprocess.PIPE, stderr=log, text=True, cwd=Path(__file__).parents[2],
            env={**os.environ, "TMPDIR": str(tmpdir)},
        )  # fmt: skip
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on 127.0.0.1:" in line, line + (tmp_path / "coordinator.log").read_text()
        try:
            yield Server(process, line.split()[-1], tmp_path)
        finally:
            stop(process)


def _remote_agent(server: Server, token_file: str = "agent.token") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(BIN / "genja-agent"), "--coordinator", server.address, "--agent-id", "jump1-0",
            "--pool", "jump1", "--token-file", str(server.folder / token_file), "--insecure",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).parents[2],
    )  # fmt: skip


@pytest.fixture
def remote_agent(server: Server) -> Iterator[subprocess.Popen[str]]:
    agent = _remote_agent(server)
    try:
        yield agent
    finally:
        stop(agent)


def _hosts(gate: Path | None = None) -> dict[str, Any]:
    data = {"gate": str(gate)} if gate else {}
    local = {f"dc{i}": {"data": data} for i in range(6)}
    edge = {f"edge{i}": {"data": {**data, "agent_pool": "jump1"}} for i in range(6)}
    return {**local, **edge}


def _run_until_remote_pool_is_up(g: genja.Genja) -> genja.TaskResults:
    deadline = time.monotonic() + 60
    while True:
        results = g.run_task(Where)
        if not results.failed_hosts or time.monotonic() > deadline:
            return results
        time.sleep(0.3)


def test_runs_go_through_the_server_to_local_and_remote_agents(
    server: Server, remote_agent: subprocess.Popen[str]
) -> None:
    with genja.Genja.from_hosts(_hosts(), server.settings()) as g:
        results = _run_until_remote_pool_is_up(g)
    assert results.host_summary().passed == 12
    pid = {h: r.metadata["pid"] for h, r in results.hosts.items()}  # type: ignore[union-attr]
    assert {pid[f"edge{i}"] for i in range(6)} == {remote_agent.pid}
    local_pids = {pid[f"dc{i}"] for i in range(6)}
    assert len(local_pids) == 1
    assert local_pids.isdisjoint({os.getpid(), server.process.pid, remote_agent.pid})


def test_a_dry_run_reaches_the_servers_agents(server: Server) -> None:
    dry = genja.TaskRunOptions(dry_run=True)
    with genja.Genja.from_hosts({"dc0": {}, "dc1": {}}, server.settings()) as g:
        planned = g.run_task(PlanWhere, run_options=dry)
        refused = g.run_task(Where, run_options=dry)
    for host_id in ("dc0", "dc1"):
        result = planned[host_id]
        assert result == TaskSuccessResult(summary="dry run: True")
        assert result.execution_metadata is not None
        assert result.execution_metadata.dry_run
        failure = refused[host_id]
        assert isinstance(failure, TaskFailureResult)
        assert failure.kind is TaskFailureKind.UNSUPPORTED


def test_hosts_of_a_pool_with_no_agent_fail_as_connection_failures(server: Server) -> None:
    with genja.Genja.from_hosts(_hosts(), server.settings()) as g:
        results = g.run_task(Where)
    assert sorted(results.passed_hosts) == [f"dc{i}" for i in range(6)]
    failure = results["edge0"]
    assert isinstance(failure, TaskFailureResult)
    assert failure.kind is TaskFailureKind.CONNECTION
    assert "no agent of pool 'jump1'" in failure.message


def test_a_client_with_a_wrong_token_is_refused(server: Server) -> None:
    write_secret(server.folder / "wrong.token", "nope")
    settings = server.settings(coordinator_token_file=str(server.folder / "wrong.token"))
    with (
        genja.Genja.from_hosts(_hosts(), settings) as g,
        pytest.raises(genja.ConfigurationError, match=r"refused this client \(UNAUTHENTICATED\)"),
    ):
        g.run_task(Where)


def test_an_agent_with_a_wrong_token_is_refused_and_exits(server: Server) -> None:
    write_secret(server.folder / "wrong.token", "nope")
    agent = _remote_agent(server, "wrong.token")
    try:
        assert agent.wait(timeout=60) == 2
        assert agent.stderr is not None
        err = agent.stderr.read()
        assert "refused" in err
        assert "nope" not in err
        assert "agent-secret-token" not in err
    finally:
        stop(agent)


def test_a_remote_agent_lost_mid_run_fails_only_its_hosts(
    server: Server, remote_agent: subprocess.Popen[str]
) -> None:
    import threading

    with genja.Genja.from_hosts(_hosts(), server.settings()) as g:
        _run_until_remote_pool_is_up(g)
        gate = server.folder / "gate"
        hosts = _hosts(gate)
        gated = genja.Genja.from_hosts(hosts, server.settings())
        outcome: dict[str, Any] = {}
        runner = threading.Thread(target=lambda: outcome.update(r=gated.run_task(Where)))
        runner.start()
        time.sleep(2.0)
        remote_agent.kill()
        time.sleep(1.0)
        gate.touch()
        runner.join(timeout=90)
        assert not runner.is_alive()
    results = outcome["r"]
    assert sorted(results.failed_hosts) == [f"edge{i}" for i in range(6)]
    assert "agent jump1-0 of pool 'jump1'" in results["edge3"].message
    assert sorted(results.passed_hosts) == [f"dc{i}" for i in range(6)]


def test_losing_the_coordinator_mid_run_keeps_finished_hosts(server: Server) -> None:
    import threading

    gate = server.folder / "gate"
    hosts = {"quick": {}, **{f"slow{i}": {"data": {"gate": str(gate)}} for i in range(3)}}
    outcome: dict[str, Any] = {}
    with genja.Genja.from_hosts(hosts, server.settings()) as g:
        runner = threading.Thread(target=lambda: outcome.update(r=g.run_task(Where)))
        runner.start()
        time.sleep(3.0)
        server.process.kill()
        runner.join(timeout=90)
        assert not runner.is_alive()
    results = outcome["r"]
    assert results.passed_hosts == ["quick"]
    assert sorted(results.failed_hosts) == ["slow0", "slow1", "slow2"]
    assert "stopped answering" in results["slow0"].message


def test_an_agent_speaking_another_protocol_is_refused_naming_both_versions(
    server: Server,
) -> None:
    from genja_rpc._pb import PROTOCOL_VERSION

    older = PROTOCOL_VERSION - 1
    code = (
        "import sys, agent._agent as a\n"
        f"a.PROTOCOL_VERSION = {older}\n"
        "from agent._cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    agent = subprocess.Popen(
        [
            sys.executable, "-c", code, "--coordinator", server.address,
            "--agent-id", "old-0", "--pool", "jump1",
            "--token-file", str(server.folder / "agent.token"), "--insecure",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    try:
        assert agent.wait(timeout=60) == 2
        assert agent.stderr is not None
        err = agent.stderr.read()
        assert f"speaks protocol version {older}" in err
        assert f"speaks version {PROTOCOL_VERSION}" in err
    finally:
        stop(agent)


@task(name="uname", connection_plugin_name="ssh")
class Uname:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult(result=context.connection().execute_command("uname -s"))


def test_close_connections_reaches_the_servers_agents(server: Server, sshd: SSHServer) -> None:
    hosts = {
        f"srv{i}": {
            "hostname": "127.0.0.1",
            "port": sshd.port,
            "username": sshd.username,
            "password": sshd.password,
        }
        for i in range(3)
    }
    with genja.Genja.from_hosts(hosts, server.settings()) as g:
        first = g.run_task(Uname)
        assert first.host_summary().passed == 3, first.to_json()
        logins = sshd.logins()
        g.run_task(Uname)
        assert sshd.logins() == logins  # reused
        g.filter(filter_func=lambda h: h.id == "srv1").close_connections()
        g.run_task(Uname)
        assert sshd.logins() == logins + 1  # only srv1 logged in again
        g.close_connections()
        g.run_task(Uname)
        assert sshd.logins() == logins + 4


def _serve(tmpdir: Path, listen: str, token: Path) -> subprocess.Popen[str]:
    if not token.exists():
        write_secret(token, "client-secret-token\n")
    return subprocess.Popen(
        [str(BIN / "genja-coordinator"), "serve", "--listen", listen, "--agents", "0",
         "--client-token-file", str(token), "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmpdir)},
    )  # fmt: skip


def test_a_killed_servers_folder_is_removed_by_the_next_one(tmp_path: Path) -> None:
    token = tmp_path / "client.token"
    with scratch_tmpdir() as tmpdir:
        first = _serve(tmpdir, "127.0.0.1:0", token)
        assert first.stdout is not None
        assert "listening on" in first.stdout.readline()
        first.kill()
        first.wait(timeout=30)
        stop(first)
        (left,) = tmpdir.glob(f"genja-coordinator-{first.pid}-*")
        second = _serve(tmpdir, "127.0.0.1:0", token)
        try:
            assert second.stdout is not None
            assert "listening on" in second.stdout.readline()
            assert not left.exists()
            (own,) = tmpdir.iterdir()
            assert own.name.startswith(f"genja-coordinator-{second.pid}-")
        finally:
            stop(second)
        assert not list(tmpdir.iterdir()), "a stopped server removes its own"


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("in-use", "Address already in use"),
        ("127.0.0.1:65536", "expected HOST:PORT (127.0.0.1:50051, [::1]:0, 0.0.0.0:50051)"),
        ("127.0.0.1", "expected HOST:PORT"),
    ],
)
def test_an_address_it_cannot_listen_on_is_one_line_and_exit_2(
    tmp_path: Path, listen: str, message: str
) -> None:
    with scratch_tmpdir() as tmpdir, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if listen == "in-use":
            listen = f"127.0.0.1:{taken.getsockname()[1]}"
        process = _serve(tmpdir, listen, tmp_path / "client.token")
        _, err = process.communicate(timeout=60)
        assert process.returncode == 2, err
        (line,) = err.splitlines()
        assert line.startswith("genja-coordinator: error: cannot listen on ")
        assert listen in line
        assert message in line
        assert not list(tmpdir.iterdir()), "its folder is removed"
