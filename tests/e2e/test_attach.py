"""Detach and re-attach, with real processes: a `genja run` client killed (SIGKILL) mid-run
against a coordinator server whose remote agent runs the hosts; the run goes on, and `genja
attach RUN_ID` (a process) and `Genja.attach` get the complete tree, the results sent before
the kill replayed, not run again. Another client identity is refused; an unknown or expired run
id is one clear error; a client that stops its run cancels it at the server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import genja
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task
from tests.servers.coordinator import BIN, CoordinatorServer, start_server, wait_for
from tests.servers.processes import stop, write_secret

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# A file-based task: the remote agent runs in a folder of its own, so it travels by value.
TASKS = """
    import time
    from pathlib import Path

    from genja.task import TaskSuccessResult, task


    @task(name="gated")
    class Gated:
        def start(self, task, host, context):
            with open(host.data["ran"], "a") as ran:
                ran.write(host.id + "\\n")
            gate = host.data.get("gate")
            deadline = time.monotonic() + 120
            while gate and not Path(gate).exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            return TaskSuccessResult(result={"host": host.id})
"""

QUICK = [f"quick{i}" for i in range(4)]
SLOW = [f"slow{i}" for i in range(4)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorServer]:
    folder = tmp_path_factory.mktemp("attach")
    other = write_secret(folder / "other.token", f"other-client-{os.getpid()}\n")
    server = start_server(folder, ("jump1",), args=["--client-token-file", f"other={other}"])
    try:
        home = folder / "agent-home"
        home.mkdir()
        server.start_agent("jump1-0", "jump1", cwd=home)
        yield server
    finally:
        server.close()


def _project(server: CoordinatorServer, folder: Path, gate: Path) -> Path:
    """tasks.py, hosts.yaml (every host in pool jump1; the slow ones wait for `gate`) and
    settings.yaml naming the server."""
    (folder / "tasks.py").write_text(textwrap.dedent(TASKS).lstrip(), encoding="utf-8")
    ran = str(folder / "ran.log")
    hosts = {h: {"data": {"agent_pool": "jump1", "ran": ran}} for h in QUICK}
    hosts.update(
        {h: {"data": {"agent_pool": "jump1", "ran": ran, "gate": str(gate)}} for h in SLOW}
    )
    (folder / "hosts.yaml").write_text(json.dumps(hosts), encoding="utf-8")
    settings = {
        "inventory": {"options": {"hosts_file": "hosts.yaml"}},
        "runner": {"options": server.runner_options(run_timeout=240)},
    }
    (folder / "settings.yaml").write_text(json.dumps(settings), encoding="utf-8")
    return folder / "settings.yaml"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COLUMNS")}


def _genja(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "genja"), *args], cwd=folder, env=_env(), capture_output=True, text=True,
        timeout=240, check=False,
    )  # fmt: skip


def _client(folder: Path) -> genja.Genja:
    return genja.Genja(settings=genja.Settings.from_file(folder / "settings.yaml"))


def test_a_killed_clients_run_goes_on_and_attach_gets_the_whole_tree(
    server: CoordinatorServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    _project(server, tmp_path, gate)
    err = tmp_path / "client.err"
    with err.open("w") as stderr:
        client = subprocess.Popen(
            [str(BIN / "genja"), "run", "tasks.py:Gated", "-s", "settings.yaml"],
            cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        )  # fmt: skip
    try:
        # The quick hosts' results reached the client before it dies.
        wait_for(lambda: f"[{len(QUICK)}/{len(QUICK) + len(SLOW)}]" in err.read_text(), "results")
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=30)
    finally:
        stop(client)
    text = err.read_text()
    run_id = text.split(", run ", 1)[1].split()[0]  # "running gated on 8 hosts, run ID"

    # A new process attaches while the slow hosts still wait: it shows what was done, then
    # the rest once they finish.
    attach = subprocess.Popen(
        [str(BIN / "genja"), "attach", run_id, "-s", "settings.yaml", "--json", "-"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # let it attach before the run ends (either way it gets the tree)
        gate.touch()
        out, errors = attach.communicate(timeout=240)
    finally:
        stop(attach)
    assert attach.returncode == 0, errors
    tree = json.loads(out)
    assert tree["run_id"] == run_id
    assert tree["task_name"] == "gated"
    assert sorted(tree["hosts"]) == sorted(QUICK + SLOW)
    for host_id, result in tree["hosts"].items():
        assert result["status"] == "passed", (host_id, result)
        assert result["result"] == {"host": host_id}
        assert result["execution_metadata"]["agent"] == "jump1-0"
    assert f"{len(QUICK) + len(SLOW)} hosts: {len(QUICK) + len(SLOW)} passed" in errors

    # After the run: Genja.attach replays it all; every host ran once (replayed, not rerun).
    with _client(tmp_path) as g:
        results = g.attach(run_id)
    assert results.run_id == run_id
    assert sorted(results.passed_hosts) == sorted(QUICK + SLOW)
    assert results["slow2"].result == {"host": "slow2"}
    ran = (tmp_path / "ran.log").read_text().split()
    assert sorted(ran) == sorted(QUICK + SLOW)


@task(name="wait_for_gate")
class WaitForGate:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        gate = host.data.get("gate")  # hosts without one finish at once
        deadline = time.monotonic() + 120
        while gate and not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return TaskSuccessResult()


def test_attach_streams_the_rest_of_a_running_run(
    server: CoordinatorServer, tmp_path: Path
) -> None:
    """Genja.attach_events while the run goes on: the results so far, then the rest."""
    gate = tmp_path / "gate"
    settings = genja.Settings.from_dict({"runner": {"options": server.runner_options()}})
    hosts = {f"edge{i}": {"data": {"agent_pool": "jump1", "gate": str(gate)}} for i in range(3)}
    outcome: dict[str, Any] = {}
    with genja.Genja.from_hosts(hosts, settings) as g:
        stream = g.stream_task(WaitForGate)
        started = next(stream)
        assert isinstance(started, genja.RunStarted)
        assert started.run_id is not None
        assert isinstance(next(stream), genja.HostStarted)  # the run is at the server
        runner = threading.Thread(target=lambda: outcome.update(r=list(stream)))
        runner.start()

        async def follow() -> list[genja.RunEvent]:
            events = []
            async for event in g.attach_events(started.run_id or ""):
                events.append(event)
                if isinstance(event, genja.RunStarted):
                    gate.touch()
            return events

        events = asyncio.run(follow())
        runner.join(timeout=120)
    finished = events[-1]
    assert isinstance(finished, genja.RunFinished)
    assert finished.results.host_summary().passed == 3
    assert [e.host_ids for e in events if isinstance(e, genja.RunStarted)] == [tuple(hosts)]
    assert isinstance(outcome["r"][-1], genja.RunFinished)


def test_another_client_identity_may_not_attach(server: CoordinatorServer, tmp_path: Path) -> None:
    settings = genja.Settings.from_dict({"runner": {"options": server.runner_options()}})
    gate = tmp_path / "gate"
    gate.touch()
    hosts = {"edge0": {"data": {"agent_pool": "jump1", "gate": str(gate)}}}
    with genja.Genja.from_hosts(hosts, settings) as g:
        run_id = g.run_task(WaitForGate).run_id
    assert run_id is not None
    other = genja.Settings.from_dict(
        {
            "runner": {
                "options": server.runner_options(
                    coordinator_token_file=str(server.folder / "other.token")
                )
            }
        }
    )
    with genja.Genja(settings=other) as g, pytest.raises(genja.ConfigurationError) as refused:
        g.attach(run_id)
    assert "refused this client (PERMISSION_DENIED)" in str(refused.value)
    assert "started by another client" in str(refused.value)
    with genja.Genja(settings=settings) as g:  # its own client still may
        assert g.attach(run_id).run_id == run_id


def test_an_unknown_run_id_is_one_clear_error(server: CoordinatorServer, tmp_path: Path) -> None:
    _project(server, tmp_path, tmp_path / "gate")
    done = _genja(tmp_path, "attach", "0123456789abcdef", "-s", "settings.yaml")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "no run '0123456789abcdef' on this coordinator" in lines[0]
    assert "--keep-runs" in lines[0]


def test_a_finished_run_is_forgotten_after_keep_runs(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server", ("jump1",), args=["--keep-runs", "1s"])
    try:
        settings = genja.Settings.from_dict({"runner": {"options": server.runner_options()}})
        # No agent of pool jump1: its host fails at once, and the run is over.
        with genja.Genja.from_hosts({"edge0": {"data": {"agent_pool": "jump1"}}}, settings) as g:
            results = g.run_task(WaitForGate)
            assert results.failed_hosts == ["edge0"]
            assert results.run_id is not None

            errors: list[str] = []

            def forgotten() -> bool:
                try:
                    g.attach(results.run_id or "")
                except genja.ConfigurationError as error:
                    errors.append(str(error))
                    return True
                return False

            wait_for(forgotten, "the run to be forgotten")
            assert f"no run {results.run_id!r} on this coordinator" in errors[0]
            assert "finished more than 1s ago" in errors[0]
    finally:
        server.close()


def test_a_client_that_stops_its_run_cancels_it_at_the_server(
    server: CoordinatorServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"  # never opened: the run only ends by being stopped
    settings = genja.Settings.from_dict({"runner": {"options": server.runner_options()}})
    hosts = {f"edge{i}": {"data": {"agent_pool": "jump1", "gate": str(gate)}} for i in range(2)}
    with genja.Genja.from_hosts(hosts, settings) as g:
        stream = g.stream_task(WaitForGate)
        started = next(stream)
        assert isinstance(started, genja.RunStarted)
        # Stopped once the run is at the server (its hosts begun), not before it is sent.
        assert isinstance(next(stream), genja.HostStarted)
        stream.stop("enough")
        events = list(stream)
        assert isinstance(events[-1], genja.RunFinished)
        attached = g.attach(started.run_id or "")
    assert sorted(attached.failed_hosts) == ["edge0", "edge1"]
    message = attached["edge0"].message
    assert "the run was cancelled" in message
    assert "the client stopped the run" in message
    gate.touch()  # let the agent's threads go


def test_ctrl_c_in_genja_attach_detaches_and_the_run_goes_on(
    server: CoordinatorServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    _project(server, tmp_path, gate)
    settings = genja.Settings.from_file(tmp_path / "settings.yaml")
    with genja.Genja.from_settings(settings) as g:
        stream = g.stream_task(WaitForGate)
        started = next(stream)
        assert isinstance(started, genja.RunStarted)
        assert isinstance(next(stream), genja.HostStarted)
        run_id = started.run_id or ""
        err = tmp_path / "attach.err"
        with err.open("w") as stderr:
            attach = subprocess.Popen(
                [str(BIN / "genja"), "attach", run_id, "-s", "settings.yaml"],
                cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=stderr, text=True,
            )  # fmt: skip
        try:
            wait_for(lambda: f"run {run_id}" in err.read_text(), "the attach to start")
            attach.send_signal(signal.SIGINT)
            assert attach.wait(timeout=60) == 130
        finally:
            stop(attach)
        assert "detached from the run, which goes on at the coordinator" in err.read_text()
        gate.touch()
        events = list(stream)  # the run's own client: it was not cancelled
    finished = events[-1]
    assert isinstance(finished, genja.RunFinished)
    assert sorted(finished.results.passed_hosts) == sorted(QUICK + SLOW)
