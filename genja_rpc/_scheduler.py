"""Run bookkeeping without I/O: which host goes to which agent, which (host, task) results are
still owed, and what to record when an agent is lost or a deadline passes.

Every selected host ends with a result at every node of the planned tree: the scheduler says
which failures to make for whatever an agent could not deliver, so a run always completes.

When an agent is lost, the hosts it had begun fail (they may have half-run their tasks), and
the hosts it had not begun move to a successor: its replacement (the same agent id) or another
agent of its pool. A host moves at most `MAX_MOVES` times, so a host that takes down every
agent before it can say it began still ends.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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


# Times a host that never began may move to another agent before it fails with its agent.
MAX_MOVES = 3


@dataclass(frozen=True, slots=True)
class Loss:
    """What losing an agent means for a run: failures to record (hosts it had begun, and hosts
    that could not move), and the agents that now owe hosts they were not sent yet (see
    `RunState.take_undelivered`)."""

    fillers: list[Filler] = field(default_factory=list)
    moved: dict[str, list[str]] = field(default_factory=dict)


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
        self._started: set[str] = set()  # unfinished hosts their agent said it began
        self._moves: dict[str, int] = {}
        self._undelivered: dict[str, list[str]] = {
            agent: list(hosts) for agent, hosts in self.assignment.items()
        }

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

    def take_undelivered(self, agent_id: str) -> list[str]:
        """The hosts `agent_id` owes that were not sent to it yet (all of its hosts at first,
        hosts moved to it later), in order; taking them marks them sent."""
        return self._undelivered.pop(agent_id, [])

    def on_started(self, agent_id: str, host_ids: Iterable[str]) -> None:
        """The agent began these hosts: losing it now fails them instead of moving them."""
        pending = self._pending.get(agent_id)
        if pending:
            self._started.update(h for h in host_ids if h in pending)

    def running(self, agent_id: str, started: Collection[str] = ()) -> list[str]:
        """Hosts the agent began (by its reports, or `started`) and has not finished."""
        pending = self._pending.get(agent_id, set())
        return [
            h for h in self.assignment.get(agent_id, ()) if h in pending and self._began(h, started)
        ]

    def _began(self, host_id: str, started: Collection[str]) -> bool:
        return host_id in self._started or host_id in started or host_id in self._received

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

    def on_agent_lost(
        self,
        agent_id: str,
        failure: Failure,
        *,
        queued: Failure | None = None,
        started: Collection[str] = (),
        successors: Sequence[str] = (),
    ) -> Loss:
        """The agent will send nothing more. Hosts it began (by its reports or `started`, what
        its supervisor learned otherwise) fail with `failure` from their first missing node;
        the others move to `successors` (by `agent_for` over them; the lost agent's own id
        when a replacement takes its place), or fail with `queued` (default `failure`) when
        there is none or they moved `MAX_MOVES` times already."""
        pending = self._pending.get(agent_id)
        loss = Loss()
        if pending is None:
            return loss
        self._undelivered.pop(agent_id, None)
        targets = sorted(set(successors))
        kept: list[str] = []
        for host_id in self.assignment[agent_id]:
            if host_id not in pending:
                kept.append(host_id)
                continue
            if self._began(host_id, started):
                loss.fillers.append(Filler(host_id, self._received.get(host_id, 0), failure))
                self._close(agent_id, host_id)
                kept.append(host_id)
                continue
            moves = self._moves.get(host_id, 0)
            if not targets or moves >= MAX_MOVES:
                why = queued or failure
                if moves:
                    why = Failure(
                        f"{why.message} (it had moved to another agent {moves} times already)",
                        why.kind,
                        why.retryable,
                    )
                loss.fillers.append(Filler(host_id, 0, why))
                self._close(agent_id, host_id)
                kept.append(host_id)
                continue
            self._moves[host_id] = moves + 1
            target = agent_for(host_id, targets)
            loss.moved.setdefault(target, []).append(host_id)
            if target == agent_id:
                kept.append(host_id)
            else:
                self._close(agent_id, host_id)
        self.assignment[agent_id] = kept
        for target, host_ids in loss.moved.items():
            self._pending.setdefault(target, set()).update(host_ids)
            self._undelivered.setdefault(target, []).extend(host_ids)
            if target != agent_id:
                self.assignment.setdefault(target, []).extend(host_ids)
        return loss

    def on_deadline(self, failure: Failure) -> list[Filler]:
        fillers: list[Filler] = []
        for agent_id in list(self._pending):
            fillers.extend(self.on_agent_lost(agent_id, failure).fillers)
        return fillers

    def _close(self, agent_id: str, host_id: str) -> None:
        pending = self._pending[agent_id]
        pending.discard(host_id)
        if not pending:
            del self._pending[agent_id]
        self._received.pop(host_id, None)
        self._started.discard(host_id)
