"""No secret in any output of a real run: the `genja` command over real SSH (sshd on loopback),
embedded and through a `genja-coordinator serve`, logging at DEBUG to a file and the console;
its stdout, stderr, log file, JSON and JSONL, `genja inventory` (table and --json), the
coordinator's log, and `repr` of the hosts. Tasks that try to leak secrets (an exception quoting
the password, a result carrying it) are masked on the agent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.servers.coordinator import agent_settings
from tests.servers.processes import write_secret
from tests.servers.sshd import SSHServer

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent

TASKS = """
from genja.task import TaskSuccessResult, task


@task(name="leaky_raise")
class LeakyRaise:
    def start(self, task, host, context):
        ssh = host.connection_params("ssh").extras
        netmiko = host.connection_params("netmiko").extras
        netconf = host.connection_options["netconf"].extras
        raise RuntimeError(
            f"login {host.username}/{host.password} enable {netmiko['secret']} "
            f"passphrase {ssh['passphrase']} token {netconf['token']} "
            f"community {netconf['community']}"
        )


@task(name="leaky_return")
class LeakyReturn:
    def start(self, task, host, context):
        return TaskSuccessResult(
            summary=f"password is {host.password}",
            metadata={"copy": [host.password, host.connection_params("netmiko").extras["secret"]]},
        )


@task(name="probe", connection_plugin_name="ssh", sub_tasks=[LeakyRaise, LeakyReturn])
class Probe:
    def start(self, task, host, context):
        out = context.connection().execute_command("uname -s")
        return TaskSuccessResult(summary=f"{host.id}: {out.strip()}")
