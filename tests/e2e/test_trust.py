"""Who may run code on the agents, and which hosts an agent may see: `genja-coordinator serve`,
`genja-agent` and clients as real processes, with real certificates made for each test module
(tests/servers/pki.py), over TCP loopback and unix sockets.

The secret scan that covers every output of a run is in test_secret_scan.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import genja
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task
from tests.servers.accounts import Account, accounts_available, throwaway_account
from tests.servers.coordinator import wait_for
from tests.servers.pki import CertificateAuthority, Issued
from tests.servers.processes import stop, write_secret

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
REPO = Path(__file__).parents[2]


@task(name="whoami")
class WhoAmI:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        uid = os.getuid()
        return TaskSuccessResult(summary=f"uid={uid}", metadata={"pid": os.getpid(), "uid": uid})


@dataclass
class Coordinator:
    process: subprocess.Popen[str]
    addresses: list[str]
    log: Path

    @property
    def address(self) -> str:
        return self.addresses[0]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def runs_started(self) -> int:
        return self.log_text().count(" started at ")

    def wait_for_agent(self, agent_id: str) -> None:
        wait_for(lambda: f"agent {agent_id} (pid" in self.log_text(), f"agent {agent_id}")


def serve(folder: Path, *args: str) -> Coordinator:
    """Start `genja-coordinator serve` with one local agent; its log goes to a file."""
    log = folder / f"coordinator-{time.monotonic_ns()}.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [str(BIN / "genja-coordinator"), "serve", "--agents", "1", *args],
            stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=REPO,
        )  # fmt: skip
    assert process.stdout is not None
    addresses = []
    for _ in range(args.count("--listen")):
        line = process.stdout.readline()
        if "listening on" not in line:
            stop(process)
            raise AssertionError(f"the coordinator did not start: {log.read_text()[-3000:]}")
        addresses.append(line.split()[-1])
    return Coordinator(process, addresses, log)


def agent(address: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "genja-agent"), "--coordinator", address, *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip


def refused_agent(address: str, *args: str) -> str:
    """Run an agent that the coordinator must refuse: it exits 2; its stderr."""
    process = agent(address, *args)
    try:
        assert process.wait(timeout=60) == 2
        assert process.stderr is not None
        return process.stderr.read()
    finally:
        stop(process)


class Lines:
    """An agent's stderr, read on a thread so a test can wait for a line without blocking."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.text = ""
        assert process.stderr is not None
        stream = process.stderr
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.text += line


def run_settings(address: str, **options: Any) -> genja.Settings:
    return genja.Settings.from_dict({"runner": {"options": {"coordinator": address, **options}}})


def hosts(pool: str | None = None, count: int = 3) -> dict[str, Any]:
    data = {"agent_pool": pool} if pool else {}
    return {f"{pool or 'dc'}-{i}": {"data": data} for i in range(count)}


# ---------------------------------------------------------------- refusing to start


def coordinator_refuses(*args: str) -> str:
    done = subprocess.run(
        [str(BIN / "genja-coordinator"), "serve", "--agents", "0", *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "listening" not in done.stdout
    assert "Traceback" not in done.stderr
    return done.stderr


def test_serve_refuses_to_start_without_client_authentication() -> None:
    err = coordinator_refuses("--listen", "127.0.0.1:0")
    assert "no client authentication: pass --client-token-file FILE or --tls-client-ca" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "0.0.0.0:0", "--insecure"], "--insecure is only accepted when every"),
        (["--listen", "127.0.0.1:0", "--listen", "[::]:0", "--insecure"], "[::]:0: --insecure"),
        (["--listen", "0.0.0.0:0", "--client-token-file", "T"], "reaches beyond loopback"),
        (["--listen", "127.0.0.1:0", "--insecure", "--client-token-file", "T"], "leave it out"),
        (["--listen", "127.0.0.1:0", "--insecure", "--agent-token-file", "local=T"], "reserved"),
        (["--listen", "127.0.0.1:0", "--insecure", "--agent-token-file", "T"], "POOL=FILE"),
    ],
)
def test_serve_refuses_insecure_setups(tmp_path: Path, args: list[str], message: str) -> None:
    token = write_secret(tmp_path / "t.token", "tok-abc")
    args = [str(token) if a == "T" else a.replace("=T", f"={token}") for a in args]
    assert message in coordinator_refuses(*args)


