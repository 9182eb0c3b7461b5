"""Local agent processes: started as new processes (never forked from a process holding gRPC
state), watched, described when they die, replaced before the next run, stopped at close."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from genja_rpc._auth import LOCAL_POOL
from genja_rpc._coordinator import AgentSession

AGENT_TOKEN_ENV = "GENJA_AGENT_TOKEN"


@dataclass(eq=False)
class _Process:
    agent_id: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    exited: asyncio.Future[int]


def describe_returncode(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


class LocalAgentPool:
    def __init__(
        self,
        coordinator_address: str,
        token: str,
        count: int,
        workdir: Path,
        *,
        pool: str = LOCAL_POOL,
        host_concurrency: int | None = None,
        on_exit: Callable[[str, int], None] | None = None,
        log_level: str | None = None,
        settings_file: Path | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """`loop` is the loop the pool's exit futures belong to; given, agents can be started
        before it runs (from another thread); else the running loop is used. `settings_file`
        is the agents' own settings (`genja-agent --settings`)."""
        self._loop = loop
        self._on_exit = on_exit
        self._address = coordinator_address
        self._token = token
        self._count = count
        self._workdir = workdir
        self._pool = pool
        self._host_concurrency = host_concurrency
        self._log_level = log_level
        self._settings_file = settings_file
        self._processes: dict[str, _Process] = {}

    @property
    def agent_ids(self) -> list[str]:
        return [f"{self._pool}-{index}" for index in range(self._count)]

    def pids(self) -> dict[str, int]:
        return {agent_id: p.popen.pid for agent_id, p in self._processes.items()}

    def start_missing(self) -> set[str]:
        """Start every agent that is not running; the ids started."""
        started = set()
        for agent_id in self.agent_ids:
            process = self._processes.get(agent_id)
            if process is None or process.exited.done():
                self._processes[agent_id] = self._spawn(agent_id)
                started.add(agent_id)
        return started

    def startup_failure(self) -> str | None:
        """A message for an agent that exited while the pool waited for it to connect."""
        for process in self._processes.values():
            if process.exited.done():
                return (
                    f"agent {process.agent_id} (pid {process.popen.pid}) "
                    f"{describe_returncode(process.exited.result())} before connecting"
                    f"{self._last_words(process)}"
                )
        return None

    def _spawn(self, agent_id: str) -> _Process:
        loop = self._loop or asyncio.get_running_loop()
        log_path = self._workdir / f"{agent_id}.log"
        env = dict(os.environ)
        env[AGENT_TOKEN_ENV] = self._token
        # Agents import task modules the way this process does.
        paths = [p for p in sys.path if p and os.path.isdir(p)]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([os.getcwd(), *paths]))
        command = [
            sys.executable, "-m", "agent",
            "--coordinator", self._address,
            "--agent-id", agent_id,
            "--pool", self._pool,
            "--exit-with-parent", str(os.getpid()),
        ]  # fmt: skip
        if self._host_concurrency is not None:
            command += ["--host-concurrency", str(self._host_concurrency)]
        if self._log_level is not None:
            command += ["--log-level", self._log_level]
        if self._settings_file is not None:
            command += ["--settings", str(self._settings_file)]
        with open(log_path, "ab") as log_file:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                # A task's print() shows where the user's own output goes, as with Nornir. No
                # protocol runs over stdout, so nothing can be corrupted by it.
                stdout=None,
                stderr=log_file,
                env=env,
                close_fds=True,
            )
        exited: asyncio.Future[int] = loop.create_future()

        def wait() -> None:
            code = popen.wait()
            with contextlib.suppress(RuntimeError):  # the loop may be closed by then
                loop.call_soon_threadsafe(_settle, exited, code)

        threading.Thread(target=wait, name=f"genja-watch-{agent_id}", daemon=True).start()
        if self._on_exit is not None:
            on_exit = self._on_exit
            exited.add_done_callback(lambda _: on_exit(agent_id, popen.pid))
        return _Process(agent_id, popen, log_path, exited)

    async def describe_exit(self, session: AgentSession) -> str:
        """How an agent's connection ended, for the failures of the hosts it owed."""
        process = self._processes.get(session.agent_id)
        where = f"agent {session.agent_id} (pid {session.pid})"
        if process is None or process.popen.pid != session.pid:
            return f"{where} closed its connection before finishing this host"
        try:
            code = await asyncio.wait_for(asyncio.shield(process.exited), 5.0)
        except asyncio.TimeoutError:
            return f"{where} closed its connection before finishing this host"
        return f"{where} {describe_returncode(code)} before finishing this host"

    async def stop(self, told: Collection[str] = (), grace: float = 5.0) -> None:
        """Wait up to `grace` for the agents `told` to shut down; terminate (then kill) those
        that linger, and at once those never told (still starting: they never connected)."""
        pending = [p for p in self._processes.values() if not p.exited.done()]
        for process in pending:
            if process.agent_id not in told:
                process.popen.terminate()
        if pending:
            await asyncio.wait([p.exited for p in pending], timeout=grace)
        for process in pending:
            if not process.exited.done():
                process.popen.terminate()
        if pending:
            await asyncio.wait([p.exited for p in pending], timeout=2.0)
        for process in pending:
            if not process.exited.done():
                process.popen.kill()
                await asyncio.to_thread(process.popen.wait)

    @staticmethod
    def _last_words(process: _Process) -> str:
        try:
            lines = process.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1]}" if lines else ""


def _settle(future: asyncio.Future[int], code: int) -> None:
    if not future.done():
        future.set_result(code)