"""


def _secrets(sshd: SSHServer) -> dict[str, str]:
    return {
        "GENJA_SCAN_PW": sshd.password,
        "GENJA_SCAN_ENABLE": "enable-from-env-5b1e",
        "GENJA_SCAN_COMMUNITY": "community-from-env-c0de",
        "passphrase": "passphrase-lit-77aa",
        "token": "token-lit-91f0",
        "wrong": "wrong-password-3d3d",
    }


def _project(folder: Path, sshd: SSHServer, secrets: dict[str, str]) -> None:
    (folder / "tasks.py").write_text(TASKS)
    settings = textwrap.dedent(
        f"""\
        inventory: {{options: {{hosts_file: hosts.yaml}}}}
        runner: {{worker_count: 1, options: {{task_timeout: 90}}}}
        ssh: {{known_hosts: {folder / "known_hosts"}, connect_timeout: 30}}
        logging: {{enabled: true, level: DEBUG, log_file: genja.log, to_console: true}}
        """
    )
    (folder / "settings.yaml").write_text(settings)

    def host(password: str) -> str:
        return textwrap.indent(
            textwrap.dedent(
                f"""\
                hostname: 127.0.0.1
                port: {sshd.port}
                username: {sshd.username}
                password: {password}
                data: {{site: ams}}
                connection_options:
                  ssh:
                    extras:
                      passphrase: {secrets["passphrase"]}
                  netmiko:
                    extras:
                      secret: ${{env:GENJA_SCAN_ENABLE}}
                  netconf:
                    extras:
                      token: {secrets["token"]}
                      community: ${{env:GENJA_SCAN_COMMUNITY}}
                      key_file: /keys/netconf.key
                """
            ),
            "  ",
        )

    (folder / "hosts.yaml").write_text(
        f"good:\n{host('${env:GENJA_SCAN_PW}')}wrong:\n{host(secrets['wrong'])}"
    )


def _env(secrets: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "GENJA_SETTINGS")}
    env.update({k: v for k, v in secrets.items() if k.startswith("GENJA_SCAN_")})
    return env


def _genja(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "genja"), *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


Outputs = dict[str, str]


def _keep(outputs: Outputs, name: str, done: subprocess.CompletedProcess[str]) -> None:
    outputs[f"{name} stdout"] = done.stdout
    outputs[f"{name} stderr"] = done.stderr


def _embedded(folder: Path, env: dict[str, str], username: str, outputs: Outputs) -> None:
    """Runs where the client starts the coordinator and its agents, the inventory, repr."""
    done = _genja(folder, env, "run", "tasks.py:Probe", "-s", "settings.yaml", "--json", "r.json")
    _keep(outputs, "run --json", done)
    assert done.returncode == 1, done.stderr  # the leaky_raise sub-task fails, as it should
    tree = json.loads((folder / "r.json").read_text())
    assert tree["hosts"]["good"]["status"] == "passed"  # the password from ${env:...} worked
    assert tree["hosts"]["wrong"]["kind"] == "authentication"
    leaked = tree["sub_tasks"]["leaky_raise"]["hosts"]["good"]["message"]
    assert leaked.count("********") == 5, leaked
    assert f"login {username}/" in leaked  # only the secrets are masked
    returned = tree["sub_tasks"]["leaky_return"]["hosts"]["good"]
    assert returned["summary"] == "password is ********"
    done = _genja(folder, env, "run", "tasks.py:Probe", "-s", "settings.yaml", "--jsonl", "r.jsonl")
    _keep(outputs, "run --jsonl", done)
    _keep(outputs, "inventory", _genja(folder, env, "inventory", "-s", "settings.yaml"))
    done = _genja(folder, env, "inventory", "-s", "settings.yaml", "--json")
    _keep(outputs, "inventory --json", done)
    shown = json.loads(done.stdout)["good"]["connection_options"]
    assert shown["netconf"]["extras"] == {
        "token": "********", "community": "********", "key_file": "/keys/netconf.key",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(
            """\
            import genja
            inventory = genja.Inventory.from_settings(genja.Settings.from_file("settings.yaml"))
            for host in inventory:
                print(repr(host), host, host.connection_params("ssh"), list(inventory))
            """
        )],
        cwd=folder, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    _keep(outputs, "repr", done)
    assert "connection_options={'ssh': ConnectionOptions(" in done.stdout


def _through_a_coordinator(folder: Path, env: dict[str, str], outputs: Outputs) -> None:
    """The same run through a coordinator server logging at DEBUG, with its own agent."""
    token = write_secret(folder / "client.token", "client-token-scan")
    with (folder / "coordinator.log").open("w") as log:
        server = subprocess.Popen(
            [str(BIN / "genja-coordinator"), "serve", "--listen", "127.0.0.1:0", "--agents", "1",
             "--client-token-file", str(token), "--log-level", "DEBUG",
             "--agent-settings", str(agent_settings(folder))],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    try:
        assert server.stdout is not None
        address = server.stdout.readline().split()[-1]
        (folder / "remote.yaml").write_text(
            (folder / "settings.yaml")
            .read_text()
            .replace(
                "options: {task_timeout: 90}",
                f"options: {{task_timeout: 90, coordinator: '{address}', "
                f"coordinator_token_file: {token}}}",
            )
        )
        done = _genja(folder, env, "run", "tasks.py:Probe", "-s", "remote.yaml", "--json", "-")
        _keep(outputs, "remote run", done)
        assert json.loads(done.stdout)["hosts"]["good"]["status"] == "passed", done.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        assert server.stdout is not None
        server.stdout.close()


def test_no_output_of_a_run_shows_a_secret(sshd: SSHServer, tmp_path: Path) -> None:
    secrets = _secrets(sshd)
    _project(tmp_path, sshd, secrets)
    env = _env(secrets)
    outputs: Outputs = {}
    _embedded(tmp_path, env, sshd.username, outputs)
    _through_a_coordinator(tmp_path, env, outputs)
    for name in ("r.json", "r.jsonl", "genja.log", "coordinator.log"):
        outputs[name] = (tmp_path / name).read_text(errors="replace")
    assert "paramiko" in outputs["genja.log"]  # agents' DEBUG records did reach the log
    assert "audit INFO run " in outputs["coordinator.log"]
    found = [
        f"{what} in {where}"
        for where, text in outputs.items()
        for what, secret in secrets.items()
        if secret in text
    ]
    assert not found, found