def test_token_and_key_files_open_to_others_are_refused(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "pki")
    server = ca.issue("server", "coordinator", server=True)
    loose = write_secret(tmp_path / "loose.token", "tok-loose-123", 0o644)
    err = coordinator_refuses("--listen", "127.0.0.1:0", "--client-token-file", str(loose))
    assert f"--client-token-file {loose}: permissions 0644 are too open" in err
    assert "tok-loose-123" not in err
    good = write_secret(tmp_path / "good.token", "tok-good")
    err = coordinator_refuses(
        "--listen", "127.0.0.1:0", "--client-token-file", str(good),
        "--agent-token-file", f"jump1={loose}",
    )  # fmt: skip
    assert f"--agent-token-file {loose}: permissions 0644" in err
    server.key.chmod(0o640)
    err = coordinator_refuses(
        "--listen", "127.0.0.1:0", "--client-token-file", str(good),
        "--tls-cert", str(server.cert), "--tls-key", str(server.key),
    )  # fmt: skip
    assert f"--tls-key {server.key}: permissions 0640 are too open" in err

    done = subprocess.run(
        [str(BIN / "genja-agent"), "--coordinator", "127.0.0.1:1", "--insecure",
         "--agent-id", "edge-a", "--token-file", str(loose)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"--token-file {loose}: permissions 0644 are too open" in done.stderr

    with pytest.raises(genja.ConfigurationError, match="permissions 0644 are too open"):
        genja.Genja.from_hosts(
            hosts(), run_settings("127.0.0.1:1", coordinator_token_file=str(loose))
        ).run_task(WhoAmI)


# ---------------------------------------------------------------- mutual TLS


@dataclass
class Pki:
    ca: CertificateAuthority
    server: Issued
    alice: Issued
    other_ca: CertificateAuthority
    stranger: Issued
    expired: Issued
    jump1: Issued
    folder: Path
    extra: dict[str, Path] = field(default_factory=dict)

    def client(self, issued: Issued | None = None, **options: Any) -> dict[str, Any]:
        settings: dict[str, Any] = {"coordinator_tls_ca": str(self.ca.cert)}
        if issued is not None:
            settings |= {
                "coordinator_tls_cert": str(issued.cert),
                "coordinator_tls_key": str(issued.key),
            }
        return settings | options


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(folder / "ca")
    other = CertificateAuthority(folder / "other", "some other CA")
    return Pki(
        ca=ca,
        server=ca.issue("server", "coordinator", server=True),
        alice=ca.issue("alice", "alice"),
        other_ca=other,
        stranger=other.issue("stranger", "alice"),
        expired=ca.issue("expired", "old-alice", expired=True),
        jump1=ca.issue("edge-a", "edge-a", pools=("jump1",)),
        folder=folder,
    )


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[Coordinator]:
    server = serve(
        pki.folder,
        "--listen", "127.0.0.1:0",
        "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key),
        "--tls-client-ca", str(pki.ca.cert),
    )  # fmt: skip
    yield server
    stop(server.process)


def test_a_client_certificate_runs_tasks_and_the_run_is_audited(
    pki: Pki, tls_server: Coordinator
) -> None:
    settings = run_settings(tls_server.address, **pki.client(pki.alice))
    with genja.Genja.from_hosts(hosts(count=4), settings) as g:
        results = g.run_task(WhoAmI)
    assert results.host_summary().passed == 4
    wait_for(
        lambda: any(
            " ended at " in x and "4 hosts" in x for x in tls_server.log_text().splitlines()
        ),
        "the audit's end line",
    )
    audit = [line for line in tls_server.log_text().splitlines() if ".audit " in line]
    started = next(line for line in audit if " started at " in line and "4 hosts" in line)
    ended = next(line for line in audit if " ended at " in line and "4 hosts" in line)
    for line in (started, ended):
        assert "client certificate 'CN=alice,O=genja tests'" in line
        assert "tasks whoami; code sha256:" in line
        assert "4 hosts" in line
    assert ", finished after " in ended


@pytest.mark.parametrize("which", ["stranger", "expired", None])
def test_clients_without_a_good_certificate_are_refused(
    pki: Pki, tls_server: Coordinator, which: str | None
) -> None:
    before = tls_server.runs_started()
    issued = getattr(pki, which) if which else None
    settings = run_settings(tls_server.address, **pki.client(issued))
    with (
        genja.Genja.from_hosts(hosts(), settings) as g,
        pytest.raises(genja.RunError, match=r"UNAVAILABLE.*with TLS"),
    ):
        g.run_task(WhoAmI)
    assert tls_server.runs_started() == before


def test_a_client_verifies_the_coordinator(pki: Pki, tls_server: Coordinator) -> None:
    settings = run_settings(
        tls_server.address, **pki.client(pki.alice, coordinator_tls_ca=str(pki.other_ca.cert))
    )
    with genja.Genja.from_hosts(hosts(), settings) as g, pytest.raises(genja.RunError):
        g.run_task(WhoAmI)


def test_an_agent_certificate_cannot_run_tasks(pki: Pki, tls_server: Coordinator) -> None:
    settings = run_settings(tls_server.address, **pki.client(pki.jump1))
    with (
        genja.Genja.from_hosts(hosts(), settings) as g,
        pytest.raises(genja.ConfigurationError, match=r"PERMISSION_DENIED.*an agent's"),
    ):
        g.run_task(WhoAmI)


def test_an_agent_serves_only_the_pools_its_certificate_names(
    pki: Pki, tls_server: Coordinator
) -> None:
    credential = ("--tls-ca", str(pki.ca.cert), "--tls-cert", str(pki.jump1.cert),
                  "--tls-key", str(pki.jump1.key))  # fmt: skip
    err = refused_agent(tls_server.address, *credential, "--pool", "local")
    assert "pool 'local' is reserved for the coordinator's own agents" in err
    err = refused_agent(tls_server.address, *credential, "--pool", "jump2")
    assert "does not allow pool 'jump2' (it allows: jump1)" in err
    err = refused_agent(tls_server.address, *credential, "--agent-id", "edge-b")
    assert "agent id 'edge-b' does not match its certificate 'CN=edge-a" in err

    edge = agent(tls_server.address, *credential)  # its id and pool come from the certificate
    try:
        tls_server.wait_for_agent("edge-a")
        settings = run_settings(tls_server.address, **pki.client(pki.alice))
        with genja.Genja.from_hosts({**hosts(), **hosts("jump1")}, settings) as g:
            results = g.run_task(WhoAmI)
        assert results.host_summary().passed == 6
        pids = {h: r.metadata["pid"] for h, r in results.hosts.items()}  # type: ignore[union-attr]
        assert {pids[f"jump1-{i}"] for i in range(3)} == {edge.pid}
        assert edge.pid not in {pids[f"dc-{i}"] for i in range(3)}
    finally:
        stop(edge)


def test_a_plaintext_agent_cannot_reach_a_tls_coordinator(
    pki: Pki, tls_server: Coordinator, tmp_path: Path
) -> None:
    token = write_secret(tmp_path / "jump1.token", "tok-plaintext-agent")
    plaintext = agent(
        tls_server.address, "--insecure", "--agent-id", "edge-p", "--token-file", str(token)
    )
    try:
        lines = Lines(plaintext)
        wait_for(lambda: "reconnecting" in lines.text, "the plaintext agent to give up once")
        assert "UNAVAILABLE" in lines.text or "stream ended" in lines.text
        assert "agent edge-p (pid" not in tls_server.log_text()
    finally:
        stop(plaintext)


# ---------------------------------------------------------------- per-pool tokens


@pytest.fixture(scope="module")
def token_server() -> Iterator[Coordinator]:
    """A plaintext loopback coordinator with per-pool tokens, also on a unix socket in a folder
    every user may enter (so only the socket's own mode keeps other users out)."""
    folder = Path(tempfile.mkdtemp(prefix="genja-trust-"))
    folder.chmod(0o755)
    try:
        for name, text in (("ops", "tok-ops"), ("jump1", "tok-jump1"), ("jump2", "tok-jump2")):
            write_secret(folder / f"{name}.token", text)
        server = serve(
            folder,
            "--listen", "127.0.0.1:0", "--listen", f"unix:{folder / 'coordinator.sock'}",
            "--client-token-file", str(folder / "ops.token"),
            "--agent-token-file", f"jump1={folder / 'jump1.token'}",
            "--agent-token-file", f"jump2={folder / 'jump2.token'}",
        )  # fmt: skip
        try:
            yield server
        finally:
            stop(server.process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_pool_tokens_do_not_cross(token_server: Coordinator) -> None:
    folder = token_server.log.parent
    jump1 = ("--insecure", "--token-file", str(folder / "jump1.token"))
    err = refused_agent(token_server.address, *jump1, "--agent-id", "edge-x", "--pool", "jump2")
    assert "token of pool 'jump1' does not allow pool 'jump2' (it allows: jump1)" in err
    assert "tok-jump" not in err
    err = refused_agent(token_server.address, *jump1, "--agent-id", "local-evil", "--pool", "local")
    assert "pool 'local' is reserved for the coordinator's own agents" in err
    ops = ("--insecure", "--token-file", str(folder / "ops.token"))
    err = refused_agent(token_server.address, *ops, "--agent-id", "edge-y", "--pool", "jump1")
    assert "missing or wrong agent token" in err

    edge = agent(token_server.address, *jump1, "--agent-id", "edge-1")  # pool from the token
    try:
        token_server.wait_for_agent("edge-1")
        assert "edge-1 (pid" in token_server.log_text()
        assert "pool jump1, genja " in token_server.log_text()
        assert "connected with token of pool 'jump1'" in token_server.log_text()
    finally:
        stop(edge)


def test_a_tls_agent_does_not_talk_to_a_plaintext_coordinator(
    token_server: Coordinator, pki: Pki
) -> None:
    folder = token_server.log.parent
    tls_agent = agent(
        token_server.address, "--tls-ca", str(pki.ca.cert),
        "--token-file", str(folder / "jump1.token"), "--agent-id", "edge-t",
    )  # fmt: skip
    try:
        lines = Lines(tls_agent)
        wait_for(lambda: "reconnecting" in lines.text, "the TLS agent to give up once")
        assert "handshake" in lines.text.lower()
        assert "agent edge-t (pid" not in token_server.log_text()
    finally:
        stop(tls_agent)


class Recorder:
    """A listener on loopback that keeps every byte it is sent; with `tls`, it speaks TLS with
    that certificate and keeps the decrypted bytes."""

    def __init__(self, tls: Issued | None = None) -> None:
        self.received = b""
        self.handshake_failed = threading.Event()
        self.connected = threading.Event()
        self._context = None
        if tls is not None:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(tls.cert, tls.key)
            self._context.set_alpn_protocols(["h2"])
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connected.set()
            with connection:
                # Long enough for a client's first flight; a TLS client then waits for us.
                connection.settimeout(10 if self._context is not None else 1)
                try:
                    stream = connection
                    if self._context is not None:
                        stream = self._context.wrap_socket(connection, server_side=True)
                    while chunk := stream.recv(65536):
                        self.received += chunk
                except ssl.SSLError:
                    self.handshake_failed.set()
                except OSError:
                    pass

    def close(self) -> None:
        self._socket.close()


@pytest.mark.parametrize("speaks_tls", [False, True])
def test_an_agent_shows_its_token_only_to_a_coordinator_it_verified(
    pki: Pki, tmp_path: Path, speaks_tls: bool
) -> None:
    """A listener that is not the coordinator (plaintext, or TLS with a certificate from
    another CA) never sees the agent's token or certificate."""
    token = write_secret(tmp_path / "jump1.token", "tok-must-stay-home-4471")
    impostor = pki.other_ca.issue("impostor", "coordinator", server=True) if speaks_tls else None
    recorder = Recorder(impostor)
    edge = agent(
        f"127.0.0.1:{recorder.port}", "--tls-ca", str(pki.ca.cert),
        "--tls-cert", str(pki.jump1.cert), "--tls-key", str(pki.jump1.key),
        "--token-file", str(token),
    )  # fmt: skip
    try:
        lines = Lines(edge)
        wait_for(lambda: "reconnecting" in lines.text, "the agent to give up once")
        assert recorder.connected.is_set()
        if speaks_tls:
            assert recorder.handshake_failed.is_set() or not recorder.received
            assert recorder.received == b""
        else:
            assert recorder.received.startswith(b"\x16\x03")  # a TLS ClientHello, nothing else
        assert b"tok-must-stay-home-4471" not in recorder.received
        assert pki.jump1.key.read_bytes() not in recorder.received
    finally:
        stop(edge)
        recorder.close()


# ---------------------------------------------------------------- another local user


@pytest.fixture
def other_user() -> Account:
    reason = accounts_available()
    if reason is not None or shutil.which("setpriv") is None:
        pytest.skip(reason or "setpriv (util-linux) is not installed")
    return throwaway_account()


def test_another_local_user_needs_a_token_on_tcp_and_cannot_use_the_unix_socket(
    token_server: Coordinator, other_user: Account
) -> None:
    """The issue's attack: an unprivileged local user sends a task to a coordinator running as
    root. Without the client token it is refused on TCP (exit 2); the unix socket is the
    coordinator user's own. With a token of its own, the same user may run code: the agents'
    user (root here) runs it, which is what a client token allows (README: threat model)."""
    folder = Path(tempfile.mkdtemp(prefix="genja-trust-"))
    try:
        folder.chmod(0o755)
        wrong = write_secret(folder / "mine.token", "tok-guessed")
        right = write_secret(folder / "ops.token", "tok-ops")
        for path in (wrong, right):
            os.chown(path, other_user.uid, other_user.gid)
        unix, tcp = token_server.addresses[1], token_server.address
        assert os.stat(unix.removeprefix("unix:")).st_mode & 0o777 == 0o600

        def run_as_other_user(address: str, token: Path) -> subprocess.CompletedProcess[str]:
            settings = folder / f"settings-{time.monotonic_ns()}.yaml"
            settings.write_text(
                textwrap.dedent(
                    f"""\
                    inventory: {{options: {{hosts_file: hosts.yaml}}}}
                    runner:
                      options: {{coordinator: "{address}", coordinator_token_file: {token}}}
                    """
                )
            )
            (folder / "hosts.yaml").write_text("r1: {}\nr2: {}\n")
            return subprocess.run(
                ["setpriv", f"--reuid={other_user.uid}", f"--regid={other_user.gid}",
                 "--clear-groups", str(BIN / "genja"), "run", f"{__name__}:WhoAmI",
                 "-s", str(settings)],
                capture_output=True, text=True, timeout=120, check=False, cwd=folder,
                env={"PATH": os.environ["PATH"], "HOME": "/", "LANG": "C.UTF-8"},
            )  # fmt: skip

        before = token_server.runs_started()
        done = run_as_other_user(tcp, wrong)
        assert done.returncode == 2, done.stderr
        assert "refused this client (UNAUTHENTICATED): missing or wrong client token" in done.stderr
        assert "Traceback" not in done.stderr

        done = run_as_other_user(unix, right)
        assert done.returncode == 1, done.stderr
        assert "UNAVAILABLE" in done.stderr
        assert "Permission denied" in done.stderr or "permission" in done.stderr.lower()
        assert token_server.runs_started() == before

        done = run_as_other_user(tcp, right)
        assert done.returncode == 0, done.stderr
        assert "uid=0" in done.stdout
        wait_for(lambda: "client token 'ops'" in token_server.log_text(), "the audit line")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
