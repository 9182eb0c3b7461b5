"""`python -m bench --smoke` runs every scenario once, for genja and Nornir, and loses no host.

No timing is asserted: the numbers of a smoke run on a shared machine mean nothing. What this
proves is that the benchmark scripts work, so `make bench` does not break unnoticed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAY_SKIP = {"ssh", "ssh_textfsm", "fakenos"}  # need sshd / fakenos and genja's ssh plugin


@pytest.mark.e2e
@pytest.mark.timeout(420)
def test_smoke_runs_every_scenario_for_both_runners(tmp_path: Path) -> None:
    pytest.importorskip("nornir", reason="the bench extra is not installed")
    out = tmp_path / "smoke.json"
    process = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert process.returncode == 0, process.stdout[-4000:] + process.stderr[-4000:]
    document = json.loads(out.read_text())

    scenarios = {result["scenario"] for result in document["results"]}
    assert scenarios == {"noop", "parse", "tree", "inventory", "ssh", "ssh_textfsm", "fakenos"}
    for result in document["results"]:
        for runner, reports in result["raw"].items():
            assert reports, f"{result['scenario']} {runner}: no measurement"
            for report in reports:
                where = f"{result['scenario']} {runner}: {report.get('reason')}"
                if report["status"] == "skipped":
                    assert result["scenario"] in MAY_SKIP, where
                    assert report["reason"], where
                    continue
                assert report["status"] == "ok", where
                for phase in report["phases"].values():
                    assert phase["hosts_done"] == result["hosts"], where
                    assert phase["wall_s"] > 0, where
                assert report["peak_rss_mb"] > 0, where
    # The Nornir side of the SSH scenarios needs only sshd and fakenos, which CI installs.
    if Path("/usr/sbin/sshd").exists():
        for ssh in (r for r in document["results"] if r["scenario"].startswith("ssh")):
            assert ssh["runners"]["nornir-t20"]["status"] == "ok", ssh["scenario"]
    assert document["table"].count("\n") > 10
