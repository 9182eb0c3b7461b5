"""deploy/systemd: the coordinator's unit and the remote agents' template, with their example
environment files and drop-ins.

Read as systemd reads them (their hardening, where secrets come from, no port on the agents);
checked by `systemd-analyze verify` where it is installed (it needs no running systemd); and
run: each command line exactly as systemd would build it, in a fake /etc/genja, as an
unprivileged user with no capabilities, credentials copied 0400 and the unit's system call
filter (tests/deploy/_systemd.py). A client runs a task over the local pool and, through a real
SSH login, over the agent's pool.
"""

from __future__ import annotations

import ast
import errno
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import genja
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task
from tests.deploy._sandbox import Sandbox
from tests.deploy._systemd import (
    DEPLOY,
    Resolved,
    Unit,
    resolve,
    start,
)
from tests.e2e._ssh_hosts import sshd_host
from tests.servers.coordinator import wait_for
from tests.servers.pki import CertificateAuthority
from tests.servers.processes import stop
from tests.servers.sshd import SSHServer

COORDINATOR = "genja-coordinator.service"
AGENT = "genja-agent@.service"
DROPINS = {
    COORDINATOR: DEPLOY / "dropins" / "coordinator-tokens.conf",
    AGENT: DEPLOY / "dropins" / "agent-token.conf",
}
HARDENING = {
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "MemoryDenyWriteExecute": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
    "Restart": "on-failure",
    "RestartPreventExitStatus": "2",
}
SECRET_OPTIONS = ("--tls-key", "--token-file", "--client-token-file", "--agent-token-file")


@pytest.mark.parametrize("name", [COORDINATOR, AGENT])
def test_the_units_run_sandboxed_as_a_user_of_their_own(name: str) -> None:
    unit = Unit.load(name)
    for key, value in HARDENING.items():
        assert unit.value(key) == value, f"{name}: {key}={unit.value(key)!r}"
    assert unit.values("SystemCallFilter")[0] == "@system-service"
    user = unit.value("User")
    assert user is not None
    assert user.startswith("genja-")
    # HOME is the unit's state folder: its ~/.ssh/known_hosts.
    assert any(v.startswith("HOME=%S/") for v in unit.values("Environment"))
    assert unit.value("StateDirectory") is not None
    for env_file in unit.values("EnvironmentFile"):
        assert env_file.removeprefix("-").startswith("/etc/genja/")
    assert unit.value("WantedBy", "Install") == "multi-user.target"


def test_the_agent_dials_out_only() -> None:
    unit = Unit.load(AGENT)
    (command,) = unit.values("ExecStart")
    assert command.split()[0] == "/opt/genja/bin/genja-agent"
    assert "--settings /etc/genja/agent.yaml" in command
    assert "--listen" not in command
    assert unit.value("SocketBindDeny") == "any"


@pytest.mark.parametrize("tokens", [False, True], ids=["certificates", "tokens"])
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path, tokens: bool) -> None:
    """No unknown key, bad value or missing command, drop-ins included. In the user scope, with
    a runtime dir of its own: the system scope would leave a file in /run/systemd. The
    commands are this checkout's (verify checks that they exist)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    units = tmp_path / "units"
    units.mkdir()
    for name in (COORDINATOR, AGENT):
        text = (DEPLOY / name).read_text()
        (units / name).write_text(
            text.replace("/opt/genja/bin/", f"{Path(sys.executable).parent}/")
        )
        if tokens:
            (units / f"{name}.d").mkdir()
            shutil.copy(DROPINS[name], units / f"{name}.d" / "tokens.conf")
    done = subprocess.run(
        ["systemd-analyze", "--user", "verify", "--man=no",
         str(units / COORDINATOR), str(units / "genja-agent@jump1-a.service")],
        capture_output=True, text=True, timeout=120, check=False, cwd=units,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


class Services:
    """The fake root of one test: /etc/genja as the README lays it out, in `sandbox.folder`."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.root = sandbox.folder / "root"
        self.etc = self.root / "etc" / "genja"

    def remap(self, text: str) -> str:
        return text.replace("/etc/genja", str(self.etc)).replace(
            "/opt/genja/bin/", f"{self.sandbox.bin}/"
        )

    def resolve(self, unit: Unit, instance: str = "") -> Resolved:
        return resolve(
            unit, instance=instance,
            credentials=self.root / "run" / "credentials" / (instance or "coordinator"),
            state_root=self.root / "var" / "lib", remap=self.remap,
        )  # fmt: skip

    def start(self, unit: Unit, resolved: Resolved, log: str) -> subprocess.Popen[str]:
        box = self.sandbox
        return start(
            unit, resolved, account=box.account, python=box.python, workdir=box.folder,
            log=box.folder / log, extra_env=box.env,
        )  # fmt: skip


