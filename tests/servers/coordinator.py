"""A `genja-coordinator serve` and remote `genja-agent`s as real processes, for tests of the
distributed path: the server listens on loopback with a client token and one agent token per
pool; agents dial in with `--insecure` (loopback), from a working folder and an environment the
test chooses (so they need not be able to import what the client imports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.servers.processes import stop, write_secret

BIN = Path(sys.executable).parent
REPO = Path(__file__).parents[2]


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Liveness only: generous, and never an assertion about speed."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def agent_settings(folder: Path, **ssh: Any) -> Path:
    """An agent's own settings file (`genja-agent --settings`, `genja-coordinator serve
    --agent-settings`) in `folder`: its `ssh` section, with a throwaway `known_hosts` beside
    it unless `ssh` names one (an agent without one would learn keys into ~/.ssh)."""
    path = folder / "agent-settings.yaml"
    path.write_text(json.dumps({"ssh": {"known_hosts": "known_hosts", **ssh}}), encoding="utf-8")
    return path


@dataclass
class CoordinatorServer:
    process: subprocess.Popen[str]
    address: str
    folder: Path
    log: Path
    agents: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def client_token(self) -> Path:
        return self.folder / "client.token"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def runner_options(self, **options: Any) -> dict[str, Any]:
        """`runner.options` of a client of this server."""
        return {
            "coordinator": self.address,
            "coordinator_token_file": str(self.client_token),
            **options,
        }

    def start_agent(
        self,
        agent_id: str,
        pool: str,
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        coordinator: str | None = None,
        prefix: Sequence[str] = (),
    ) -> subprocess.Popen[str]:
        """A remote agent of `pool` (one the server has a token for), its stderr in a file
        beside the server's log; returns once the server logged its connection. It dials
        `coordinator` (default: the server's TCP address); `prefix` goes before the command
        (`ip netns exec NAME`)."""
        log = self.folder / f"agent-{agent_id}.log"
        with log.open("w") as err:
            process = subprocess.Popen(
                [
                    *prefix, str(BIN / "genja-agent"), "--coordinator", coordinator or self.address,
                    "--agent-id", agent_id, "--pool", pool,
                    "--token-file", str(self.folder / f"{pool}.token"), "--insecure", *args,
                ],
                stdout=subprocess.DEVNULL, stderr=err, text=True, cwd=cwd,
                env=dict(os.environ if env is None else env),
            )  # fmt: skip
        self.agents.append(process)
        wait_for(
            lambda: (
                f"agent {agent_id} (pid {process.pid}" in self.log_text()
                or process.poll() is not None
            ),
            f"agent {agent_id} to connect",
        )
        if process.poll() is not None:
            raise AssertionError(f"agent {agent_id} exited: {log.read_text()[-3000:]}")
        return process

    def stop_agent(self, process: subprocess.Popen[str]) -> None:
        stop(process)
        self.agents.remove(process)

    def close(self) -> None:
        for agent in self.agents:
            stop(agent)
        stop(self.process)


def start_server(
    folder: Path,
    pools: Sequence[str] = ("jump1",),
    *,
    local_agents: int = 0,
    args: Sequence[str] = (),
) -> CoordinatorServer:
    """`genja-coordinator serve` on 127.0.0.1:0 with a client token and a token per pool
    (`folder`/POOL.token); its log goes to a file. Close it with `close()`."""
    folder.mkdir(parents=True, exist_ok=True)
    write_secret(folder / "client.token", f"client-token-{os.getpid()}\n")
    tokens = []
    for pool in pools:
        write_secret(folder / f"{pool}.token", f"agent-token-{pool}-{os.getpid()}\n")
        tokens += ["--agent-token-file", f"{pool}={folder / f'{pool}.token'}"]
    log = folder / "coordinator.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [
                str(BIN / "genja-coordinator"), "serve", "--listen", "127.0.0.1:0",
                "--agents", str(local_agents), "--client-token-file", str(folder / "client.token"),
                *tokens, *args,
            ],
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO,
        )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on 127.0.0.1:" not in line:
        stop(process)
        raise AssertionError(f"the coordinator did not start: {log.read_text()[-3000:]}")
    return CoordinatorServer(process, line.split()[-1], folder, log)
