"""The estate: a coordinator server and 10 agent pools, each in a network namespace of its own
that alone reaches its pool's sshd targets, and runs over 100,000 hosts.

    python -m bench.estate             the full estate (a few minutes on 2 cores; root)
    python -m bench.estate --smoke     3 pools, 300 hosts (the test suite runs this)

Two runs, each a no-op task over most hosts and an SSH task (`echo $SSH_CONNECTION` over the
ssh plugin) over a few per pool, side by side on one client:

1. every host must pass; reported: hosts passed / failed / lost (hosts with no result: must be
   0), wall time, the coordinator's resident memory before and at its peak and the growth per
   host in flight (the coordinator holds every host of a run from its start until the host's
   result goes back), CPU per process kind, and per pool its hosts and throughput;
2. the connections closed first (logins again), one pool's agents killed with SIGKILL 40 %
   into the run (by the first run's wall time; one of the pool's hosts is held in a long
   command, so the pool certainly has work in flight): every host of that pool must end
   passed, or failed with a message naming its lost agent, and every other pool's hosts must
   pass.

Exit status 0 when both hold, 1 when not, 2 when the estate cannot be built here. The lab
(namespaces, sshd, coordinator, agents) is bench/_estate_lab.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import genja
from bench import _proctree
from bench._driver import _Sampler
from bench._estate_lab import HEARTBEAT_TIMEOUT, Estate, Pool, unavailable
from bench._estate_tasks import Noop, SshCheck


@dataclass(frozen=True)
class Size:
    pools: int
    agents_per_pool: int
    hosts: int
    ssh_hosts: int
    targets_per_pool: int
    max_logins_per_agent: int
    kill_pool: int

    @property
    def ssh_per_pool(self) -> int:
        return self.ssh_hosts // self.pools


FULL = Size(
    pools=10, agents_per_pool=2, hosts=100_000, ssh_hosts=3_000, targets_per_pool=4,
    max_logins_per_agent=4, kill_pool=0,
)  # fmt: skip
SMOKE = Size(
    pools=3, agents_per_pool=2, hosts=300, ssh_hosts=24, targets_per_pool=2,
    max_logins_per_agent=2, kill_pool=0,
)  # fmt: skip


def hosts_of(estate: Estate, size: Size) -> dict[str, dict[str, Any]]:
    """`size.hosts` spread evenly over the pools; the first `ssh_per_pool` of each pool are
    SSH hosts on the pool's target addresses, the rest never connect anywhere."""
    hosts: dict[str, dict[str, Any]] = {}
    key = {"key_file": str(estate.client_key), "look_for_keys": False, "allow_agent": False}
    for pool in estate.pools:
        count = size.hosts // size.pools + (1 if pool.index < size.hosts % size.pools else 0)
        for number in range(count):
            name = f"{pool.name}-{number:06d}"
            if number < size.ssh_per_pool:
                hosts[name] = {
                    "hostname": pool.targets[number % len(pool.targets)],
                    "port": 22,
                    "username": estate.username,
                    "data": {"agent_pool": pool.name, "ssh": True,
                             "jump_address": pool.jump_address},
                    "connection_options": {"ssh": {"extras": key}},
                }  # fmt: skip
            else:
                hosts[name] = {"hostname": name, "data": {"agent_pool": pool.name}}
    return hosts


def settings_of(estate: Estate, size: Size) -> genja.Settings:
    return genja.Settings.from_dict(
        {
            "runner": {
                "options": {
                    "coordinator": estate.address,
                    "coordinator_token_file": str(estate.client_token),
                    "max_logins_per_agent": size.max_logins_per_agent,
                    "run_timeout": 1800,  # liveness only: a run that hangs ends, and says so
                    "heartbeat_timeout": HEARTBEAT_TIMEOUT,
                }
            },
            # Throwaway sshd host keys made for this run: nothing to check against, and
            # nothing written to a known_hosts file (as bench/_targets.py).
            "ssh": {"host_key_policy": "accept-any", "connect_timeout": 60},
        }
    )


