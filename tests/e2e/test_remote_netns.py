"""A remote agent in a network namespace of its own is the only process that reaches the target
sshd (in another namespace behind it): a file-based task with a helper module beside it, run
with `genja run` against a coordinator server, travels to that agent and runs over real SSH.

    root namespace: client, coordinator (no route to the device subnet)
        │ unix socket (file system, not network)
    bastion namespace: genja-agent ── veth ── device namespace: sshd
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.coordinator import BIN, agent_settings, start_server
from tests.servers.netns import Namespaces, make_namespaces, netns_unavailable
from tests.servers.processes import scratch_tmpdir
from tests.servers.sshd import SSHServer, sshd_available, start_sshd

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TASKS = """
    from genja.task import TaskSuccessResult, task
    from netparse import addresses


    @task(name="addresses", connection_plugin_name="ssh")
    class Addresses:
        def start(self, task, host, context):
            output = context.connection().execute_command("hostname -I")
            return TaskSuccessResult(result={"addresses": addresses(output)})
"""
NETPARSE = """
    def addresses(output):
        return sorted(output.split())
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Namespaces, SSHServer]]:
    for reason in (sshd_available(), netns_unavailable()):
        if reason is not None:
            pytest.skip(reason)
    spaces = make_namespaces()
    target: SSHServer | None = None
    try:
        target = start_sshd(address=spaces.device_address, port=22, netns=spaces.device)
        yield spaces, target
    finally:
        if target is not None:
            target.stop()
        spaces.remove()


def test_a_file_based_task_runs_on_the_agent_that_alone_reaches_the_target(
    lab: tuple[Namespaces, SSHServer], tmp_path: Path
) -> None:
    spaces, target = lab
    project = tmp_path / "project"
    project.mkdir()
    (project / "sshtasks.py").write_text(textwrap.dedent(TASKS).lstrip(), encoding="utf-8")
    (project / "netparse.py").write_text(textwrap.dedent(NETPARSE).lstrip(), encoding="utf-8")
    home = tmp_path / "agent-home"
    home.mkdir()
    with scratch_tmpdir() as short:
        socket_path = short / "c.sock"  # unix socket paths must stay short
        server = start_server(
            tmp_path / "server", ("edge",), args=["--listen", f"unix:{socket_path}"]
        )
        try:
            server.start_agent(
                "edge-0", "edge", cwd=home, coordinator=f"unix:{socket_path}",
                prefix=["ip", "netns", "exec", spaces.bastion],
                args=["--settings", str(agent_settings(home))],
            )  # fmt: skip
            hosts = {
                "behind": {
                    "hostname": spaces.device_address,
                    "port": 22,
                    "username": target.username,
                    "password": target.password,
                    "data": {"agent_pool": "edge"},
                }
            }
            (project / "hosts.yaml").write_text(json.dumps(hosts), encoding="utf-8")
            settings = {
                "inventory": {"options": {"hosts_file": "hosts.yaml"}},
                "ssh": {"connect_timeout": 30},
                "runner": {"options": server.runner_options(run_timeout=120)},
            }
            (project / "settings.yaml").write_text(json.dumps(settings), encoding="utf-8")
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            done = subprocess.run(
                [str(BIN / "genja"), "run", "sshtasks.py:Addresses", "-s", "settings.yaml",
                 "--json", "-"],
                cwd=project, env=env, capture_output=True, text=True, timeout=240, check=False,
            )  # fmt: skip
        finally:
            server.close()
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)["hosts"]["behind"]
    assert result["status"] == "passed", result
    # The session ran in the device's namespace: its only address is the device's.
    assert result["result"] == {"addresses": [spaces.device_address]}
    assert result["execution_metadata"]["agent"] == "edge-0"
    assert target.logins() >= 1
