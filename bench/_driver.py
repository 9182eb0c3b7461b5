"""Run every scenario for genja and Nornir, interleaved, and report one table plus JSON.

    python -m bench            the full benchmark (about 15-20 minutes on 2 cores)
    python -m bench --smoke    every scenario once at a small size (the test suite runs this)

Each measurement is a fresh `python -m bench._worker` process. While it runs, this process
samples the summed resident memory of its whole process tree every 50 ms; the worker itself
reports each process's own peak (VmHWM) summed, and the CPU time of the tree during each timed
run (utime + stime from /proc for the worker, its embedded coordinator and its agents).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import _proctree, _targets, _workload

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
WORKER_TIMEOUT = 900.0


@dataclass(frozen=True)
class Case:
    scenario: str
    hosts: int
    runners: tuple[str, ...]
    reps: int
    note: str = ""


GENJA_RUNNERS = ("genja", "genja-threaded", "genja-serial")


def full_cases() -> list[Case]:
    both = ("genja", "nornir-t20", "nornir-t100")
    matched = ("genja-c20", "genja-c100", "nornir-t20", "nornir-t100")
    return [
        Case("noop", 1_000, both, 5),
        Case("noop", 10_000, (*GENJA_RUNNERS, "nornir-t20", "nornir-t100"), 3),
        Case("noop", 50_000, both, 3),
        Case("parse", 2_000, (*GENJA_RUNNERS, "nornir-t20", "nornir-serial"), 3),
        Case("tree", 10_000, (*GENJA_RUNNERS, "nornir-t20", "nornir-t100"), 3),
        Case("inventory", 10_000, ("genja", "nornir"), 3),
        Case("inventory", 50_000, ("genja", "nornir"), 3),
        # 200, not the 1,000: 1,000 open paramiko connections are 1,000 client threads
        # polling every 0.1 s plus 1,000 sshd sessions, load ~250 on this shared 2-core machine.
        Case("ssh", 200, both, 3),
        # genja's netmiko plugin vs nornir_netmiko, each side at 20 and at 100 hosts (and
        # logins) in flight. 200 devices, 25 to a fakenos process.
        Case("fakenos", 200, matched, 3),
        # Warm SSH plus a 5 ms TextFSM parse (ntc-templates): CPU-bound work per host, where
        # genja's agents use both cores and Nornir's threads share one GIL.
        Case("ssh_textfsm", 200, matched, 3),
    ]


def smoke_cases() -> list[Case]:
    return [
        Case("noop", 200, (*GENJA_RUNNERS, "nornir-t20"), 1),
        Case("parse", 50, ("genja", "nornir-serial"), 1),
        Case("tree", 50, ("genja", "nornir-t20"), 1),
        Case("inventory", 200, ("genja", "nornir"), 1),
        Case("ssh", 10, ("genja", "nornir-t20"), 1),
        Case("fakenos", 3, ("genja-c20", "nornir-t20"), 1),
        Case("ssh_textfsm", 10, ("genja-c20", "nornir-t20"), 1),
    ]


# ---------------------------------------------------------------- one measurement


class _Sampler(threading.Thread):
    """Polls the summed RSS of a process tree until told to stop; keeps the maximum."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_mb = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        # Finding the tree reads a file per thread (a Nornir worker can have 1,000 paramiko
        # threads), so the pid list is refreshed every 10th sample only.
        pids: list[int] = []
        tick = 0
        while not self._stop_event.is_set():
            if tick % 10 == 0:
                pids = _proctree.descendants(self.pid)
            tick += 1
            self.peak_mb = max(self.peak_mb, _proctree.rss_mb(pids))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one worker; its report plus the sampled peak RSS and the worker's total CPU."""
    with tempfile.TemporaryDirectory(prefix="genja-bench-") as tmp:
        out = Path(tmp) / "report.json"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        spec = {**spec, "spawned_at": time.time()}
        process = subprocess.Popen(
            [sys.executable, "-m", "bench._worker", json.dumps(spec), str(out)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        sampler = _Sampler(process.pid)
        sampler.start()
        try:
            _, stderr = process.communicate(timeout=WORKER_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)  # the worker's own session: it and its agents
            _, stderr = process.communicate()
        finally:
            sampler.stop()
        usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.exists():
            report: dict[str, Any] = json.loads(out.read_text())
        else:
            tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
            report = {"status": "error", "reason": f"worker exited {process.returncode}: {tail}"}
    if report["status"] == "error" and stderr:
        sys.stderr.write(stderr.decode(errors="replace")[-3000:])
    report["sampled_peak_rss_mb"] = sampler.peak_mb
    report["process_cpu_s"] = (usage_after.ru_utime + usage_after.ru_stime) - (
        usage_before.ru_utime + usage_before.ru_stime
    )
    return report


# ---------------------------------------------------------------- a case, repeated


def run_case(case: Case, targets: _targets.Targets, log: Any) -> dict[str, Any]:
    spec_base: dict[str, Any] = {"scenario": case.scenario, "hosts": case.hosts}
    skip_reason = None
    if case.scenario == "inventory":
        files = _workload.write_inventory(CACHE / f"inventory-{case.hosts}", case.hosts)
        spec_base["files"] = [str(f) for f in files]
    elif case.scenario in ("ssh", "ssh_textfsm", "fakenos"):
        target, skip_reason = targets.get(case.scenario, case.hosts)
        spec_base["target"] = target
    runs: dict[str, list[dict[str, Any]]] = {runner: [] for runner in case.runners}
    for rep in range(case.reps):
        # Rotate the order each repetition so neither runner always goes first.
        order = case.runners[rep % len(case.runners) :] + case.runners[: rep % len(case.runners)]
        for runner in order:
            if runs[runner] and runs[runner][-1]["status"] == "skipped":
                continue  # skipped once (a plugin or server is missing): skipped every time
            if skip_reason is not None:
                report: dict[str, Any] = {"status": "skipped", "reason": skip_reason}
            else:
                report = measure({**spec_base, "runner": runner})
            runs[runner].append(report)
            log(f"  {case.scenario:<11} {case.hosts:>6} rep {rep + 1}/{case.reps} "
                f"{runner:<14} {_brief(report)}")  # fmt: skip
    return {
        "scenario": case.scenario,
        "hosts": case.hosts,
        "repetitions": case.reps,
        "runners": {runner: summarize(case, reports) for runner, reports in runs.items()},
        "raw": runs,
    }


def _brief(report: dict[str, Any]) -> str:
    if report["status"] != "ok":
        return f"{report['status']}: {report.get('reason', '')}"
    walls = " ".join(f"{name}={p['wall_s']:.2f}s" for name, p in report["phases"].items())
    return f"{walls} rss={report['peak_rss_mb']:.0f}MB"


def summarize(case: Case, reports: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in reports if r["status"] == "ok"]
    if len(ok) != len(reports) or not ok:
        bad = next(r for r in reports if r["status"] != "ok")
        return {"status": bad["status"], "reason": bad.get("reason", "")}
    phases: dict[str, Any] = {}
    for phase in ok[0]["phases"]:
        walls = [r["phases"][phase]["wall_s"] for r in ok]
        cpus = [r["phases"][phase]["cpu_s"] for r in ok]
        median = statistics.median(walls)
        phases[phase] = {
            "wall_min_s": min(walls),
            "wall_median_s": median,
            "results_per_s": case.hosts / median,
            "cpu_ms_per_host": 1000 * statistics.median(cpus) / case.hosts,
            "cpu_client_share": statistics.median(
                r["phases"][phase]["cpu_client_s"] / max(r["phases"][phase]["cpu_s"], 1e-9)
                for r in ok
            ),
            "walls_s": walls,
        }
        splits = [r["phases"][phase]["split"] for r in ok if "split" in r["phases"][phase]]
        if splits:
            phases[phase]["split_median_s"] = {
                key: statistics.median(split[key] for split in splits) for key in splits[0]
            }
    return {
        "status": "ok",
        "phases": phases,
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in ok),
        "sampled_peak_rss_mb": statistics.median(r["sampled_peak_rss_mb"] for r in ok),
        "processes": ok[0]["processes"],
    }


def add_ratios(result: dict[str, Any]) -> None:
    """Each genja runner / the best Nornir runner, per phase: speed (results/s) and memory
    (peak RSS). `ratios` holds the default runner's (`genja`, the agents); `runner_ratios`
    every genja runner's."""
    runners = result["runners"]
    nornirs = {k: v for k, v in runners.items() if k.startswith("nornir") and v["status"] == "ok"}
    result["ratios"] = {}
    result["runner_ratios"] = {}
    for name, genja in runners.items():
        if not name.startswith("genja") or genja.get("status") != "ok" or not nornirs:
            continue
        ratios = result["runner_ratios"][name] = {}
        for phase, stats in genja["phases"].items():
            best_name, best = max(
                nornirs.items(), key=lambda item: item[1]["phases"][phase]["results_per_s"]
            )
            ratios[phase] = {
                "vs": best_name,
                "speed": stats["results_per_s"] / best["phases"][phase]["results_per_s"],
                "memory": genja["peak_rss_mb"] / best["peak_rss_mb"],
            }
    result["ratios"] = result["runner_ratios"].get("genja", {})


# ---------------------------------------------------------------- reporting


def table(results: list[dict[str, Any]]) -> str:
    header = (
        f"| {'scenario':<11} | {'hosts':>6} | {'phase':<5} | {'runner':<14} | {'wall min':>8} | "
        f"{'wall med':>8} | {'results/s':>9} | {'CPU ms/host':>11} | {'peak RSS MB':>11} | "
        f"{'genja/Nornir speed, mem':<23} |"
    )
    lines = [header, "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"]
    for result in results:
        for runner, stats in result["runners"].items():
            if stats["status"] != "ok":
                lines.append(
                    f"| {result['scenario']:<11} | {result['hosts']:>6} | {'':<5} | {runner:<14} | "
                    f"{stats['status']}: {stats['reason'][:90]}"
                )
                continue
            for phase, p in stats["phases"].items():
                ratio = ""
                mine = result.get("runner_ratios", {}).get(runner, {})
                if phase in mine:
                    r = mine[phase]
                    ratio = f"{r['speed']:.2f}x, {r['memory']:.2f}x ({r['vs']})"
                lines.append(
                    f"| {result['scenario']:<11} | {result['hosts']:>6} | {phase:<5} | "
                    f"{runner:<14} | {p['wall_min_s']:>7.3f}s | {p['wall_median_s']:>7.3f}s | "
                    f"{p['results_per_s']:>9.0f} | {p['cpu_ms_per_host']:>11.3f} | "
                    f"{stats['peak_rss_mb']:>11.0f} | {ratio:<23} |"
                )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    from importlib.metadata import version

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {
            name: _version(version, name)
            for name in ("genja", "nornir", "netmiko", "paramiko", "grpcio", "fakenos")
        },
        "load_average_at_start": os.getloadavg(),
    }


