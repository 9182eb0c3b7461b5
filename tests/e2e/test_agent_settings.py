"""`genja-agent --settings FILE` with real processes: a remote agent in a folder of its own uses
its own ssh `known_hosts` (resolved against its file's folder) against a real sshd, never the
client's; a file with a key that is not an agent's is refused at start, naming file and line."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest

import genja
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task
from genja_rpc._runtime import RemoteRuntime
from tests.servers.coordinator import BIN, start_server
from tests.servers.processes import write_secret
from tests.servers.sshd import SSHServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@task(name="uname", connection_plugin_name="ssh")
class Uname:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult(result=context.connection().execute_command("uname -s"))


def _host_key_line(sshd: SSHServer) -> str:
    kind, key = (sshd.workdir / "host_ed25519.pub").read_text().split()[:2]
    return f"[127.0.0.1]:{sshd.port} {kind} {key}\n"


def test_a_remote_agent_uses_its_own_known_hosts_not_the_clients(
    tmp_path: Path, sshd: SSHServer, caplog: pytest.LogCaptureFixture
) -> None:
    jump = tmp_path / "jump"  # the jump host's folder: its settings and known_hosts
    jump.mkdir()
    (jump / "known_hosts").write_text(_host_key_line(sshd), encoding="utf-8")
    (jump / "agent.yaml").write_text(
        "ssh:\n  known_hosts: known_hosts\nrunner:\n  options:\n    host_concurrency: 7\n",
        encoding="utf-8",
    )
    elsewhere = tmp_path / "cwd"  # its working folder is another: paths follow the file
    elsewhere.mkdir()
    server = start_server(tmp_path / "server", ("jump1",))
    try:
        server.start_agent(
            "jump1-0", "jump1", cwd=elsewhere, args=["--settings", str(jump / "agent.yaml")]
        )
        client_known_hosts = tmp_path / "client_known_hosts"
        settings = genja.Settings.from_dict(
            {
                "runner": {"options": server.runner_options(run_timeout=120)},
                # strict: only a known_hosts that holds the sshd's key lets the login through;
                # the client's does not exist.
                "ssh": {
                    "known_hosts": str(client_known_hosts),
                    "host_key_policy": "strict",
                    "connect_timeout": 30,
                },
            }
        )
        host = {
            "hostname": "127.0.0.1",
            "port": sshd.port,
            "username": sshd.username,
            "password": sshd.password,
            "data": {"agent_pool": "jump1"},
        }
        with (
            caplog.at_level(logging.WARNING, logger="genja.runtime"),
            genja.Genja.from_hosts({"srv": host}, settings) as g,
        ):
            results = g.run_task(Uname)
        runtime = RemoteRuntime(server.address, settings)
        status = asyncio.run(runtime.status())
    finally:
        server.close()
    assert results.host_summary().passed == 1, results.to_json()
    assert results["srv"].result.strip() == "Linux"
    assert not client_known_hosts.exists()
    assert "ssh.known_hosts name files on this machine" in caplog.text
    (agent,) = status.agents_of("jump1")
    assert agent.concurrency == 7  # runner.options.host_concurrency of its file


BAD = "ssh:\n  known_hosts: known_hosts\n  connect_timeout: 5\n"


def test_an_agent_refuses_a_settings_file_with_a_clients_key_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "agent.yaml"
    bad.write_text(BAD, encoding="utf-8")
    token = write_secret(tmp_path / "jump1.token", "a-token\n")
    done = subprocess.run(
        [str(BIN / "genja-agent"), "--coordinator", "127.0.0.1:9", "--agent-id", "j-0",
         "--token-file", str(token), "--insecure", "--settings", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"{bad}: line 3: ssh.connect_timeout is not an agent setting" in done.stderr
    assert "Traceback" not in done.stderr

    done = subprocess.run(
        [str(BIN / "genja-coordinator"), "serve", "--listen", "127.0.0.1:0", "--insecure",
         "--agents", "1", "--agent-settings", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"--agent-settings: {bad}: line 3: ssh.connect_timeout" in done.stderr
    assert "Traceback" not in done.stderr
