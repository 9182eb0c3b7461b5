"""One measurement in a fresh process: `python -m bench._worker SPEC_JSON OUT_JSON`.

The driver starts one of these per (scenario, runner, repetition), so imports, caches and
memory never carry over from one measurement to the next. Only the runs are timed: building
the inventory objects and checking the results are not.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import _proctree


def _session(spec: dict[str, Any]) -> Any:
    runner = spec["runner"]
    inventory = spec["scenario"] == "inventory"
    if runner.startswith("genja"):
        from bench import _genja_side

        if inventory:
            return _genja_side.GenjaInventorySession(spec)
        return _genja_side.GenjaSession(spec)
    from bench import _nornir_side

    if inventory:
        return _nornir_side.NornirInventorySession(spec)
    return _nornir_side.NornirSession(spec)


def _tree_cpu(me: int) -> dict[int, float]:
    return {pid: _proctree.cpu_seconds([pid]) for pid in _proctree.descendants(me)}


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Each phase of the session, timed. The `cold` phase is timed as a user feels it: from
    just before the driver started this process (`spawned_at`, Unix time) to the end of the
    first run, so interpreter start, imports, building the inventory and the runner, and the
    run are all in it; its CPU is all the process tree used until then."""
    me = os.getpid()
    session = _session(spec)
    phases: dict[str, dict[str, Any]] = {}
    try:
        session.setup()
        for phase in session.phases:
            cold = phase == "cold"
            if not cold:
                gc.collect()
            before = {} if cold else _tree_cpu(me)
            start = time.perf_counter()
            outcome = session.run(phase)
            wall = time.perf_counter() - start
            if cold:
                wall = time.time() - float(spec["spawned_at"])
            after = _tree_cpu(me)
            cpu = sum(after.values()) - sum(before.get(pid, 0.0) for pid in after)
            done = session.verify(outcome)
            del outcome
            own = after.get(me, 0.0) - before.get(me, 0.0)
            phases[phase] = {
                "wall_s": wall,
                "cpu_s": cpu,
                # the client process (with genja's embedded coordinator) vs its agents
                "cpu_client_s": own,
                "cpu_children_s": cpu - own,
                "hosts_done": done,
            }
            split = getattr(session, "split", None)
            times = split() if cold and split is not None else None
            if times is not None:
                phases[phase]["split"] = times
        pids = _proctree.descendants(me)
        return {
            "status": "ok",
            "phases": phases,
            "peak_rss_mb": _proctree.peak_rss_mb(pids),
            "processes": len(pids),
        }
    finally:
        session.close()


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    out = Path(argv[1])
    try:
        report = measure(spec)
    except Exception as error:
        from bench._genja_side import SkipScenario

        if isinstance(error, SkipScenario):
            report = {"status": "skipped", "reason": str(error)}
        else:
            traceback.print_exc()
            report = {"status": "error", "reason": f"{type(error).__name__}: {error}"[:2000]}
    out.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
