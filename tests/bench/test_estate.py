"""`python -m bench.estate --smoke`: 3 pools, each a network namespace of agents that alone
reaches its own sshd targets, a coordinator server in the root namespace, 300 hosts; every host
passes, then a run that kills one pool's agents accounts for every host of that pool. The
estate leaves nothing behind: not on success, not on Ctrl-C, not after a SIGKILL (the next run
sweeps it).

No timing is asserted: the numbers of a smoke run on a shared machine mean nothing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import _estate_lab
from bench.estate import SMOKE

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", autouse=True)
def _estate_possible() -> None:
    reason = _estate_lab.unavailable()
    if reason is not None:
        pytest.skip(reason)


def _leftovers(pid: int) -> list[str]:
    """Namespaces and routes of the estate run `pid` that still exist."""
    namespaces, routes = (
        subprocess.run(["ip", *what], capture_output=True, text=True, check=True).stdout
        for what in (("netns", "list"), ("route", "show"))
    )
    return [
        line
        for line in namespaces.splitlines()
        if re.match(rf"{_estate_lab.PREFIX}{pid}[jd]\d", line)
    ] + [line for line in routes.splitlines() if re.search(rf"\bmetric {pid}\b", line)]


def _estate(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.estate", "--smoke", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_the_smoke_estate_accounts_for_every_host(tmp_path: Path) -> None:
    out = tmp_path / "estate.json"
    process = _estate("--json", str(out))
    output, _ = process.communicate(timeout=280)
    assert process.returncode == 0, output[-6000:]
    assert _leftovers(process.pid) == []
    folder = re.search(r"files in (\S+)", output)
    assert folder is not None, output
    assert not Path(folder.group(1)).exists()
    document = json.loads(out.read_text())

    # Each pool's targets answer from its own namespace only.
    assert len(document["isolation"]) == SMOKE.pools
    first = document["run"]
    assert (first["hosts"], first["passed"], first["failed"], first["lost"]) == (300, 300, 0, 0)
    assert first["problems"] == []
    for row in first["pools"].values():
        assert row["passed"] == row["hosts"] == 100
        assert row["ssh_done_s"] is not None

    second = document["kill_run"]
    kill = second["kill"]
    assert len(kill["pids"]) == SMOKE.agents_per_pool
    assert second["lost"] == 0
    assert second["problems"] == [], second["problems"]
    for name, row in second["pools"].items():
        assert row["lost"] == 0
        assert row["passed"] + row["failed"] == row["hosts"], (name, row)
        if name == kill["pool"]:
            # The held host at least was in flight; every failure names a killed agent.
            assert row["failed"] >= 1
            assert sum(row["failure_messages"].values()) == row["failed"]
            for message in row["failure_messages"]:
                assert any(f"agent {agent} " in message for agent in kill["agents"]), message
        else:
            assert row["failed"] == 0, (name, row)
    assert document["ok"] is True


def test_ctrl_c_takes_the_estate_down(tmp_path: Path) -> None:
    process = _estate()
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "estate up" in line:
            break
    else:
        process.wait(timeout=60)
        pytest.fail("the estate did not come up: " + "".join(lines)[-4000:])
    folder = re.search(r"files in (\S+)", lines[-1])
    assert folder is not None
    assert _leftovers(process.pid) != []  # it was up
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=120)
    assert process.returncode == 130, rest
    assert "interrupted; everything it made is removed" in rest
    assert _leftovers(process.pid) == [], "".join(lines) + rest
    assert not Path(folder.group(1)).exists()


def test_what_a_killed_run_left_is_swept_by_the_next() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now: the "owner" of the leftovers below
    name = f"{_estate_lab.PREFIX}{gone.pid}j0"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert name in _estate_lab.sweep_stale()
        assert _leftovers(gone.pid) == []
        # A live owner's namespaces stay.
        mine = f"{_estate_lab.PREFIX}{os.getpid()}j0"
        subprocess.run(["ip", "netns", "add", mine], check=True)
        try:
            assert mine not in _estate_lab.sweep_stale()
            assert _leftovers(os.getpid()) != []
        finally:
            subprocess.run(["ip", "netns", "del", mine], check=False)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
