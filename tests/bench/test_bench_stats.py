"""The benchmark's bookkeeping: statistics, ratios and the /proc readings, without running it."""

from __future__ import annotations

import math
import os
import subprocess
import sys

from bench import _driver, _proctree


def _report(wall: float, cpu: float, rss: float) -> dict[str, object]:
    phase = {"wall_s": wall, "cpu_s": cpu, "cpu_client_s": cpu / 2, "hosts_done": 100}
    return {
        "status": "ok",
        "phases": {"warm": phase},
        "peak_rss_mb": rss,
        "sampled_peak_rss_mb": rss - 1,
        "processes": 3,
    }


def test_summary_takes_min_and_median_and_ratio_uses_the_best_nornir() -> None:
    case = _driver.Case("noop", 100, ("genja", "nornir-t20", "nornir-t100"), 3)
    result = {
        "scenario": "noop",
        "hosts": 100,
        "runners": {
            "genja": _driver.summarize(case, [_report(w, 0.2, 150) for w in (1.0, 2.0, 4.0)]),
            "nornir-t20": _driver.summarize(case, [_report(w, 0.1, 50) for w in (4.0, 4.0, 4.0)]),
            "nornir-t100": _driver.summarize(case, [_report(w, 0.1, 60) for w in (1.0, 1.0, 8.0)]),
        },
    }
    warm = result["runners"]["genja"]["phases"]["warm"]
    assert warm["wall_min_s"] == 1.0
    assert warm["wall_median_s"] == 2.0
    assert warm["results_per_s"] == 50.0
    assert warm["cpu_ms_per_host"] == 2.0
    assert warm["cpu_client_share"] == 0.5
    _driver.add_ratios(result)
    ratio = result["ratios"]["warm"]
    assert ratio["vs"] == "nornir-t100"  # 100 results/s beats nornir-t20's 25
    assert ratio["speed"] == 0.5
    assert ratio["memory"] == 2.5
    assert "0.50x, 2.50x (nornir-t100)" in _driver.table([result])


def test_genja_cn_runners_each_get_their_ratio_and_run_the_agents() -> None:
    from bench._genja_side import runner_of

    case = _driver.Case("fakenos", 100, ("genja-c20", "genja-c100", "nornir-t20"), 1)
    result = {
        "scenario": "fakenos",
        "hosts": 100,
        "runners": {
            "genja-c20": _driver.summarize(case, [_report(2.0, 0.2, 150)]),
            "genja-c100": _driver.summarize(case, [_report(1.0, 0.2, 160)]),
            "nornir-t20": _driver.summarize(case, [_report(4.0, 0.1, 50)]),
        },
    }
    _driver.add_ratios(result)
    assert result["runner_ratios"]["genja-c100"]["warm"]["speed"] == 4.0
    assert result["runner_ratios"]["genja-c20"]["warm"]["speed"] == 2.0
    table = _driver.table([result])
    assert "4.00x, 3.20x (nornir-t20)" in table
    assert "2.00x, 3.00x (nornir-t20)" in table
    assert runner_of("genja-c20") == ("agents", 20)
    assert runner_of("genja") == ("agents", None)
    assert runner_of("genja-threaded") == ("threaded", None)


def test_matched_concurrency_spreads_hosts_and_caps_logins_overall() -> None:
    from bench._genja_side import matched_concurrency

    options = matched_concurrency(20)
    assert options["host_concurrency"] == math.ceil(20 / (os.cpu_count() or 1))
    assert options["max_logins"] == 20
    assert options["max_logins_per_agent"] == 0


def test_a_failed_repetition_marks_the_runner_failed_not_averaged_away() -> None:
    case = _driver.Case("noop", 100, ("genja",), 2)
    broken = {"status": "error", "reason": "AssertionError: genja: passed=99 of 100 hosts"}
    summary = _driver.summarize(case, [_report(1.0, 0.1, 10), broken])
    assert summary == {"status": "error", "reason": broken["reason"]}


def test_proctree_sees_a_child_and_its_cpu_and_memory() -> None:
    # The child burns 0.2 s of CPU (however long that takes on a busy machine), says so, idles.
    burn = (
        "import time\n"
        "while time.process_time() < 0.2: pass\n"
        "print('burnt', flush=True)\n"
        "time.sleep(60)"
    )
    with subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True) as child:
        _check_child(child)


def _check_child(child: subprocess.Popen[str]) -> None:
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "burnt"
        pids = _proctree.descendants(os.getpid())
        assert child.pid in pids
        assert _proctree.cpu_seconds([child.pid]) >= 0.19
        assert _proctree.rss_mb([child.pid]) > 1
        assert _proctree.peak_rss_mb([child.pid]) >= _proctree.rss_mb([child.pid])
    finally:
        child.kill()
        child.wait()
