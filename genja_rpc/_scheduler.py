"""Run bookkeeping without I/O: which host goes to which agent, which (host, task) results are
still owed, and what to record when an agent is lost or a deadline passes.

Every selected host ends with a result at every node of the planned tree: the scheduler
synthesizes failures for whatever an agent could not deliver, so a run always completes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from genja._plan import NodeOutcome, TaskPath
from genja.task._results import TaskFailureKind, TaskFailureResult


def agent_for(host_id: str, agent_ids: Sequence[str]) -> str:
    """The agent a host goes to: a stable hash of the host id, the same in every process and
    every run, so a host's open connections on that agent are reused."""
    return agent_ids[_host_hash(host_id) % len(agent_ids)]


@functools.lru_cache(maxsize=1 << 18)
def _host_hash(host_id: str) -> int:
    # Cached: the same hosts are placed again at every run.
    return int.from_bytes(hashlib.blake2b(host_id.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True, slots=True)
class Failure:
    message: str
    kind: TaskFailureKind
    retryable: bool = False


class RunState:
    """One run's bookkeeping. `hosts` are (host id, agent pool) pairs; each host goes to an
    agent of its pool, chosen by `agent_for` over the pool's agent ids in sorted order."""

    def __init__(
        self,
        hosts: Iterable[tuple[str, str]],
        paths: Sequence[TaskPath],
        agents_by_pool: Mapping[str, Sequence[str]],
    ) -> None:
        self._paths = list(paths)
        pools = {pool: sorted(agents) for pool, agents in agents_by_pool.items() if agents}
        self.assignment: dict[str, list[str]] = {}
        self._unroutable: dict[str, list[str]] = {}
        for host_id, pool in hosts:
            agents = pools.get(pool)
            if agents is None:
                self._unroutable.setdefault(pool, []).append(host_id)
                continue
            self.assignment.setdefault(agent_for(host_id, agents), []).append(host_id)
        self._pending: dict[str, set[str]] = {
            agent: set(hosts) for agent, hosts in self.assignment.items()
        }
        self._recorded: dict[str, set[TaskPath]] = {}

    def route_failures(self) -> list[NodeOutcome]:
        """Failures for hosts whose agent pool has no agent connected (reported once)."""
        outcomes: list[NodeOutcome] = []
        for pool, host_ids in self._unroutable.items():
            result = TaskFailureResult(
                message=f"no agent of pool {pool!r} is connected to the coordinator",
                kind=TaskFailureKind.CONNECTION,
                retryable=True,
            )
            outcomes.extend(NodeOutcome(h, path, result) for h in host_ids for path in self._paths)
        self._unroutable = {}
        return outcomes

    @property
    def finished(self) -> bool:
        return not self._pending

    def unfinished_hosts(self) -> list[str]:
        return [host for hosts in self._pending.values() for host in hosts]

    def agents_with_work(self) -> list[str]:
        return list(self._pending)

    def on_results(
        self, agent_id: str, outcomes: Iterable[NodeOutcome], done_host_ids: Iterable[str]
    ) -> list[NodeOutcome]:
        """The outcomes to record: those of hosts this agent owns and has not finished, each
        (host, path) once; plus failures for nodes a finished host never reported."""
        pending = self._pending.get(agent_id)
        if pending is None:
            return []
        accepted: list[NodeOutcome] = []
        for outcome in outcomes:
            if outcome.host_id not in pending:
                continue
            seen = self._recorded.setdefault(outcome.host_id, set())
            if outcome.path in seen:
                continue
            seen.add(outcome.path)
            accepted.append(outcome)
        missing = Failure(
            "the agent finished this host without reporting this task", TaskFailureKind.INTERNAL
        )
        for host_id in done_host_ids:
            if host_id in pending:
                accepted.extend(self._close_host(agent_id, host_id, missing))
        return accepted

    def on_agent_lost(self, agent_id: str, failure: Failure) -> list[NodeOutcome]:
        """Failures for every node the agent still owed, for every host it had not finished."""
        pending = self._pending.get(agent_id)
        if pending is None:
            return []
        outcomes: list[NodeOutcome] = []
        for host_id in [host for host in self.assignment[agent_id] if host in pending]:
            outcomes.extend(self._close_host(agent_id, host_id, failure))
        return outcomes

    def on_deadline(self, failure: Failure) -> list[NodeOutcome]:
        outcomes: list[NodeOutcome] = []
        for agent_id in list(self._pending):
            outcomes.extend(self.on_agent_lost(agent_id, failure))
        return outcomes

    def _close_host(self, agent_id: str, host_id: str, failure: Failure) -> list[NodeOutcome]:
        pending = self._pending[agent_id]
        pending.discard(host_id)
        if not pending:
            del self._pending[agent_id]
        seen = self._recorded.pop(host_id, set())
        result = TaskFailureResult(
            message=failure.message, kind=failure.kind, retryable=failure.retryable
        )
        return [NodeOutcome(host_id, path, result) for path in self._paths if path not in seen]
