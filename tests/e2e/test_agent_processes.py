"""The agent pool as processes: scale, an agent killed mid-run, no orphans, client exits."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import genja
from genja.task import (
    Host,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)
from genja_rpc._scheduler import agent_for
from tests.conftest import MakeGenja, _alive, agent_pids
from tests.servers.processes import scratch_tmpdir

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@task(name="noop")
class Noop:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult()


def test_two_thousand_hosts(make_genja: MakeGenja) -> None:
    genja = make_genja(2000)
    results = genja.run_task(Noop)
    assert len(results.hosts) == 2000
    assert results.host_summary().passed == 2000
    assert list(results.hosts) == list(genja.hosts), "results keep the selection's order"
    again = genja.run_task(Noop)
    assert again.host_summary().passed == 2000


@task(name="gated")
class Gated:
    """Marks that it started, then waits for the test to open the gate."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        folder = Path(host.data["folder"])
        (folder / f"started-{host.id}").touch()
        deadline = time.monotonic() + 60
        while not (folder / "gate").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return TaskSuccessResult(metadata={"pid": os.getpid()})


def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_agent_killed_mid_run_fails_its_hosts_and_the_run_completes(
    make_genja: MakeGenja, tmp_path: Path
) -> None:
    import threading

    hosts = {f"h{i:02d}": {"data": {"folder": str(tmp_path)}} for i in range(24)}
    genja = make_genja(hosts, workers=2)
    genja.run_task(Noop)  # agents up
    pids = agent_pids(genja)
    victim = "local-0"
    victims = {h for h in hosts if agent_for(h, sorted(pids)) == victim}
    assert victims
    assert len(victims) < len(hosts)

    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(results=genja.run_task(Gated)))
    runner.start()
    _wait_for(lambda: len(list(tmp_path.glob("started-*"))) == len(hosts))
    os.kill(pids[victim], signal.SIGKILL)
    time.sleep(0.5)
    (tmp_path / "gate").touch()
    runner.join(timeout=90)
    assert not runner.is_alive()

    results = outcome["results"]
    assert set(results.hosts) == set(hosts)
    assert set(results.failed_hosts) == victims
    for host in victims:
        failure = results[host]
        assert isinstance(failure, TaskFailureResult)
        assert failure.kind.value == "internal"
        assert f"agent {victim} (pid {pids[victim]}) was killed by SIGKILL" in failure.message
    assert set(results.passed_hosts) == set(hosts) - victims

    # The pool replaces the dead agent before the next run.
    after = genja.run_task(Noop)
    assert after.host_summary().passed == len(hosts)
    assert agent_pids(genja)[victim] != pids[victim]


def test_close_leaves_no_agent_processes(make_genja: MakeGenja) -> None:
    genja = make_genja(10, workers=3)
    genja.run_task(Noop)
    pids = list(agent_pids(genja).values())
    assert len(pids) == 3
    assert all(_alive(p) for p in pids)
    genja.close()
    genja.close()
    assert not any(_alive(p) for p in pids)


SCRIPT = """
import os, sys, time
import genja as genja_lib
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task

@task(name="collect_facts")
class CollectFacts:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        if os.environ.get("HANG"):
            time.sleep(120)
        return TaskSuccessResult(summary=f"collected facts from {host.hostname}",
                                 metadata={"hostname": host.hostname, "platform": host.platform,
                                           "pid": os.getpid()})

@task(name="warm_up")
class WarmUp:
    def start(self, task, host, context):
        return TaskSuccessResult()

genja = genja_lib.Genja.from_settings_file("settings.yaml")
if os.environ.get("HANG"):
    genja.run_task(WarmUp)  # the agents exist now
    print("PIDS", *genja.runtime.agent_pids().values(), flush=True)
results = genja.run_task(CollectFacts, max_depth=1)
print(results.to_json(pretty=True))
print(results.host_summary())
for host_id in results.failed_hosts:
    print(f"failed host: {host_id}")
"""