# ---------------------------------------------------------------- one run


@dataclass
class Kill:
    """When and whom the second run kills: every agent of `pool`, `not_before` seconds into the
    run and not before the client has a result from the pool (so the run is under way there)."""

    pool: Pool
    not_before: float
    hold: str  # a host of the pool that runs a long command: in flight whenever the kill comes
    at: float = 0.0  # seconds into the run
    pids: tuple[int, ...] = ()
    seen: int = 0  # the pool's SSH results the client has
    seen_before: int = 0  # ... had when the agents died

    def now(self, estate: Estate, started: float) -> None:
        if not self.pids:
            self.pids = tuple(estate.kill_agents(self.pool))
            self.at = time.monotonic() - started
            self.seen_before = self.seen


def _pool_of(host_id: str) -> str:
    return host_id.rsplit("-", 1)[0]


async def _runs(
    noop: genja.Genja, ssh: genja.Genja, kill: Kill | None, started: float, estate: Estate
) -> tuple[genja.TaskResults, genja.TaskResults, list[float]]:
    """The no-op run and the SSH run side by side. The SSH run is watched host by host (a few
    thousand events): to kill a pool's agents on cue, and to time how long each result took
    to reach this client after its agent finished it."""

    async def ssh_run() -> tuple[genja.TaskResults, list[float]]:
        lags: list[float] = []
        results: genja.TaskResults | None = None
        options = {"hold": [kill.hold]} if kill is not None else {}
        async for event in ssh.run_task_events(SshCheck, options=options):
            if isinstance(event, genja.NodeFinished):
                metadata = event.result.execution_metadata
                if metadata is not None:
                    lags.append((datetime.now(timezone.utc) - metadata.finished_at).total_seconds())
            elif isinstance(event, genja.HostFinished):
                if kill is None or _pool_of(event.host_id) != kill.pool.name:
                    continue
                kill.seen += 1
                if kill.seen == 1:
                    delay = max(0.0, kill.not_before - (time.monotonic() - started))
                    asyncio.get_running_loop().call_later(delay, kill.now, estate, started)
            elif isinstance(event, genja.RunFinished):
                results = event.results
        assert results is not None
        return results, lags

    noop_results, (ssh_results, lags) = await asyncio.gather(noop.run_task_async(Noop), ssh_run())
    return noop_results, ssh_results, lags


def run_once(estate: Estate, client: genja.Genja, kill: Kill | None) -> dict[str, Any]:
    """Both tasks side by side; what came back, per pool, and what the processes used."""
    assert estate.coordinator is not None
    coordinator = estate.coordinator.pid
    processes = [p for pool in estate.pools for p in pool.agents if p.poll() is None]
    agents = [p.pid for p in processes]
    noop = client.filter(lambda host: "ssh" not in host.data)
    ssh = client.filter(lambda host: "ssh" in host.data)
    selected = set(client.host_ids())
    rss_before = _proctree.rss_mb([coordinator])
    cpu_before = {pid: _proctree.cpu_seconds([pid]) for pid in [coordinator, *agents]}
    client_cpu_before = time.process_time()
    sampler = _Sampler(coordinator, interval=0.05)
    sampler.start()
    wall_start = datetime.now(timezone.utc)
    started = time.monotonic()
    try:
        noop_results, ssh_results, lags = asyncio.run(_runs(noop, ssh, kill, started, estate))
    finally:
        sampler.stop()
    wall = time.monotonic() - started
    live_agents = [p.pid for p in processes if p.poll() is None]

    def used(pids: list[int]) -> float:
        return sum(_proctree.cpu_seconds([pid]) - cpu_before[pid] for pid in pids)

    cpu = {
        "client": time.process_time() - client_cpu_before,
        "coordinator": used([coordinator]),
        # A killed agent's CPU went with it: this sums the agents alive at the end.
        "agents": used(live_agents),
    }
    rss_peak = max(sampler.peak_mb, rss_before)
    rss_after = _proctree.rss_mb([coordinator])
    report: dict[str, Any] = {
        "wall_s": round(wall, 3),
        "run_ids": [noop_results.run_id, ssh_results.run_id],
        "coordinator_rss_mb": {
            "before": round(rss_before, 1),
            "peak": round(rss_peak, 1),
            "after": round(rss_after, 1),
            "growth_kb_per_host": round((rss_peak - rss_before) * 1024 / len(selected), 3),
        },
        "agents_rss_mb": round(_proctree.rss_mb(live_agents), 1),
        "agents_alive": len(live_agents),
        "client_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpu_s": {name: round(value, 2) for name, value in cpu.items()},
        # How long SSH results took from their agent to this client (same machine, one clock).
        "ssh_result_lag_s": _quantiles(lags),
    }
    report.update(_outcome(estate, selected, (noop_results, ssh_results), wall_start, kill))
    return report


