"""Tasks that misbehave, on real agents: whatever a task does, only its own host (and the hosts
running beside it when its agent had to go) fails, every host is accounted for, the run ends
within its deadlines, and the next run on the same Genja has full capacity."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import genja
from genja.task import (
    Host,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)
from genja_rpc._pool import resident_bytes
from tests.conftest import MakeGenja, _alive, agent_pids
from tests.servers.coordinator import CoordinatorServer, start_server

pytestmark = pytest.mark.e2e


@task(name="noop")
class Noop:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult()


def _hosts(count: int, data: dict[str, Any], **special: dict[str, Any]) -> dict[str, Any]:
    """`count` hosts h000.. with `data`, and `special` ones (name -> more data), sorted."""
    hosts: dict[str, Any] = {f"h{i:03d}": {"data": data} for i in range(count)}
    hosts.update({name: {"data": {**data, **more}} for name, more in special.items()})
    return dict(sorted(hosts.items()))


def _timed(run: Callable[[], genja.TaskResults]) -> tuple[genja.TaskResults, float]:
    started = time.monotonic()
    results = run()
    return results, time.monotonic() - started


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def _failures(results: genja.TaskResults) -> dict[str, TaskFailureResult]:
    found = {}
    for host in results.failed_hosts:
        failure = results[host]
        assert isinstance(failure, TaskFailureResult)
        found[host] = failure
    return found


def _accounted(results: genja.TaskResults, hosts: dict[str, Any]) -> None:
    assert set(results.hosts) == set(hosts)
    assert set(results.passed_hosts) | set(results.failed_hosts) == set(hosts)


def _full_capacity(g: genja.Genja, hosts: dict[str, Any]) -> None:
    again = g.run_task(Noop)
    assert again.host_summary().passed == len(hosts), _failures(again)


# ==================================================================== supervision and liveness
#
# An agent that dies, is stuck, blocks its loop, eats memory or freezes is replaced under the
# same id: the hosts it was running fail with the cause, the hosts it had not begun move to the
# replacement and pass there.


def _began_in(folder: Path, host: Host) -> None:
    """Leave a trace that `host` began in this process (`began-PID-HOST`)."""
    (folder / f"began-{os.getpid()}-{host.id}").touch()


def _began(folder: Path, pid: int) -> set[str]:
    return {p.name.split("-", 2)[2] for p in folder.glob(f"began-{pid}-*")}


def _replaced_mid_run(
    g: genja.Genja,
    task_class: type,
    folder: Path,
    *,
    guilty: str,
    message: str,
    deadline: float,
    at_least: int,
) -> None:
    """Run `task_class` on `g` (one local agent, host_concurrency 4), whose host `guilty` gets
    the agent replaced mid-run, and check: the run ends within `deadline` plus a margin, every
    host is accounted for, the agent was replaced under the same id, only hosts that had begun
    on it failed (or that its workers had just taken, a moment before their task code left a
    trace: at most one per worker), each with kind internal and a message matching `message`
    (a regex; {pid} is the old agent's pid), never ran on the replacement, and the hosts it had
    not begun (at least `at_least`) ran on the replacement and passed. Then the next run has
    full capacity."""
    hosts = list(g.hosts)
    g.run_task(Noop)
    [before] = agent_pids(g).values()

    results, took = _timed(lambda: g.run_task(task_class))

    assert took < deadline + 60
    _accounted(results, dict.fromkeys(hosts))
    [after] = agent_pids(g).values()
    assert after != before, "replaced, under the same agent id"
    failures = _failures(results)
    assert guilty in failures
    began_before, began_after = _began(folder, before), _began(folder, after)
    assert not set(failures) & began_after
    assert len(set(failures) - began_before) <= 4
    queued = set(hosts) - began_before - set(failures)
    assert len(queued) >= at_least
    assert queued <= began_after & set(results.passed_hosts)
    pattern = re.compile(message.replace("{pid}", str(before)))
    for failure in failures.values():
        assert failure.kind is TaskFailureKind.INTERNAL
        assert pattern.fullmatch(failure.message), failure.message
    _full_capacity(g, dict.fromkeys(hosts))


@task(name="exits")
class ExitsTheAgent:
    """Host `boom` ends its agent process at once, before any report about it can leave."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        _began_in(Path(host.data["folder"]), host)
        if host.data.get("boom"):
            os._exit(1)
        time.sleep(0.05)
        return TaskSuccessResult()


def test_an_agent_that_exits_fails_only_its_running_hosts_and_the_queued_ones_move(
    make_genja: MakeGenja, tmp_path: Path
) -> None:
    hosts = _hosts(40, {"folder": str(tmp_path)}, h004x={"boom": True})
    _replaced_mid_run(
        make_genja(hosts, workers=1, host_concurrency=4),
        ExitsTheAgent,
        tmp_path,
        guilty="h004x",
        message=r"agent local-0 \(pid {pid}\) exited with status 1 while running this host",
        deadline=0,
        at_least=20,
    )


@task(name="hangs")
class HangsForever:
    """A blocking `start` that never returns on hosts marked `hang`."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        if host.data.get("hang"):
            time.sleep(10**6)
        return TaskSuccessResult()


def test_stuck_workers_get_their_agent_replaced_and_the_next_run_has_full_capacity(
    make_genja: MakeGenja,
) -> None:
    # More hosts that hang than the agent works on at once: each hang costs a thread for good.
    hangs = {f"h00{i}x": {"hang": True} for i in range(6)}
    hosts = _hosts(300, {}, **hangs)
    g = make_genja(hosts, workers=1, host_concurrency=4, task_timeout=2)
    g.run_task(Noop)
    [before] = agent_pids(g).values()

    results, took = _timed(lambda: g.run_task(HangsForever))

    assert took < 2 * 6 + 60
    _accounted(results, hosts)
    # The agent was drained (no new hosts) once its stuck threads reached the limit, and
    # replaced when the hosts it was running were through: only the hangs failed, as timeouts.
    failures = _failures(results)
    assert set(failures) == set(hangs)
    for host, failure in failures.items():
        assert failure.kind is TaskFailureKind.TIMEOUT
        assert failure.message == f"task 'hangs' did not finish on host {host!r} within 2s"
    assert agent_pids(g)["local-0"] != before
    _full_capacity(g, hosts)


@task(name="blocks_the_loop")
class BlocksTheLoop:
    """`time.sleep` in `start_async` on host `block`: the agent's event loop stops."""

    async def start_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        _began_in(Path(host.data["folder"]), host)
        if host.data.get("block"):
            time.sleep(120)
        await asyncio.sleep(0.05)
        return TaskSuccessResult()


def test_a_blocked_event_loop_is_found_by_the_watchdog_and_the_agent_replaced(
    make_genja: MakeGenja, tmp_path: Path
) -> None:
    hosts = _hosts(40, {"folder": str(tmp_path)}, h004x={"block": True})
    _replaced_mid_run(
        make_genja(hosts, workers=1, host_concurrency=4, heartbeat_timeout=3),
        BlocksTheLoop,
        tmp_path,
        guilty="h004x",
        message=r"agent local-0 \(pid {pid}\) was replaced while running this host: "
        r"event loop blocked for \d+ s in host h004x",
        deadline=3,
        at_least=20,
    )


@task(name="eats_memory")
class EatsMemory:
    """Host `hog` allocates (and touches) 20 MiB every 20 ms, up to 1.5 GiB."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        _began_in(Path(host.data["folder"]), host)
        if host.data.get("hog"):
            chunks = []
            for _ in range(75):
                chunks.append(b"x" * (20 * 2**20))
                time.sleep(0.02)
            return TaskSuccessResult(summary="the memory limit never came")
        time.sleep(0.05)
        return TaskSuccessResult()


def test_an_agent_past_its_memory_limit_is_replaced(make_genja: MakeGenja, tmp_path: Path) -> None:
    hosts = _hosts(100, {"folder": str(tmp_path)}, h004x={"hog": True})
    g = make_genja(hosts, workers=1, host_concurrency=4, agent_memory_limit="300MiB")
    g.run_task(Noop)
    resting = resident_bytes(agent_pids(g)["local-0"])
    assert 0 < resting < 300 * 2**20
    _replaced_mid_run(
        g,
        EatsMemory,
        tmp_path,
        guilty="h004x",
        # The hog is named among the hosts that were running (in run order, it comes first).
        message=r"agent local-0 \(pid {pid}\) was replaced while running this host: "
        r"memory limit 300 MiB exceeded \(resident [\d.]+ MiB\) while running hosts? "
        r"(h00[0-4], )*h004x\b.*",
        deadline=0,
        at_least=50,
    )


@task(name="gated")
class Gated:
    """Begins, then waits for the test to open the gate."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        folder = Path(host.data["folder"])
        _began_in(folder, host)
        deadline = time.monotonic() + 60
        while not (folder / "gate").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return TaskSuccessResult()


class _Running:
    """A run on another thread."""

    def __init__(self, run: Callable[[], genja.TaskResults]) -> None:
        self._outcome: dict[str, genja.TaskResults] = {}
        self._thread = threading.Thread(target=lambda: self._outcome.update(r=run()))
        self._thread.start()

    def results(self, timeout: float = 120) -> genja.TaskResults:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the run did not end"
        return self._outcome["r"]


@contextlib.contextmanager
def _stopped(pid: int) -> Iterator[None]:
    """SIGSTOP `pid`; SIGCONT it at the end whatever happens (if it still exists)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def test_a_frozen_agent_is_found_by_its_heartbeat_killed_and_replaced(
    make_genja: MakeGenja, tmp_path: Path
) -> None:
    hosts = _hosts(30, {"folder": str(tmp_path)})
    g = make_genja(hosts, workers=1, host_concurrency=4, heartbeat_timeout=3)
    g.run_task(Noop)
    [before] = agent_pids(g).values()
    run = _Running(lambda: g.run_task(Gated))
    _wait_for(lambda: len(_began(tmp_path, before)) == 4)

    with _stopped(before):
        frozen = time.monotonic()
        _wait_for(lambda: agent_pids(g)["local-0"] != before, timeout=3 + 60)
        found = time.monotonic() - frozen
    assert found < 3 + 60
    assert not _alive(before), "the frozen agent was killed"
    (tmp_path / "gate").touch()
    results = run.results()

    _accounted(results, hosts)
    failures = _failures(results)
    assert set(failures) == _began(tmp_path, before)
    pattern = re.compile(
        rf"agent local-0 \(pid {before}\) stopped answering (\d+) s ago and was replaced "
        "while running this host"
    )
    for failure in failures.values():
        assert failure.kind is TaskFailureKind.INTERNAL
        match = pattern.fullmatch(failure.message)
        assert match, failure.message
        assert int(match.group(1)) >= 3
    assert set(results.passed_hosts) == set(hosts) - set(failures)
    _full_capacity(g, hosts)


@task(name="pid")
class Pid:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult(metadata={"pid": os.getpid()})


@pytest.fixture
def coordinator_server(tmp_path: Path) -> Iterator[CoordinatorServer]:
    """`genja-coordinator serve` with one local agent, taking remote agents of pool jump1,
    with a heartbeat timeout of 3 s; woken up (SIGCONT) before it is stopped."""
    server = start_server(tmp_path / "server", local_agents=1, args=["--heartbeat-timeout", "3"])
    try:
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.process.pid, signal.SIGCONT)
        server.close()


def test_a_client_finds_a_frozen_coordinator_server_by_its_heartbeat(
    coordinator_server: CoordinatorServer, tmp_path: Path
) -> None:
    server, address = coordinator_server.process, coordinator_server.address
    settings = genja.Settings.from_dict(
        {"runner": {"options": coordinator_server.runner_options(heartbeat_timeout=3)}}
    )
    hosts = _hosts(6, {"folder": str(tmp_path)})
    with genja.Genja.from_hosts(hosts, settings) as g:
        warm = g.run_task(Pid)
        assert warm.host_summary().passed == len(hosts)
        run = _Running(lambda: g.run_task(Gated))
        _wait_for(lambda: len(list(tmp_path.glob("began-*"))) == len(hosts))
        with _stopped(server.pid):
            frozen = time.monotonic()
            results = run.results()
            found = time.monotonic() - frozen
        assert found < 3 + 60
        _accounted(results, hosts)
        assert set(results.failed_hosts) == set(hosts)
        for failure in _failures(results).values():
            assert failure.kind is TaskFailureKind.INTERNAL
            assert re.fullmatch(
                rf"the coordinator at {re.escape(address)} stopped answering (\d+) s ago; "
                r"if it comes back, the run goes on there: `genja attach \w+` gets its "
                r"results before this host finished",
                failure.message,
            ), failure.message
        # Awake again, it serves the next run in full, on the same agent: the agent was
        # heard all along, only the coordinator was not listening.
        (tmp_path / "gate").touch()
        again = g.run_task(Pid)
        assert again.host_summary().passed == len(hosts)
        pids = {again[h].metadata["pid"] for h in hosts}  # type: ignore[union-attr]
        assert pids == {warm[h].metadata["pid"] for h in hosts}  # type: ignore[union-attr]


def test_a_remote_agent_that_stops_hearing_its_coordinator_reconnects(
    coordinator_server: CoordinatorServer,
) -> None:
    server = coordinator_server
    agent = server.start_agent("jump1-0", "jump1", cwd=Path(__file__).parents[2])
    said = server.folder / "agent-jump1-0.log"
    settings = genja.Settings.from_dict({"runner": {"options": server.runner_options()}})
    hosts = {f"edge{i}": {"data": {"agent_pool": "jump1"}} for i in range(4)}

    def passes(g: genja.Genja) -> bool:
        return g.run_task(Pid).host_summary().passed == len(hosts)

    with genja.Genja.from_hosts(hosts, settings) as g:
        assert passes(g)
        with _stopped(server.process.pid):
            _wait_for(lambda: "stopped answering" in said.read_text())
        _wait_for(lambda: passes(g))
    assert agent.poll() is None, "the same agent process reconnected"
    assert f"the coordinator at {server.address} stopped answering" in said.read_text()
    assert "Traceback" not in said.read_text()
