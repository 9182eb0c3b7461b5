"""deploy/container and deploy/kubernetes: an agent pool's image and its Deployment.

No container engine or cluster runs here. What can be checked is: the Containerfile's
instructions (an unprivileged USER, no port, no credential or source in a layer); that what
.dockerignore lets into the build context installs (a wheel built from exactly those files,
offline, runs genja-agent); the manifest's security properties and that nothing dials in; and
the pod's commands, run as the pod would run them (tests/deploy/_sandbox.py): the init
container copies the Secret's token (0440, through the pod's group) into memory as 0400, and
the agent container's arguments, with Kubernetes' $(VAR) expansion, serve a coordinator.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import genja
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task
from tests.deploy._sandbox import SERVICE_PATH, Sandbox, run_confined
from tests.servers.coordinator import wait_for
from tests.servers.pki import CertificateAuthority
from tests.servers.processes import stop, write_secret

REPO = Path(__file__).parents[2]
CONTAINERFILE = REPO / "deploy" / "container" / "Containerfile"
MANIFEST = REPO / "deploy" / "kubernetes" / "agent-pool.yaml"
SECRET_WORDS = re.compile(r"token|key|password|secret", re.IGNORECASE)


# ---------------------------------------------------------------- the Containerfile


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in CONTAINERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = f"{pending} {line}".strip() if pending else line
        if line.endswith("\\"):
            pending = line[:-1].strip()
            continue
        pending = ""
        word, _, rest = line.partition(" ")
        found.append((word.upper(), rest.strip()))
    return found


def image_user() -> tuple[int, int]:
    users = [args for word, args in instructions() if word == "USER"]
    uid, _, gid = users[-1].partition(":")
    return int(uid), int(gid or uid)


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in instructions():
        if word == "ENV":
            env |= dict(part.split("=", 1) for part in shlex.split(args))
    return env


def test_the_image_runs_genja_agent_as_an_unprivileged_user_and_exposes_nothing() -> None:
    steps = instructions()
    words = [word for word, _ in steps]
    (base,) = [args for word, args in steps if word == "FROM"]
    assert re.fullmatch(r"docker\.io/library/python:\$\{PYTHON\}-slim", base)
    assert "EXPOSE" not in words
    # Numeric, so that Kubernetes can check runAsNonRoot; the last word about users.
    uid, gid = image_user()
    assert uid != 0
    assert gid != 0
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    (entrypoint,) = [json.loads(args) for word, args in steps if word == "ENTRYPOINT"]
    assert entrypoint == ["tini", "--", "genja-agent"]
    # The project is installed from the build context, mounted for that step only: no COPY
    # or ADD puts sources or credentials in a layer.
    assert not {"COPY", "ADD"} & set(words)
    installs = [args for word, args in steps if word == "RUN" and "pip install" in args]
    assert len(installs) == 1
    assert "--mount=type=bind,source=.,target=/src" in installs[0]
    assert '"/src[${GENJA_EXTRAS}]"' in installs[0]
    for word, args in steps:
        if word in ("ENV", "ARG"):
            names = [part.split("=")[0] for part in shlex.split(args) if "=" in part]
            assert not [n for n in names if SECRET_WORDS.search(n)], (word, args)


def context_files() -> list[Path]:
    """The files .dockerignore lets into the build context (its last matching pattern decides,
    for a file or any folder above it), relative to the project root."""
    rules = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        rules.append((re.compile(regex), keep))

    def included(relative: str) -> bool:
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        verdict = True
        for regex, keep in rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                verdict = keep
        return verdict

    files = []
    for folder, subfolders, names in os.walk(REPO):
        subfolders[:] = [d for d in subfolders if d not in (".git", ".venv")]
        for name in names:
            relative = Path(folder, name).relative_to(REPO)
            if included(relative.as_posix()):
                files.append(relative)
    return files


def test_the_build_context_holds_the_package_and_nothing_else() -> None:
    files = context_files()
    tops = {f.parts[0] for f in files}
    assert tops == {"pyproject.toml", "README.md", "agent", "genja", "genja_rpc"}
    for path in files:
        assert "__pycache__" not in path.parts
        assert path.suffix not in (".key", ".token")


@pytest.mark.timeout(300)
def test_the_build_context_installs_and_runs_genja_agent(tmp_path: Path) -> None:
    """What the image's pip install does, offline: a wheel from exactly the build context's
    files (with this venv's setuptools), installed apart, runs."""
    source = tmp_path / "src"
    for relative in context_files():
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, source / relative)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True, timeout=240, env=env,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("genja-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert "genja-agent = agent._cli:main" in scripts
    assert "genja_rpc/_generated/genja/v1/genja_pb2.py" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, timeout=240, env=env,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", "import agent, sys; print(agent.__file__); sys.argv[0] = "
         "'genja-agent'; from agent._cli import main; main(['--help'])"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        env={**env, "PYTHONPATH": str(target)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(target / "agent"))
    assert "usage: genja-agent" in done.stdout


# ---------------------------------------------------------------- the Kubernetes manifest


def documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def deployment() -> dict[str, Any]:
    (found,) = [doc for doc in documents() if doc["kind"] == "Deployment"]
    return found


def pod() -> dict[str, Any]:
    spec: dict[str, Any] = deployment()["spec"]["template"]["spec"]
    return spec


def test_the_manifest_declares_no_service_and_no_port() -> None:
    kinds = [doc["kind"] for doc in documents()]
    assert sorted(kinds) == ["Deployment", "NetworkPolicy"]
    spec = pod()
    assert not spec.get("hostNetwork")
    for container in spec["containers"] + spec["initContainers"]:
        assert "ports" not in container
    (policy,) = [doc for doc in documents() if doc["kind"] == "NetworkPolicy"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in policy["spec"]  # no rule: nothing may connect
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"] == labels


def test_the_pod_runs_unprivileged_on_a_read_only_root() -> None:
    spec = pod()
    context = spec["securityContext"]
    uid, gid = image_user()
    assert context["runAsNonRoot"] is True
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (uid, gid, gid)
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"] + spec["initContainers"]:
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}


def test_the_token_reaches_the_agent_only_as_a_0400_copy_in_memory() -> None:
    spec = pod()
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    (secret_volume,) = [name for name, volume in volumes.items() if "secret" in volume]
    # Through the pod's group (fsGroup) an unprivileged user can read the Secret's files: 0440.
    assert volumes[secret_volume]["secret"]["defaultMode"] == 0o440
    (init,) = spec["initContainers"]
    (agent,) = spec["containers"]
    mounts = {m["name"]: m for m in init["volumeMounts"]}
    assert mounts[secret_volume]["readOnly"] is True
    assert secret_volume not in {m["name"] for m in agent["volumeMounts"]}
    copy = init["command"]
    assert copy[:3] == ["install", "-m", "0400"]
    target = Path(copy[-1])
    (memory,) = [m for m in agent["volumeMounts"] if target.is_relative_to(m["mountPath"])]
    assert memory["readOnly"] is True
    assert volumes[memory["name"]]["emptyDir"]["medium"] == "Memory"
    args = agent["args"]
    assert f"--token-file={target}" in args
    assert "--settings=/etc/genja/agent.yaml" in args
    assert any(arg.startswith("--tls-ca=") for arg in args)
    assert "--insecure" not in " ".join(args)


# ---------------------------------------------------------------- the pod's commands, run


@task(name="whereami")
class WhereAmI:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult(result={"uid": os.getuid(), "home": os.environ["HOME"]})


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) in a container's command and args."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env[m[1]], text)


