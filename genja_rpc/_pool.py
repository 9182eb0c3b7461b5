"""Local agent processes: started as new processes (never forked from a process holding gRPC
state), watched, replaced at once when they die, described to the runs they served, stopped at
close.

Each agent process gets a private state folder (`genja_rpc._agent_state`): its start journal
and its watchdog's notes, read here when it ends. A thread watches the agents' resident memory
(from /proc, so that an agent busy in C code holding its GIL is caught too) and kills one that
passes `memory_limit`; the node's supervisor (`genja_rpc._nanny`) replaces agents for the other
causes through `replace`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from genja._sizes import format_size
from genja_rpc._agent_end import AgentEnd, Replacement
from genja_rpc._agent_state import Blocked, read_blocked, read_started
from genja_rpc._auth import LOCAL_POOL
from genja_rpc._coordinator import AgentSession

log = logging.getLogger("genja.coordinator")

AGENT_TOKEN_ENV = "GENJA_AGENT_TOKEN"
# How often the memory watch reads each agent's resident size: a task allocating at memory
# speed overshoots the limit by what it allocates in this time.
MEMORY_WATCH_SECONDS = 0.1
# An agent that exits by itself before connecting this many times in a row is not restarted
# at once (a broken environment would restart forever); the next run tries again, and says
# why. Killed from outside (SIGKILL: the OOM killer, an operator), it is always restarted.
MAX_EARLY_EXITS = 3
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(eq=False)
class _Process:
    agent_id: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    state_dir: Path
    exited: asyncio.Future[int]
    connected: bool = False
    replaced: Replacement | None = None
    exited_at: float = field(default=0.0)


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
        on_exit: Callable[[str, int, str | None], None] | None = None,
        log_level: str | None = None,
        memory_limit: int = 0,
        settings_file: Path | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """`loop` is the loop the pool's exit futures belong to; given, agents can be started
        before it runs (from another thread); else the running loop is used. `on_exit` hears
        of each agent process that ended (id, pid, and, when it is not replaced, why: after
        its replacement, if any, was started). `memory_limit`: resident bytes past which an
        agent is killed (0: no limit). `settings_file` is the agents' own settings
        (`genja-agent --settings`)."""
        self._loop = loop
        self._on_exit = on_exit
        self._address = coordinator_address
        self._token = token
        self._count = count
        self._workdir = workdir
        self._pool = pool
        self._host_concurrency = host_concurrency
        self._log_level = log_level
        self._memory_limit = memory_limit
        self._settings_file = settings_file
        self._processes: dict[str, _Process] = {}
        self._gone: dict[int, _Process] = {}  # ended, by pid, until described
        self._early_exits: dict[str, int] = {}
        self._spawned = itertools.count()
        self._stopping = threading.Event()
        self._memory_watch: threading.Thread | None = None

    @property
    def agent_ids(self) -> list[str]:
        return [f"{self._pool}-{index}" for index in range(self._count)]

    def pids(self) -> dict[str, int]:
        return {agent_id: p.popen.pid for agent_id, p in self._processes.items()}

    def is_current(self, agent_id: str, pid: int) -> bool:
        """`pid` is the live process the pool keeps for `agent_id` (not one being replaced)."""
        process = self._processes.get(agent_id)
        return process is not None and process.popen.pid == pid and process.replaced is None

    def connected(self, agent_id: str, pid: int) -> None:
        process = self._processes.get(agent_id)
        if process is not None and process.popen.pid == pid:
            process.connected = True
            self._early_exits.pop(agent_id, None)

    def blocked(self, agent_id: str, pid: int) -> Blocked | None:
        """What the agent's watchdog noted about its event loop being blocked, if it is."""
        process = self._processes.get(agent_id)
        if process is None or process.popen.pid != pid:
            return None
        return read_blocked(process.state_dir)

    def replace(self, agent_id: str, pid: int, replacement: Replacement) -> bool:
        """Kill the agent (a replacement starts when it has exited), to be described as
        `replacement` to the runs it served. Callable from any thread; False when `pid` is
        not the agent's live process."""
        process = self._processes.get(agent_id)
        if process is None or process.popen.pid != pid or process.replaced is not None:
            return False
        process.replaced = replacement
        why = replacement.cause.format(hosts="its hosts") if replacement.cause else replacement.how
        log.info("replacing agent %s (pid %d): %s", agent_id, pid, why)
        with contextlib.suppress(ProcessLookupError):
            process.popen.send_signal(signal.SIGKILL)  # works on a stopped process too
        return True

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
        state_dir = self._workdir / "agents" / f"{agent_id}.{next(self._spawned)}"
        state_dir.mkdir(mode=0o700, parents=True)
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
            "--state-dir", str(state_dir),
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
        process = _Process(agent_id, popen, log_path, state_dir, exited)

        def wait() -> None:
            code = popen.wait()
            with contextlib.suppress(RuntimeError):  # the loop may be closed by then
                loop.call_soon_threadsafe(_settle, exited, code)

        threading.Thread(target=wait, name=f"genja-watch-{agent_id}", daemon=True).start()
        exited.add_done_callback(lambda _: self._ended(process))
        if self._memory_limit and self._memory_watch is None:
            self._memory_watch = threading.Thread(
                target=self._watch_memory, name="genja-memory-watch", daemon=True
            )
            self._memory_watch.start()
        return process

    def _ended(self, process: _Process) -> None:
        """An agent process exited: start its replacement at once (unless the pool is
        stopping, or it keeps dying before it connects), then tell `on_exit`."""
        process.exited_at = time.monotonic()
        pid = process.popen.pid
        self._gone[pid] = process
        for old_pid, old in list(self._gone.items()):  # never described: nobody asks now
            if process.exited_at - old.exited_at > 300:
                del self._gone[old_pid]
                shutil.rmtree(old.state_dir, ignore_errors=True)
        agent_id = process.agent_id
        code = process.exited.result()
        not_replaced: str | None = "the pool is stopping"
        if self._processes.get(agent_id) is process and not self._stopping.is_set():
            killed = code == -signal.SIGKILL
            early = 0 if process.connected or killed else self._early_exits.get(agent_id, 0) + 1
            self._early_exits[agent_id] = early
            if early < MAX_EARLY_EXITS:
                self._processes[agent_id] = self._spawn(agent_id)
                not_replaced = None
            else:
                not_replaced = (
                    f"agent {agent_id} (pid {pid}) {describe_returncode(code)} before "
                    f"connecting, {early} times in a row{self._last_words(process)}"
                )
        elif self._processes.get(agent_id) is not process:
            not_replaced = None  # an older process of an agent that lives on
        if self._on_exit is not None:
            self._on_exit(agent_id, pid, not_replaced)

    def _watch_memory(self) -> None:
        limit = self._memory_limit
        while not self._stopping.wait(MEMORY_WATCH_SECONDS):
            for process in list(self._processes.values()):
                if process.replaced is not None or process.popen.returncode is not None:
                    continue
                resident = resident_bytes(process.popen.pid)
                if resident > limit:
                    self.replace(
                        process.agent_id,
                        process.popen.pid,
                        Replacement(
                            "was replaced",
                            f"memory limit {format_size(limit)} exceeded (resident "
                            f"{format_size(resident)}) while running {{hosts}}",
                        ),
                    )

    async def describe_exit(self, session: AgentSession) -> AgentEnd:
        """How an agent's connection ended, for the failures of the hosts it owed."""
        pid = session.pid
        current = self._processes.get(session.agent_id)
        process = current if current is not None and current.popen.pid == pid else None
        process = process or self._gone.get(pid)
        where = f"agent {session.agent_id} (pid {pid})"
        if process is None:
            return AgentEnd(where, "closed its connection")
        try:
            code = await asyncio.wait_for(asyncio.shield(process.exited), 5.0)
        except asyncio.TimeoutError:
            return AgentEnd(where, "closed its connection")
        self._gone.pop(pid, None)
        started = read_started(process.state_dir)
        shutil.rmtree(process.state_dir, ignore_errors=True)
        successor = self._processes.get(session.agent_id)
        replaced = (
            successor is not None and successor is not process and not successor.exited.done()
        )
        replacement = process.replaced
        if replacement is None:
            return AgentEnd(where, describe_returncode(code), started=started, replaced=replaced)
        return AgentEnd(
            where,
            replacement.how,
            replacement.cause,
            replacement.culprits,
            started=started,
            replaced=replaced,
        )

    async def stop(self, told: Collection[str] = (), grace: float = 5.0) -> None:
        """Wait up to `grace` for the agents `told` to shut down; terminate (then kill) those
        that linger, and at once those never told (still starting: they never connected)."""
        self._stopping.set()
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


def resident_bytes(pid: int) -> int:
    """A process's resident memory (RSS) from /proc; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def _settle(future: asyncio.Future[int], code: int) -> None:
    if not future.done():
        future.set_result(code)