@pytest.fixture
def services(sandbox: Sandbox) -> Services:
    if shutil.which("systemd-analyze") is None:  # the system call filters' contents
        pytest.skip("systemd-analyze is not installed")
    return Services(sandbox)


def secret(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(0o600)
    return path


def lay_out_etc(services: Services, ca: CertificateAuthority, *, tokens: bool) -> None:
    """/etc/genja for a coordinator and one agent, jump1-a of pool jump1, as the README lays it
    out, with certificates or with tokens (and the drop-ins); every file root's."""
    etc = services.etc
    etc.mkdir(parents=True)
    for part in (etc.parent.parent, etc.parent, etc):
        part.chmod(0o755)
    shutil.copy(ca.cert, etc / "ca.pem")
    server = ca.issue("coordinator", "coordinator", server=True)
    shutil.copy(server.cert, etc / "coordinator.pem")
    secret(etc / "coordinator.key", server.key.read_bytes())
    options = (DEPLOY / "coordinator.env").read_text()
    assert "--listen 0.0.0.0:50051 --agents 4 --tls-client-ca /etc/genja/ca.pem" in options
    # Loopback only, one local agent; with tokens only, no client certificates (as it says).
    options = options.replace("0.0.0.0:50051 --agents 4", "127.0.0.1:0 --agents 1")
    if tokens:
        options = options.replace(" --tls-client-ca /etc/genja/ca.pem", "")
    (etc / "coordinator.env").write_text(options)
    shutil.copy(DEPLOY / "agent.env", etc / "agent.env")
    shutil.copy(DEPLOY / "agent.yaml", etc / "agent.yaml")
    agent = etc / "agents" / "jump1-a"
    if tokens:
        secret(etc / "tokens" / "ops.token", f"ops-{os.getpid()}\n")
        secret(etc / "tokens" / "jump1.token", f"jump1-{os.getpid()}\n")
        secret(agent / "token", f"jump1-{os.getpid()}\n")
    else:
        issued = ca.issue("jump1-a", "jump1-a", pools=("jump1",))
        secret(agent / "cert.pem", issued.cert.read_bytes())
        secret(agent / "key.pem", issued.key.read_bytes())
    for path in etc.rglob("*"):
        os.chown(path, 0, 0)


def client_options(address: str, ca: CertificateAuthority, *, tokens: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"coordinator": address, "coordinator_tls_ca": str(ca.cert)}
    if tokens:
        token = secret(ca.folder / "client" / "ops.token", f"ops-{os.getpid()}\n")
        return options | {"coordinator_token_file": str(token)}
    alice = ca.issue("alice", "alice")
    return options | {
        "coordinator_tls_cert": str(alice.cert),
        "coordinator_tls_key": str(alice.key),
    }


def secret_paths(argv: list[str]) -> list[str]:
    """The files argv's token and key options name."""
    return [
        value.partition("=")[2] or value
        for option, value in itertools.pairwise(argv)
        if option in SECRET_OPTIONS
    ]


@task(name="whoami", connection_plugin_name="ssh")
class WhoAmI:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        login = context.connection().execute_command("id -un").strip()  # a real SSH login
        return TaskSuccessResult(
            result={"uid": os.getuid(), "login": login, "home": os.environ["HOME"]}
        )


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize("tokens", [False, True], ids=["certificates", "tokens"])
def test_the_units_command_lines_serve_a_run_confined_as_systemd_would(
    services: Services, sshd: SSHServer, tokens: bool
) -> None:
    sandbox = services.sandbox
    ca = CertificateAuthority(sandbox.folder / "pki")
    lay_out_etc(services, ca, tokens=tokens)
    coordinator_unit = Unit.load(COORDINATOR, [DROPINS[COORDINATOR]] if tokens else [])
    agent_unit = Unit.load(AGENT, [DROPINS[AGENT]] if tokens else [])

    coordinator = services.resolve(coordinator_unit)
    paths = secret_paths(coordinator.argv)
    assert len(paths) == (3 if tokens else 1)
    for path in paths:  # read from the credential copies, never from /etc/genja itself
        assert path.startswith(coordinator.specifiers["d"] + "/")
    server = services.start(coordinator_unit, coordinator, "coordinator.log")
    agent_process = None
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "listening on 127.0.0.1:" in line, sandbox.log("coordinator.log")
        address = line.split()[-1]
        # This agent's own environment file points it at the test's coordinator.
        (services.etc / "agent-jump1-a.env").write_text(f"GENJA_COORDINATOR={address}\n")
        agent = services.resolve(agent_unit, "jump1-a")
        assert agent.argv[agent.argv.index("--agent-id") + 1] == "jump1-a"
        for path in secret_paths(agent.argv):
            assert path.startswith(agent.specifiers["d"] + "/")
        if "--settings" not in genja_agent_help():  # until agents read their own settings
            at = agent.argv.index("--settings")
            del agent.argv[at : at + 2]
        agent_process = services.start(agent_unit, agent, "agent.log")
        wait_for(
            lambda: (
                "agent jump1-a (pid" in sandbox.log("coordinator.log")
                or agent_process.poll() is not None
            ),
            "the agent to connect",
        )
        assert agent_process.poll() is None, sandbox.log("agent.log")

        hosts = {
            "core-1": sshd_host(sshd),  # the coordinator's local agent
            "edge-1": sshd_host(sshd, agent_pool="jump1"),
            "edge-2": sshd_host(sshd, agent_pool="jump1"),
        }
        settings = genja.Settings.from_dict(
            {"runner": {"options": client_options(address, ca, tokens=tokens)}}
        )
        with genja.Genja.from_hosts(hosts, settings) as g:
            results = g.run_task(WhoAmI)
    finally:
        if agent_process is not None:
            stop(agent_process)
        stop(server)
    assert server.returncode == 0, sandbox.log("coordinator.log")[-3000:]
    assert results.host_summary().passed == 3, results.to_dict()
    state = services.root / "var" / "lib"
    for host in hosts:
        outcome = results[host]
        assert isinstance(outcome, TaskSuccessResult)
        assert outcome.execution_metadata is not None
        agent = outcome.execution_metadata.agent
        home = state / ("genja-coordinator" if agent == "local-0" else "genja-agent-jump1-a")
        assert agent == ("local-0" if host == "core-1" else "jump1-a")
        # The unit's user, not root, whose HOME is the unit's state folder.
        assert outcome.result == {
            "uid": sandbox.account.uid, "login": sshd.username, "home": str(home)
        }  # fmt: skip
        # accept-new: the agent learned the device's key there.
        assert (home / ".ssh" / "known_hosts").exists()


def genja_agent_help() -> str:
    return subprocess.run(
        [sys.executable, "-m", "agent", "--help"], capture_output=True, text=True, check=True
    ).stdout


CANARY = """
import mmap, os, socket, stat
seen = {"umask": oct(os.umask(0o077))}
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)
    seen["netlink"] = "allowed"
except OSError as error:
    seen["netlink"] = error.errno
try:
    os.chown("/", -1, -1)
    seen["chown"] = "allowed"
except OSError as error:
    seen["chown"] = error.errno
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    seen["wx"] = "allowed"
except OSError as error:
    seen["wx"] = error.errno
with socket.socket(socket.AF_INET6) as s:
    seen["inet6"] = "allowed"
print(seen)
"""


@pytest.mark.parametrize("name", [COORDINATOR, AGENT])
def test_the_sandbox_of_these_tests_confines_as_the_units_say(
    services: Services, name: str
) -> None:
    sandbox = services.sandbox
    """What the run above stands on: the unit's address families, system call filter and
    MemoryDenyWriteExecute= are in force in the processes it starts."""
    unit = Unit.load(name)
    resolved = Resolved(
        argv=[sandbox.python, "-c", CANARY], env={}, credentials={}, state_directory=None,
        specifiers={"d": str(sandbox.folder / f"credentials-{name}"), "S": ""},
    )  # fmt: skip
    process = services.start(unit, resolved, f"{name}.log")
    out, _ = process.communicate(timeout=60)
    seen = ast.literal_eval(out.strip())
    assert seen["umask"] == "0o77"
    assert seen["netlink"] == errno.EPERM
    assert seen["chown"] == errno.EPERM
    assert seen["inet6"] == "allowed"
    release = tuple(int(x) for x in os.uname().release.split(".")[:2])
    if release >= (6, 3):  # PR_SET_MDWE
        assert seen["wx"] == errno.EACCES