def _outcome(
    estate: Estate,
    selected: set[str],
    trees: tuple[genja.TaskResults, genja.TaskResults],
    wall_start: datetime,
    kill: Kill | None,
) -> dict[str, Any]:
    """Hosts passed / failed / lost, overall and per pool, with when each pool's no-op and SSH
    hosts finished, and what went wrong where it should not have."""
    passed: set[str] = set()
    failed: dict[str, str] = {}
    finished_at: list[dict[str, float]] = []
    for tree in trees:
        passed.update(tree.passed_hosts)
        for host_id in tree.failed_hosts:
            failed[host_id] = str(getattr(tree[host_id], "message", ""))
        ends = {}
        for host_id, result in tree.hosts.items():
            metadata = result.execution_metadata
            if metadata is not None:
                ends[host_id] = (metadata.finished_at - wall_start).total_seconds()
        finished_at.append(ends)
    lost = selected - passed - set(failed)
    problems: list[str] = []
    pools: dict[str, dict[str, Any]] = {}
    for pool in estate.pools:
        ids = [h for h in selected if _pool_of(h) == pool.name]
        # When the agents finished the pool's hosts; the failures the coordinator made for a
        # killed pool carry the time it made them instead (reported apart).
        noop_ends, ssh_ends = (
            sorted(ends[h] for h in ids if h in ends and h in passed) for ends in finished_at
        )
        last = max(noop_ends[-1:] + ssh_ends[-1:], default=0.0)
        pool_failed = [h for h in ids if h in failed]
        pools[pool.name] = {
            "hosts": len(ids),
            "passed": sum(1 for h in ids if h in passed),
            "failed": len(pool_failed),
            "lost": sum(1 for h in ids if h in lost),
            "hosts_per_s": round(len(ids) / last, 1) if last > 0 else None,
            "noop_done_s": round(noop_ends[-1], 3) if noop_ends else None,
            "ssh_first_s": round(ssh_ends[0], 3) if ssh_ends else None,
            "ssh_done_s": round(ssh_ends[-1], 3) if ssh_ends else None,
        }
        killed = kill is not None and pool is kill.pool
        for host_id in pool_failed:
            message = failed[host_id]
            if not killed or not any(f"agent {a} " in message for a in pool.agent_ids):
                problems.append(f"{host_id}: {message}")
        if killed:
            assert kill is not None
            # By the agents' own clocks: hosts they had finished when they were killed (the
            # client hears of a result later; one not yet sent dies with its agent).
            pools[pool.name]["done_before_kill"] = sum(
                1 for ends in finished_at for h in ids if ends.get(h, kill.at) < kill.at
            )
            made = [ends[h] for ends in finished_at for h in pool_failed if h in ends]
            pools[pool.name]["failures_recorded_s"] = round(max(made), 3) if made else None
            pools[pool.name]["failure_messages"] = dict(
                Counter(_shape(failed[h]) for h in pool_failed)
            )
    if lost:
        problems.append(f"{len(lost)} hosts have no result: {', '.join(sorted(lost)[:5])}")
    return {
        "hosts": len(selected),
        "passed": len(passed),
        "failed": len(failed),
        "lost": len(lost),
        "pools": pools,
        "problems": problems[:20],
        "problem_count": len(problems),
    }


