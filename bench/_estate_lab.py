"""The estate's processes and networks: per pool, a jump namespace with the pool's agents and a
device namespace with an sshd on a subnet of its own; a coordinator server in the root
namespace. Linux, root.

    root namespace: the client (this process), genja-coordinator serve on a unix socket
        │ unix socket: a file, which every namespace sees; no network in between
    gjest<pid>j<i> (pool i's jump host): genja-agent (agents_per_pool of them), 10.<X>.<i>.1/24
        │ veth
    gjest<pid>d<i> (pool i's devices): one sshd on 10.<X>.<i>.10, .11, ...

Why a unix socket between the agents and the coordinator: each agent lives wholly in its
pool's namespace (its only network is that namespace's, as on a jump host), and its control
channel crosses no network at all, so nothing travels in plaintext beyond loopback and genja's
`--insecure` rule (loopback or an owner-only unix socket) holds without TLS certificates. The
root namespace has no link to any of these namespaces, and an `unreachable` route for the
whole 10.<X>.0.0/16 while the estate stands: a packet for a target from the root namespace (the
coordinator's) fails at once and never leaves the machine. `check_isolation` proves both.

Everything is removed by `close()`, on success, failure or Ctrl-C. The namespace names and the
route's metric carry this process's pid: a run killed with SIGKILL leaves them, and the next run
removes those whose owner is gone (`sweep_stale`).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
SSHD = "/usr/sbin/sshd"
PREFIX = "gjest"
# The estate loads 2 cores far past their capacity on purpose (20 agents with 150 SSH sessions
# each, 10 sshd: load ~190): a process may not run for 10 s, the default after which a client,
# coordinator or agent takes its silent peer for dead. Each side waits this long here instead.
HEARTBEAT_TIMEOUT = 60.0
SECOND_OCTETS = range(200, 230)  # 10.200-10.229: tests/servers/netns.py uses 10.238/10.239
FIRST_TARGET = 10  # targets of pool i: 10.<X>.<i>.10, .11, ...
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NAMESPACE = re.compile(rf"^{PREFIX}(\d+)[jd]\d+\b")
_ROUTE = re.compile(r"^unreachable (10\.(\d+)\.0\.0/16) metric (\d+)")


def unavailable() -> str | None:
    """Why the estate cannot be built here, or None."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path(SSHD).exists():
        return f"{SSHD} is not installed (apt-get install openssh-server)"
    probe = f"{PREFIX}{os.getpid()}j999"
    added = _ip("netns", "add", probe, check=False)
    if added.returncode != 0:
        return f"`ip netns add` is not permitted: {added.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace_processes(namespace: str) -> None:
    """SIGKILL whatever still runs in a namespace this rig made (an sshd session of a held
    host, an agent that ignored SIGTERM)."""
    pids = _ip("netns", "pids", namespace, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def sweep_stale() -> list[str]:
    """Remove the namespaces and routes of estate runs whose process is gone; what went."""
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        match = _NAMESPACE.match(line)
        if match and not _alive(int(match.group(1))):
            name = line.split()[0]
            _kill_namespace_processes(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    for line in _ip("route", "show", check=False).stdout.splitlines():
        match = _ROUTE.match(line)
        if match and int(match.group(2)) in SECOND_OCTETS and not _alive(int(match.group(3))):
            _ip("route", "del", "unreachable", match.group(1), "metric", match.group(3))
            removed.append(f"route {match.group(1)}")
    return removed


@dataclass
class Pool:
    index: int
    name: str
    jump: str  # namespace of the pool's agents
    devices: str  # namespace of its sshd
    jump_address: str
    targets: list[str]
    agent_ids: list[str] = field(default_factory=list)
    agents: list[subprocess.Popen[bytes]] = field(default_factory=list)
    sshd: subprocess.Popen[bytes] | None = None


class Estate:
    """Build with `Estate(...).build()`, always `close()` (a `with` block does)."""

    def __init__(
        self,
        pools: int,
        agents_per_pool: int,
        targets_per_pool: int,
        host_concurrency: int = 100,
        log: Callable[[str], None] = print,
    ) -> None:
        if not (1 <= pools <= 200 and 1 <= agents_per_pool <= 26 and 1 <= targets_per_pool <= 200):
            raise ValueError("1-200 pools, 1-26 agents and 1-200 targets per pool")
        self.pool_count = pools
        self.agents_per_pool = agents_per_pool
        self.targets_per_pool = targets_per_pool
        self.host_concurrency = host_concurrency
        self.log = log
        self.tag = f"{PREFIX}{os.getpid()}"
        self.username = getpass.getuser()
        self.folder = Path(tempfile.mkdtemp(prefix="genja-estate-"))
        self.pools: list[Pool] = []
        self.subnet: str | None = None
        self.route_metric = str(os.getpid())
        self.coordinator: subprocess.Popen[str] | None = None
        self.socket = self.folder / "c.sock"

    # ---------------------------------------------------------------- paths

    @property
    def address(self) -> str:
        return f"unix:{self.socket}"

    @property
    def client_token(self) -> Path:
        return self.folder / "client.token"

    @property
    def client_key(self) -> Path:
        return self.folder / "client_key"

    @property
    def coordinator_log(self) -> Path:
        return self.folder / "coordinator.log"

    def __enter__(self) -> Estate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- build

    def build(self) -> None:
        started = time.monotonic()
        swept = sweep_stale()
        if swept:
            self.log(f"  removed what an estate run killed earlier left: {', '.join(swept)}")
        second = self._claim_subnet()
        self._keys()
        for index in range(self.pool_count):
            pool = self._describe(index, second)
            self.pools.append(pool)  # before anything exists: close() removes what was made
            self._make(pool)
        for pool in self.pools:
            self._wait_for_sshd(pool)
        self._start_coordinator()
        for pool in self.pools:
            for number in range(self.agents_per_pool):
                self._start_agent(pool, f"{pool.name}-{chr(ord('a') + number)}")
        self._wait_for_agents()
        self.log(
            f"  estate up in {time.monotonic() - started:.1f} s: {self.pool_count} pools "
            f"({self.subnet}), {self.pool_count * self.agents_per_pool} agents, "
            f"{self.pool_count * self.targets_per_pool} sshd addresses, coordinator pid "
            f"{self.coordinator.pid if self.coordinator else '?'}, files in {self.folder}"
        )

    def _claim_subnet(self) -> int:
        """A 10.X.0.0/16 no route on this machine uses; its `unreachable` route claims it (a
        second run that tries the same X fails to add the route and takes the next)."""
        routes = _ip("route", "show", "table", "all").stdout
        for second in SECOND_OCTETS:
            if f"10.{second}." in routes:
                continue
            subnet = f"10.{second}.0.0/16"
            added = _ip(
                "route", "add", "unreachable", subnet, "metric", self.route_metric, check=False
            )
            if added.returncode == 0:
                self.subnet = subnet
                return second
        raise RuntimeError(f"no free 10.X.0.0/16 for the estate (X in {SECOND_OCTETS})")

    def _keys(self) -> None:
        for name in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.folder / name)],
                check=True,
            )
        authorized = self.folder / "authorized_keys"
        authorized.write_text((self.folder / "client_key.pub").read_text())
        if not Path("/run/sshd").exists():
            Path("/run/sshd").mkdir(mode=0o755)  # sshd's privilege separation folder

    def _describe(self, index: int, second: int) -> Pool:
        return Pool(
            index=index,
            name=f"pool{index}",
            jump=f"{self.tag}j{index}",
            devices=f"{self.tag}d{index}",
            jump_address=f"10.{second}.{index}.1",
            targets=[
                f"10.{second}.{index}.{FIRST_TARGET + n}" for n in range(self.targets_per_pool)
            ],
        )

    def _make(self, pool: Pool) -> None:
        jump, devices = ("-n", pool.jump), ("-n", pool.devices)
        _ip("netns", "add", pool.jump)
        _ip("netns", "add", pool.devices)
        _ip(*jump, "link", "add", "to-devices", "type", "veth", "peer", "name", "to-jump",
            "netns", pool.devices)  # fmt: skip
        _ip(*jump, "link", "set", "lo", "up")
        _ip(*jump, "addr", "add", f"{pool.jump_address}/24", "dev", "to-devices")
        _ip(*jump, "link", "set", "to-devices", "up")
        _ip(*devices, "link", "set", "lo", "up")
        for address in pool.targets:
            _ip(*devices, "addr", "add", f"{address}/24", "dev", "to-jump")
        _ip(*devices, "link", "set", "to-jump", "up")
        pool.sshd = self._start_sshd(pool)

    def _start_sshd(self, pool: Pool) -> subprocess.Popen[bytes]:
        config = self.folder / f"sshd_config_{pool.index}"
        listen = "".join(f"ListenAddress {address}\n" for address in pool.targets)
        config.write_text(
            f"{listen}Port 22\n"
            f"HostKey {self.folder / 'host_key'}\n"
            f"PidFile {self.folder / f'sshd_{pool.index}.pid'}\n"
            f"AuthorizedKeysFile {self.folder / 'authorized_keys'}\n"
            "PubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            f"AllowUsers {self.username}\n"
            "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nUseDNS no\n"
            "MaxStartups 1000\nMaxSessions 50\nLoginGraceTime 120\nPrintMotd no\n"
            "LogLevel ERROR\n"
            # The login shell reads ~/.bashrc when sshd runs it (here: pyenv init, 0.4 s of
            # spawns per command); a shell level above 1 skips that (as bench/_targets.py).
            "SetEnv SHLVL=1\n"
        )
        with (self.folder / f"sshd_{pool.index}.log").open("wb") as log:
            process = subprocess.Popen(
                ["ip", "netns", "exec", pool.devices, SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        return process

    def _wait_for_sshd(self, pool: Pool, timeout: float = 60.0) -> None:
        """sshd writes its pid file once it listens on every address."""
        deadline = time.monotonic() + timeout
        while not (self.folder / f"sshd_{pool.index}.pid").exists():
            assert pool.sshd is not None
            if pool.sshd.poll() is not None or time.monotonic() > deadline:
                log = self.folder / f"sshd_{pool.index}.log"
                raise RuntimeError(f"{pool.name}: sshd did not start: {self._tail(log)}")
            time.sleep(0.05)

    def _start_coordinator(self) -> None:
        tokens = []
        _secret(self.client_token, f"estate-client-{os.urandom(16).hex()}\n")
        for pool in self.pools:
            token = _secret(self.folder / f"{pool.name}.token", os.urandom(16).hex() + "\n")
            tokens += ["--agent-token-file", f"{pool.name}={token}"]
        with self.coordinator_log.open("w") as err:
            self.coordinator = subprocess.Popen(
                [str(BIN / "genja-coordinator"), "serve", "--listen", self.address,
                 "--agents", "0", "--heartbeat-timeout", str(HEARTBEAT_TIMEOUT),
                 "--client-token-file", f"estate={self.client_token}", *tokens],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
                cwd=self.folder, env=self._env(), start_new_session=True,
            )  # fmt: skip
        assert self.coordinator.stdout is not None
        line = self.coordinator.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the coordinator did not start: {self._tail(self.coordinator_log)}")

    def _start_agent(self, pool: Pool, agent_id: str) -> None:
        home = self.folder / "agents"
        home.mkdir(exist_ok=True)
        with (self.folder / f"agent-{agent_id}.log").open("wb") as err:
            process = subprocess.Popen(
                ["ip", "netns", "exec", pool.jump, str(BIN / "genja-agent"),
                 "--coordinator", self.address, "--agent-id", agent_id, "--pool", pool.name,
                 "--token-file", str(self.folder / f"{pool.name}.token"),
                 "--host-concurrency", str(self.host_concurrency)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=home,
                env=self._env(), start_new_session=True,
            )  # fmt: skip
        pool.agent_ids.append(agent_id)
        pool.agents.append(process)

    def _env(self) -> dict[str, str]:
        # Their work folders go in ours; the agents import nothing of this checkout.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return {**env, "TMPDIR": str(self.folder)}

    def _wait_for_agents(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = {agent_id for pool in self.pools for agent_id in pool.agent_ids}
        while waiting:
            text = self.coordinator_log.read_text(errors="replace")
            waiting = {agent_id for agent_id in waiting if f"agent {agent_id} (pid" not in text}
            for pool in self.pools:
                for agent_id, process in zip(pool.agent_ids, pool.agents, strict=True):
                    if process.poll() is not None:
                        log = self.folder / f"agent-{agent_id}.log"
                        raise RuntimeError(f"agent {agent_id} exited: {self._tail(log)}")
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"agents did not connect: {', '.join(sorted(waiting))}")
            time.sleep(0.1)

    @staticmethod
    def _tail(path: Path) -> str:
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

    # ---------------------------------------------------------------- checks

    def check_isolation(self) -> list[str]:
        """Each pool's targets answer from its jump namespace, and from nowhere else: not from
        the root namespace (the coordinator's), not from another pool's jump namespace. One line
        per check made; a RuntimeError for the first that does not hold."""
        lines = []
        for pool in self.pools:
            target = pool.targets[0]
            if not _reaches(pool.jump, target):
                raise RuntimeError(f"{pool.name}: {target}:22 does not answer from {pool.jump}")
            if _reaches(None, target):
                raise RuntimeError(f"{pool.name}: {target}:22 answers from the root namespace")
            other = self.pools[(pool.index + 1) % len(self.pools)]
            if other is not pool and _reaches(other.jump, target):
                raise RuntimeError(f"{pool.name}: {target}:22 answers from {other.name}'s jump")
            lines.append(
                f"{pool.name}: {target}:22 answers from {pool.jump}; not from the root "
                f"namespace" + ("" if other is pool else f" nor from {other.name}'s")
            )
        return lines

    # ---------------------------------------------------------------- end

    def kill_agents(self, pool: Pool) -> list[int]:
        """SIGKILL every agent of `pool` (they do not come back); their pids."""
        pids = []
        for process in pool.agents:
            if process.poll() is None:
                process.kill()
                pids.append(process.pid)
        return pids

    def close(self) -> None:
        """Stop every process and remove every namespace, route and file this estate made.
        Each step runs even if one before it failed, and a second Ctrl-C cannot cut it short."""
        with _signals_ignored():
            self._take_down()

    def _take_down(self) -> None:
        for pool in self.pools:
            for process in pool.agents:
                _terminate(process)
        if self.coordinator is not None:
            _terminate(self.coordinator)
            if self.coordinator.stdout is not None:
                self.coordinator.stdout.close()
        for pool in self.pools:
            if pool.sshd is not None:
                _terminate(pool.sshd)
            for namespace in (pool.jump, pool.devices):
                _kill_namespace_processes(namespace)
                _ip("netns", "del", namespace, check=False)
        if self.subnet is not None:
            _ip("route", "del", "unreachable", self.subnet, "metric", self.route_metric,
                check=False)  # fmt: skip
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored inside the block (in the main thread; elsewhere a no-op)."""
    try:
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _STOP_SIGNALS}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _secret(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)  # coordinators and agents refuse token files others may read
    return path


def _terminate(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_PROBE = (
    "import socket,sys\n"
    "try:\n"
    "    s=socket.create_connection((sys.argv[1],22),timeout=5)\n"
    "    sys.exit(0 if s.recv(8).startswith(b'SSH-') else 1)\n"
    "except OSError:\n"
    "    sys.exit(1)\n"
)


def _reaches(namespace: str | None, address: str) -> bool:
    """Whether sshd's banner comes back from `address`:22, dialled from `namespace` (None: the
    root namespace)."""
    prefix = [] if namespace is None else ["ip", "netns", "exec", namespace]
    done = subprocess.run(
        [*prefix, sys.executable, "-c", _PROBE, address],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode == 0