class Pod:
    """The pod's volumes as the kubelet makes them, each a folder of `folder`: the Secret's
    files root's with the pod's group (fsGroup), mode 0440; the ConfigMap's; emptyDirs
    writable by the pod's group."""

    def __init__(self, folder: Path, spec: dict[str, Any]) -> None:
        self.volumes = {
            mount["mountPath"]: folder / mount["name"]
            for container in spec["initContainers"] + spec["containers"]
            for mount in container["volumeMounts"]
        }

    def make(self, gid: int, *, token: Path, ca: CertificateAuthority) -> None:
        for mount, path in self.volumes.items():
            path.mkdir(parents=True)
            if mount == "/var/run/secrets/genja":
                shutil.copy(token, path / "token")
                os.chown(path / "token", 0, gid)
                (path / "token").chmod(0o440)
                path.chmod(0o755)
            elif mount == "/etc/genja":
                shutil.copy(ca.cert, path / "ca.pem")
                shutil.copy(REPO / "deploy" / "systemd" / "agent.yaml", path / "agent.yaml")
                path.chmod(0o755)
            else:
                os.chown(path, 0, gid)
                path.chmod(0o2777)

    def remap(self, text: str) -> str:
        """A path, or --option=path, moved into its volume's folder."""
        option, sep, value = text.rpartition("=") if text.startswith("--") else ("", "", text)
        for mount, path in sorted(self.volumes.items(), key=lambda item: -len(item[0])):
            if value == mount or value.startswith(f"{mount}/"):
                return f"{option}{sep}{path}{value[len(mount) :]}"
        return text


