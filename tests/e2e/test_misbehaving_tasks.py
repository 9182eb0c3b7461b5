"""Tasks that misbehave, on real agents: whatever a task does, only its own host (and the hosts
running beside it when its agent had to go) fails, every host is accounted for, the run ends
within its deadlines, and the next run on the same Genja has full capacity."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
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
from tests.conftest import MakeGenja, agent_pids

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
    g = make_genja(hosts, workers=1, host_concurrency=4)
    g.run_task(Noop)
    [before] = agent_pids(g).values()

    results, took = _timed(lambda: g.run_task(ExitsTheAgent))

    assert took < 60
    _accounted(results, hosts)
    [after] = agent_pids(g).values()
    assert after != before, "replaced, under the same agent id"
    began_before, began_after = _began(tmp_path, before), _began(tmp_path, after)
    failures = _failures(results)
    # Failed: the guilty host and hosts that began beside it (whose results died with it;
    # a worker may have taken a host a moment before its task code left a trace).
    assert "h004x" in failures
    assert not set(failures) & began_after
    assert len(set(failures) - began_before) <= 4
    for failure in failures.values():
        assert failure.kind is TaskFailureKind.INTERNAL
        assert failure.message == (
            f"agent local-0 (pid {before}) exited with status 1 while running this host"
        )
    # Moved: the hosts it had not begun ran on its replacement and passed.
    queued = set(hosts) - began_before - set(failures)
    assert len(queued) > 20
    assert queued <= began_after
    assert queued <= set(results.passed_hosts)
    _full_capacity(g, hosts)


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