def _quantiles(values: list[float]) -> dict[str, float] | None:
    if len(values) < 2:
        return None
    deciles = statistics.quantiles(values, n=10)
    median, p90, top = deciles[4], deciles[8], max(values)
    return {"median": round(median, 3), "p90": round(p90, 3), "max": round(top, 3)}


def _shape(message: str) -> str:
    """A failure message with its pid numbers blanked, so equal causes count together."""
    words = message.split()
    return " ".join("N" if word.strip("(),;").isdigit() else word for word in words)


# ---------------------------------------------------------------- report


def _run_lines(name: str, report: dict[str, Any]) -> list[str]:
    rss = report["coordinator_rss_mb"]
    cpu = report["cpu_s"]
    lines = [
        f"{name}: {report['hosts']} hosts: passed {report['passed']}, failed "
        f"{report['failed']}, lost {report['lost']}; wall {report['wall_s']:.1f} s "
        f"({report['hosts'] / report['wall_s']:.0f} hosts/s)",
        f"  coordinator RSS {rss['before']:.0f} MB before, {rss['peak']:.0f} MB at peak, "
        f"{rss['after']:.0f} MB after: {rss['growth_kb_per_host']:.2f} KB per host in flight",
        f"  CPU s: client {cpu['client']:.1f}, coordinator {cpu['coordinator']:.1f}, agents "
        f"{cpu['agents']:.1f} ({report['agents_alive']} alive, {report['agents_rss_mb']:.0f} "
        f"MB RSS); client peak RSS {report['client_peak_rss_mb']:.0f} MB",
        f"  SSH results reached the client {_lag_text(report['ssh_result_lag_s'])} after their "
        "agent finished them",
        "  pool     hosts  passed  failed  lost  hosts/s  no-op done  SSH first  SSH done",
    ]

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    for pool, row in report["pools"].items():
        rate = row["hosts_per_s"]
        lines.append(
            f"  {pool:<7} {row['hosts']:>6}  {row['passed']:>6}  {row['failed']:>6}  "
            f"{row['lost']:>4}  {'-' if rate is None else f'{rate:.0f}':>7}  "
            f"{seconds(row['noop_done_s']):>10}  {seconds(row['ssh_first_s']):>9}  "
            f"{seconds(row['ssh_done_s']):>8}"
        )
        if "done_before_kill" in row:
            lines.append(
                f"      {row['done_before_kill']} hosts finished on its agents before the kill; "
                f"the coordinator recorded the last failure at "
                f"{seconds(row['failures_recorded_s'])}"
            )
        for message, count in row.get("failure_messages", {}).items():
            lines.append(f"      {count} x {message}")
    for problem in report["problems"]:
        lines.append(f"  PROBLEM {problem}")
    return lines


def _lag_text(lag: dict[str, float] | None) -> str:
    if lag is None:
        return "(too few to say)"
    return f"{lag['median']:.2f} s (median), {lag['p90']:.2f} s (p90), {lag['max']:.2f} s (max)"