@pytest.fixture
def script_dir(tmp_path: Path) -> Path:
    (tmp_path / "settings.yaml").write_text(
        "inventory: {options: {hosts_file: hosts.yaml}}\nrunner: {worker_count: 2}\n"
    )
    (tmp_path / "hosts.yaml").write_text(
        "router1: {hostname: 10.0.0.1, platform: ios}\nrouter2: {hostname: 10.0.0.2}\n"
    )
    (tmp_path / "script.py").write_text(textwrap.dedent(SCRIPT))
    return tmp_path


def test_task_classes_from_a_scripts_main_travel_by_value(script_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "script.py"], cwd=script_dir, capture_output=True, text=True,
        timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "passed=2 failed=0 skipped=0" in done.stdout
    assert '"summary": "collected facts from 10.0.0.1"' in done.stdout


def _start_hanging_client(
    script_dir: Path, tmpdir: Path
) -> tuple[subprocess.Popen[str], list[int]]:
    client = subprocess.Popen(
        [sys.executable, "script.py"], cwd=script_dir, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HANG": "1", "TMPDIR": str(tmpdir)},
    )  # fmt: skip
    assert client.stdout is not None
    line = client.stdout.readline()
    assert line.startswith("PIDS"), line + (client.stderr.read() if client.stderr else "")
    return client, [int(p) for p in line.split()[1:]]


@pytest.fixture
def client_tmpdir() -> Iterator[Path]:
    with scratch_tmpdir() as tmpdir:  # a killed client leaves its work folder there
        yield tmpdir


@pytest.fixture
def hanging_client(
    script_dir: Path, client_tmpdir: Path
) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    client, pids = _start_hanging_client(script_dir, client_tmpdir)
    try:
        yield client, pids
    finally:
        if client.poll() is None:
            client.kill()
        client.communicate(timeout=30)
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_agents_exit_when_the_client_is_killed(
    hanging_client: tuple[subprocess.Popen[str], list[int]],
) -> None:
    client, pids = hanging_client
    time.sleep(1.0)
    client.kill()
    client.wait(timeout=10)
    _wait_for(lambda: not any(_alive(p) for p in pids), timeout=30)


def test_a_new_client_removes_the_folder_a_killed_one_left(
    hanging_client: tuple[subprocess.Popen[str], list[int]], script_dir: Path, client_tmpdir: Path
) -> None:
    client, pids = hanging_client
    client.kill()
    client.wait(timeout=10)
    left = list(client_tmpdir.glob(f"genja-{client.pid}-*"))
    assert len(left) == 1, "the killed client could not remove its folder"
    assert (left[0] / "agents.sock").exists()
    _wait_for(lambda: not any(_alive(p) for p in pids), timeout=30)

    done = subprocess.run(
        [sys.executable, "script.py"], cwd=script_dir, capture_output=True, text=True,
        env={**os.environ, "TMPDIR": str(client_tmpdir)}, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not left[0].exists(), "the new client removed the orphan"
    assert not list(client_tmpdir.glob("genja-*")), "and its own folder on exit"


def test_ctrl_c_in_the_client_stops_the_agents(
    hanging_client: tuple[subprocess.Popen[str], list[int]],
) -> None:
    client, pids = hanging_client
    time.sleep(1.0)
    client.send_signal(signal.SIGINT)
    _, err = client.communicate(timeout=60)
    assert client.returncode != 0
    assert "KeyboardInterrupt" in err
    _wait_for(lambda: not any(_alive(p) for p in pids), timeout=30)


def test_a_genja_dropped_unclosed_stops_its_agents_and_removes_its_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with scratch_tmpdir() as tmpdir:
        monkeypatch.setattr("tempfile.tempdir", str(tmpdir))
        settings = genja.Settings.from_dict({"runner": {"worker_count": 2}})
        dropped = genja.Genja.from_hosts({"r1": {}, "r2": {}}, settings)
        assert dropped.run_task(Noop).host_summary().passed == 2
        pids = list(agent_pids(dropped).values())
        assert len(list(tmpdir.glob("genja-*"))) == 1
        del dropped

        def collected() -> bool:
            # The coordinator's thread may hold the runtime a moment longer (the run's last
            # step); the last reference can then go there, and the shutdown with it.
            gc.collect()
            return not list(tmpdir.glob("genja-*"))

        _wait_for(collected, timeout=30)
        _wait_for(lambda: not any(_alive(p) for p in pids), timeout=30)
