"""The scheduler decides without I/O; these tests drive it with events directly."""

from __future__ import annotations

from collections import Counter

from genja.task import TaskFailureKind
from genja_rpc._scheduler import Failure, Filler, RunState, agent_for

NODES = 4
AGENTS = ["local-0", "local-1", "local-2"]


def _state(hosts: list[str], nodes: int = NODES) -> RunState:
    return RunState([(h, "local") for h in hosts], nodes, {"local": AGENTS})


def test_assignment_is_stable_and_spread() -> None:
    hosts = [f"h{i}" for i in range(3000)]
    first = [agent_for(h, AGENTS) for h in hosts]
    assert first == [agent_for(h, list(AGENTS)) for h in hosts]
    counts = Counter(first)
    assert set(counts) == set(AGENTS)
    assert min(counts.values()) > 800
    # Pinned values: the hash must not change between releases or processes, or hosts would
    # move to other agents and lose their warm connections.
    pinned = [agent_for(h, AGENTS) for h in ["router1", "router2", "switch7", "fw-01"]]
    assert pinned == ["local-1", "local-1", "local-2", "local-2"]


def test_records_are_accepted_once_in_order_and_only_from_the_owner() -> None:
    state = _state(["a", "b"])
    owner = agent_for("a", AGENTS)
    other = next(agent for agent in AGENTS if agent != owner)
    assert state.accept(other, "a", 0, 1, False) == (False, None)
    assert state.accept(owner, "a", 0, 1, False) == (True, None)
    assert state.accept(owner, "a", 0, 1, False) == (False, None)  # the same node again
    assert state.accept(owner, "a", 2, 1, False) == (False, None)  # a gap
    assert state.accept(owner, "a", 1, 2, False) == (True, None)
    assert state.accept(owner, "a", 3, 2, False) == (False, None)  # beyond the tree
    assert not state.finished
    assert state.accept(owner, "a", 3, 1, True) == (True, None)
    assert state.accept(owner, "a", 3, 1, True) == (False, None)  # finished already


def test_a_host_reported_done_with_missing_nodes_gets_a_filler() -> None:
    state = _state(["a"])
    owner = agent_for("a", AGENTS)
    accepted, filler = state.accept(owner, "a", 0, 2, True)
    assert accepted
    assert filler is not None
    assert (filler.host_id, filler.first_node) == ("a", 2)
    assert filler.failure.kind is TaskFailureKind.INTERNAL
    assert state.finished


def test_losing_an_agent_fails_exactly_what_it_owed() -> None:
    hosts = [f"h{i}" for i in range(30)]
    state = _state(hosts)
    lost = "local-1"
    mine = state.assignment[lost]
    assert len(mine) > 2
    finished, partial = mine[0], mine[1]
    state.accept(lost, finished, 0, NODES, True)
    state.accept(lost, partial, 0, 1, False)
    failure = Failure("agent local-1 (pid 7) was killed by SIGKILL", TaskFailureKind.INTERNAL)
    out = state.on_agent_lost(lost, failure)
    starts = {f.host_id: f.first_node for f in out}
    assert finished not in starts
    assert starts[partial] == 1
    assert {h for h, first in starts.items() if first == 0} == set(mine[2:])
    assert all(f.failure is failure for f in out)
    assert not state.finished  # the other agents still owe their hosts
    for agent in AGENTS:
        if agent != lost:
            for host in state.assignment[agent]:
                state.accept(agent, host, 0, NODES, True)
    assert state.finished


def test_deadline_fails_everything_left_as_a_retryable_timeout() -> None:
    state = _state(["a", "b", "c"], 1)
    failure = Failure("too slow", TaskFailureKind.TIMEOUT, retryable=True)
    out = state.on_deadline(failure)
    assert sorted(f.host_id for f in out) == ["a", "b", "c"]
    result = out[0].failure.result()
    assert result.kind is TaskFailureKind.TIMEOUT
    assert result.retryable
    assert state.finished


def test_hosts_go_to_agents_of_their_own_pool() -> None:
    hosts = [(f"dc{i}", "local") for i in range(20)] + [(f"edge{i}", "jump1") for i in range(20)]
    state = RunState(hosts, 1, {"local": AGENTS, "jump1": ["jump1-b", "jump1-a"]})
    assert state.route_failures() == []
    for agent, owned in state.assignment.items():
        prefix = "edge" if agent.startswith("jump1") else "dc"
        assert all(h.startswith(prefix) for h in owned)
    # Pools hash over their sorted agent ids, whatever order they were listed in.
    assert (
        state.assignment
        == RunState(
            hosts, 1, {"local": list(reversed(AGENTS)), "jump1": ["jump1-a", "jump1-b"]}
        ).assignment
    )


def test_hosts_of_a_pool_without_agents_fail_at_once_as_connection_failures() -> None:
    state = RunState([("a", "local"), ("b", "dc9")], NODES, {"local": AGENTS})
    out = state.route_failures()
    assert [(f.host_id, f.first_node) for f in out] == [("b", 0)]
    assert isinstance(out[0], Filler)
    failure = out[0].failure.result()
    assert failure.kind is TaskFailureKind.CONNECTION
    assert "no agent of pool 'dc9'" in failure.message
    assert state.route_failures() == []
    assert state.unfinished_hosts() == ["a"]
