"""Run bookkeeping without I/O: which host goes to which agent, which (host, task) results are
still owed, and what to record when an agent is lost or a deadline passes.

Every selected host ends with a result at every node of the planned tree: the scheduler says
which failures to make for whatever an agent could not deliver, so a run always completes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

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

    def result(self) -> TaskFailureResult:
        return TaskFailureResult(message=self.message, kind=self.kind, retryable=self.retryable)


@dataclass(frozen=True, slots=True)
class Filler:
    """The coordinator's own record to make: `failure` for nodes `first_node ..` of a host."""

    host_id: str
    first_node: int
    failure: Failure


class RunState:
    """One run's bookkeeping. `hosts` are (host id, agent pool) pairs; each host goes to an
    agent of its pool, chosen by `agent_for` over the pool's agent ids in sorted order.

    Agents report hosts as records of consecutive nodes from node 0 on (see `HostRecord` in
    the proto); the state keeps, per host, how many nodes arrived, so it can accept each node
    once and knows where a lost host's failures start."""

    def __init__(
        self,
        hosts: Iterable[tuple[str, str]],
        node_count: int,
        agents_by_pool: Mapping[str, Sequence[str]],
    ) -> None:
        self.node_count = node_count
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
        self._received: dict[str, int] = {}

    def route_failures(self) -> list[Filler]:
        """Failures for hosts whose agent pool has no agent connected (reported once)."""
        fillers = [
            Filler(
                host_id,
                0,
                Failure(
                    f"no agent of pool {pool!r} is connected to the coordinator",
                    TaskFailureKind.CONNECTION,
                    retryable=True,
                ),
            )
            for pool, host_ids in self._unroutable.items()
            for host_id in host_ids
        ]
        self._unroutable = {}
        return fillers

    @property
    def finished(self) -> bool:
        return not self._pending

    def unfinished_hosts(self) -> list[str]:
        return [host for hosts in self._pending.values() for host in hosts]

    def agents_with_work(self) -> list[str]:
        return list(self._pending)

    def accept(
        self, agent_id: str, host_id: str, first_node: int, count: int, done: bool
    ) -> tuple[bool, Filler | None]:
        """Whether to pass a record on, and a filler for nodes a finished host never sent.
        Refused: records of hosts this agent does not own or finished already, and records
        that do not continue exactly where the host's previous record ended."""
        pending = self._pending.get(agent_id)
        if pending is None or host_id not in pending:
            return False, None
        received = self._received.get(host_id, 0)
        end = first_node + count
        if first_node != received or end > self.node_count or (count == 0 and not done):
            return False, None
        if not done and end < self.node_count:
            self._received[host_id] = end
            return True, None
        self._close(agent_id, host_id)
        if end == self.node_count:
            return True, None
        missing = Failure(
            "the agent finished this host without reporting this task", TaskFailureKind.INTERNAL
        )
        return True, Filler(host_id, end, missing)

    def on_agent_lost(self, agent_id: str, failure: Failure) -> list[Filler]:
        """Failures for the rest of every host the agent had not finished."""
        pending = self._pending.get(agent_id)
        if pending is None:
            return []
        fillers = [
            Filler(host_id, self._received.get(host_id, 0), failure)
            for host_id in self.assignment[agent_id]
            if host_id in pending
        ]
        for filler in fillers:
            self._close(agent_id, filler.host_id)
        return fillers

    def on_deadline(self, failure: Failure) -> list[Filler]:
        fillers: list[Filler] = []
        for agent_id in list(self._pending):
            fillers.extend(self.on_agent_lost(agent_id, failure))
        return fillers

    def _close(self, agent_id: str, host_id: str) -> None:
        pending = self._pending[agent_id]
        pending.discard(host_id)
        if not pending:
            del self._pending[agent_id]
        self._received.pop(host_id, None)
