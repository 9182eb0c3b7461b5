"""Chaos: no host is lost while agents die. `make chaos` (`python -m bench._chaos`).

10,000 hosts run a task that sleeps 5-20 ms on local agents, round after round, while a thread
SIGKILLs a random agent every 2 s. Each agent killed is replaced at once under the same id;
the hosts it was running fail, saying so, and the hosts it had not begun move to its
replacement. Reported, per round and in all: hosts passed, failed (running on a killed agent),
lost (no result, or a result saying the runtime never gave one: must be 0), moved (not begun
on a killed agent, run on its replacement), and the kills. A last run without kills must pass
every host: the agents are back at full strength.

Exits 1 if any host was lost, any failure is not a killed agent's, or the last run did not
pass in full.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import genja
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task

RESULTS = Path(__file__).resolve().parent / "results"
# What a run says of a host its runtime never reported (genja._streaming): a lost host.
_UNACCOUNTED = "the runtime ended the run without a result for this host"
_KILLED = "was killed by SIGKILL while running this host"


@task(name="chaos_work")
class Work:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        time.sleep(random.uniform(0.005, 0.020))
        return TaskSuccessResult()


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0
    lost: int = 0
    moved: int = 0
    kills: int = 0
    seconds: float = 0.0
    unexpected: list[str] = field(default_factory=list)  # failures not caused by a kill

    def add(self, other: Tally) -> None:
        for name in ("passed", "failed", "lost", "moved", "kills", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unexpected.extend(other.unexpected[: 10 - len(self.unexpected)])


class Killer:
    """SIGKILLs a random local agent every `every` seconds until stopped."""

    def __init__(self, g: genja.Genja, every: float, seed: int) -> None:
        self._g = g
        self._every = every
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self.kills = 0
        self._thread = threading.Thread(target=self._run, name="chaos-killer", daemon=True)

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            pids = list(self._g.runtime.agent_pids().values())  # type: ignore[attr-defined]
            if not pids:
                continue
            try:
                os.kill(self._random.choice(pids), signal.SIGKILL)
            except ProcessLookupError:
                continue
            self.kills += 1


def _tally(results: genja.TaskResults, hosts: list[str]) -> Tally:
    tally = Tally(passed=len(results.passed_hosts))
    tally.lost = len(set(hosts) - set(results.hosts))
    for host_id in results.failed_hosts:
        message = getattr(results[host_id], "message", "")
        if _UNACCOUNTED in message:
            tally.lost += 1
            continue
        tally.failed += 1
        if _KILLED not in message and len(tally.unexpected) < 10:
            tally.unexpected.append(f"{host_id}: {message}")
    return tally


def chaos(
    *, hosts: int, rounds: int, agents: int, concurrency: int, every: float, seed: int
) -> dict[str, Any]:
    names = [f"host{i:05d}" for i in range(hosts)]
    settings = genja.Settings.from_dict(
        {"runner": {"worker_count": agents, "options": {"host_concurrency": concurrency}}}
    )
    total = Tally()
    per_round: list[dict[str, Any]] = []
    with genja.Genja.from_hosts({name: {} for name in names}, settings) as g:
        g.run_task(Work)  # the agents are up before the first kill
        runtime: Any = g.runtime
        with Killer(g, every, seed) as killer:
            for number in range(1, rounds + 1):
                moved, kills = runtime.moved_hosts, killer.kills
                started = time.perf_counter()
                try:
                    tally = _tally(g.run_task(Work), names)
                except genja.GenjaError as error:  # the whole run lost
                    tally = Tally(lost=hosts, unexpected=[f"round {number}: {error}"])
                tally.seconds = time.perf_counter() - started
                tally.moved = runtime.moved_hosts - moved
                tally.kills = killer.kills - kills
                per_round.append(asdict(tally))
                total.add(tally)
                print(_line(f"round {number}", tally), flush=True)
        started = time.perf_counter()
        after = _tally(g.run_task(Work), names)
        after.seconds = time.perf_counter() - started
    print(_line("total", total))
    print(_line("after (no kills)", after))
    return {
        "hosts": hosts,
        "rounds": rounds,
        "agents": agents,
        "host_concurrency": concurrency,
        "kill_every_seconds": every,
        "per_round": per_round,
        "total": asdict(total),
        "after": asdict(after),
    }


def _line(label: str, t: Tally) -> str:
    return (
        f"{label:>18}: {t.passed:>6} passed {t.failed:>5} failed {t.lost:>3} lost "
        f"{t.moved:>5} moved {t.kills:>3} kills {t.seconds:6.1f}s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench._chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10, help="runs while agents are killed")
    parser.add_argument("--agents", type=int, default=4, help="local agents")
    parser.add_argument("--host-concurrency", type=int, default=25)
    parser.add_argument("--kill-every", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS / "chaos.json")
    args = parser.parse_args(argv)
    report = chaos(
        hosts=args.hosts,
        rounds=args.rounds,
        agents=args.agents,
        concurrency=args.host_concurrency,
        every=args.kill_every,
        seed=args.seed,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    total, after = report["total"], report["after"]
    problems = []
    if total["lost"] or after["lost"]:
        problems.append(f"{total['lost'] + after['lost']} hosts lost")
    if total["unexpected"]:
        problems.append("failures not caused by a kill: " + "; ".join(total["unexpected"][:3]))
    if after["passed"] != args.hosts:
        problems.append(f"the run after the kills passed {after['passed']}/{args.hosts}")
    for problem in problems:
        print(f"chaos: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