@contextlib.contextmanager
def tls_coordinator(folder: Path, ca: CertificateAuthority, **tokens: Path) -> Iterator[str]:
    """`genja-coordinator serve` over TLS on loopback, with a client token `ops` and the agent
    token of pool `jump1`; its address."""
    issued = ca.issue("coordinator", "coordinator", server=True)
    with (folder / "coordinator.log").open("w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "genja-coordinator"), "serve", "--agents", "0",
             "--listen", "127.0.0.1:0", "--tls-cert", str(issued.cert),
             "--tls-key", str(issued.key), "--client-token-file", f"ops={tokens['ops']}",
             "--agent-token-file", f"jump1={tokens['jump1']}"],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "listening on 127.0.0.1:" in line, (folder / "coordinator.log").read_text()
        yield line.split()[-1]
    finally:
        stop(server)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_the_pods_commands_serve_a_coordinator(sandbox: Sandbox) -> None:
    spec = pod()
    (init,) = spec["initContainers"]
    (agent,) = spec["containers"]
    account, folder = sandbox.account, sandbox.folder
    ca = CertificateAuthority(folder / "pki")
    token = write_secret(folder / "pki" / "jump1.token", f"jump1-{os.getpid()}\n")
    client_token = write_secret(folder / "pki" / "ops.token", f"ops-{os.getpid()}\n")
    volumes = Pod(folder / "pod", spec)
    volumes.make(account.gid, token=token, ca=ca)
    pod_name = "genja-agent-jump1-7d4b9-x2kq9"
    agent_process = None
    with tls_coordinator(folder, ca, ops=client_token, jump1=token) as address:
        # The image's environment (its HOME a volume of the pod), then the container's.
        env = {"PATH": f"{sandbox.bin}:{SERVICE_PATH}", "HOME": volumes.remap(image_env()["HOME"])}
        env |= {variable["name"]: variable.get("value", "") for variable in agent["env"]}
        assert env["GENJA_COORDINATOR"] == "coordinator.example:50051"
        env |= {"GENJA_COORDINATOR": address, "POD_NAME": pod_name, **sandbox.env}

        copy = run_confined(
            [volumes.remap(expand(word, env)) for word in init["command"]], account=account,
            python=sandbox.python, env=env, log=folder / "init.log",
        )  # fmt: skip
        copy.communicate(timeout=60)
        assert copy.returncode == 0, sandbox.log("init.log")
        copied = Path(volumes.remap(init["command"][-1]))
        assert copied.stat().st_mode & 0o777 == 0o400
        assert (copied.stat().st_uid, copied.read_text()) == (account.uid, token.read_text())

        argv = ["genja-agent", *(volumes.remap(expand(arg, env)) for arg in agent["args"])]
        if "--settings" not in agent_help():  # until agents read their own settings
            argv = [arg for arg in argv if not arg.startswith("--settings=")]
        try:
            agent_process = run_confined(
                argv, account=account, python=sandbox.python, env=env, log=folder / "agent.log"
            )
            wait_for(
                lambda: (
                    f"agent {pod_name} (pid" in sandbox.log("coordinator.log")
                    or agent_process.poll() is not None
                ),
                "the agent to connect",
            )
            assert agent_process.poll() is None, sandbox.log("agent.log")
            options = {
                "coordinator": address, "coordinator_tls_ca": str(ca.cert),
                "coordinator_token_file": str(client_token),
            }  # fmt: skip
            hosts = {f"edge-{i}": {"data": {"agent_pool": "jump1"}} for i in range(3)}
            settings = genja.Settings.from_dict({"runner": {"options": options}})
            with genja.Genja.from_hosts(hosts, settings) as g:
                results = g.run_task(WhereAmI)
        finally:
            if agent_process is not None:
                stop(agent_process)
    assert results.host_summary().passed == 3, results.to_dict()
    for host in hosts:
        outcome = results[host]
        assert isinstance(outcome, TaskSuccessResult)
        assert outcome.execution_metadata is not None
        assert outcome.execution_metadata.agent == pod_name
        assert outcome.result == {"uid": account.uid, "home": env["HOME"]}


def agent_help() -> str:
    return subprocess.run(
        [sys.executable, "-m", "agent", "--help"], capture_output=True, text=True, check=True
    ).stdout