def _machine() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "genja": version("genja"),
        "grpcio": version("grpcio"),
        "paramiko": version("paramiko"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def measure(
    size: Size, document: dict[str, Any], log: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build the estate, run both runs, take it down; the two runs' reports."""
    with Estate(size.pools, size.agents_per_pool, size.targets_per_pool, log=log) as estate:
        estate.build()
        document["isolation"] = estate.check_isolation()
        for line in document["isolation"]:
            log(f"  {line}")
        hosts = hosts_of(estate, size)
        with genja.Genja(genja.Inventory.from_hosts(hosts), settings_of(estate, size)) as client:
            first = run_once(estate, client, None)
            document["run"] = first
            log("\n".join(_run_lines("run 1", first)))
            victim = estate.pools[size.kill_pool]
            # Logins again (the first run left its connections open), and the kill 40 % into
            # the first run's wall time: while the SSH hosts, the long pole, are at work.
            kill = Kill(victim, not_before=0.4 * first["wall_s"], hold=f"{victim.name}-{0:06d}")
            client.close_connections()
            second = run_once(estate, client, kill)
            second["kill"] = {
                "pool": victim.name,
                "agents": victim.agent_ids,
                "pids": list(kill.pids),
                "at_s": round(kill.at, 3),
                "pool_ssh_results_seen_before": kill.seen_before,
                "held_host": kill.hold,
            }
            document["kill_run"] = second
            log(
                f"run 2: killed {', '.join(victim.agent_ids)} (pids "
                f"{', '.join(map(str, kill.pids))}) at {kill.at:.1f} s, when the client had "
                f"{kill.seen_before} of {victim.name}'s {size.ssh_per_pool} SSH results"
            )
            log("\n".join(_run_lines("run 2", second)))
    return first, second


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.estate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--smoke", action="store_true", help="3 pools, 300 hosts")
    parser.add_argument("--hosts", type=int, help="hosts in all (default 100,000)")
    parser.add_argument("--ssh-hosts", type=int, help="SSH hosts in all (default 3,000)")
    parser.add_argument("--pools", type=int, help="pools, one namespace each (default 10)")
    parser.add_argument("--agents-per-pool", type=int, help="default 2")
    parser.add_argument("--json", type=Path, help="write the report here as JSON")
    args = parser.parse_args(argv)
    base = SMOKE if args.smoke else FULL
    size = Size(
        pools=args.pools or base.pools,
        agents_per_pool=args.agents_per_pool or base.agents_per_pool,
        hosts=args.hosts or base.hosts,
        ssh_hosts=base.ssh_hosts if args.ssh_hosts is None else args.ssh_hosts,
        targets_per_pool=base.targets_per_pool,
        max_logins_per_agent=base.max_logins_per_agent,
        kill_pool=base.kill_pool,
    )
    if size.ssh_per_pool < 2 or size.hosts < size.ssh_hosts:
        parser.error("need at least 2 SSH hosts per pool, and no more SSH hosts than hosts")
    if not (1 <= size.pools <= 200 and 1 <= size.agents_per_pool <= 26):
        parser.error("1-200 pools and 1-26 agents per pool")
    reason = unavailable()
    if reason is not None:
        print(f"python -m bench.estate: cannot build the estate here: {reason}", file=sys.stderr)
        return 2

    def log(message: str) -> None:
        print(message, flush=True)

    # SIGTERM ends the run as Ctrl-C does, through the `finally`s that take the estate down;
    # and Ctrl-C does so even when a shell started this in the background with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    document: dict[str, Any] = {"size": size.__dict__, "machine": _machine()}
    log(
        f"estate: {size.pools} pools x {size.agents_per_pool} agents, {size.hosts} hosts "
        f"({size.ssh_hosts} over SSH); load {document['machine']['load_average_at_start']}"
    )
    try:
        first, second = measure(size, document, log)
    except KeyboardInterrupt:
        log("estate: interrupted; everything it made is removed")
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        log(f"estate: {type(error).__name__}: {error}; everything it made is removed")
        return 1
    ok = (
        first["problem_count"] == 0
        and first["passed"] == first["hosts"]
        and second["problem_count"] == 0
        and bool(second["kill"]["pids"])
    )
    document["ok"] = ok
    if args.json:
        args.json.write_text(json.dumps(document, indent=2))
    log("estate: " + ("every host accounted for" if ok else "FAILED: see PROBLEM lines"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