def _version(version: Any, name: str) -> str:
    try:
        return str(version(name))
    except Exception:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every scenario once, small")
    parser.add_argument("--only", default="", help="comma-separated scenarios to run")
    parser.add_argument("--reps", type=int, default=0, help="override the repetition count")
    parser.add_argument("--out", type=Path, help="JSON output (default bench/results/...)")
    args = parser.parse_args(argv)
    cases = smoke_cases() if args.smoke else full_cases()
    if args.only:
        wanted = set(args.only.split(","))
        cases = [c for c in cases if c.scenario in wanted]
    if args.reps:
        cases = [Case(c.scenario, c.hosts, c.runners, args.reps, c.note) for c in cases]
    out = args.out or RESULTS / ("smoke.json" if args.smoke else "latest.json")

    def log(message: str) -> None:
        print(message, flush=True)

    started = time.time()
    info = machine()
    info["parse_ms"] = _parse_ms()
    info["textfsm_ms"] = _textfsm_ms()
    log(f"machine: {info['cores']} cores, {info['cpu']}, load {info['load_average_at_start']}")
    results = []
    with _targets.Targets(CACHE, log) as targets:
        for case in cases:
            result = run_case(case, targets, log)
            add_ratios(result)
            results.append(result)
    document = {
        "smoke": args.smoke,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": time.time() - started,
        "machine": info,
        "results": results,
        "table": table(results),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2))
    log("")
    log(document["table"])
    log(f"\nwrote {out} in {document['duration_s']:.0f} s")
    return 0


def _textfsm_ms() -> float | None:
    """CPU ms of one ssh_textfsm parse here (None without ntc-templates)."""
    try:
        import ntc_templates  # noqa: F401
    except ImportError:
        return None
    output = _workload.ios_interfaces_output()
    _workload.textfsm_parse(output)  # the index and the template load once
    start = time.process_time()
    rounds = 50
    for _ in range(rounds):
        _workload.textfsm_parse(output)
    return 1000 * (time.process_time() - start) / rounds


def _parse_ms() -> float:
    output = _workload.command_output()
    start = time.perf_counter()
    rounds = 50
    for _ in range(rounds):
        _workload.parse(output)
    return 1000 * (time.perf_counter() - start) / rounds
