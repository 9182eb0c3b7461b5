"""The scheduler decides without I/O; these tests drive it with events directly."""

from __future__ import annotations

from collections import Counter

from genja._plan import NodeOutcome
from genja.task import TaskFailureKind, TaskFailureResult, TaskSuccessResult
from genja_rpc._scheduler import Failure, RunState, agent_for

PATHS = [(), (0,), (0, 0), (1,)]
AGENTS = ["local-0", "local-1", "local-2"]


def _ok(host: str, path: tuple[int, ...]) -> NodeOutcome:
    return NodeOutcome(host, path, TaskSuccessResult())


def _state(hosts: list[str], paths: list[tuple[int, ...]] = PATHS) -> RunState:
    return RunState([(h, "local") for h in hosts], paths, {"local": AGENTS})


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


def test_results_are_accepted_once_and_only_from_the_owner() -> None:
    state = _state(["a", "b"])
    owner = agent_for("a", AGENTS)
    other = next(agent for agent in AGENTS if agent != owner)
    assert state.on_results(other, [_ok("a", ())], []) == []
    assert state.on_results(owner, [_ok("a", ()), _ok("a", ())], []) == [_ok("a", ())]
    assert not state.finished


def test_a_host_reported_done_with_missing_nodes_gets_failures() -> None:
    state = _state(["a"])
    owner = agent_for("a", AGENTS)
    out = state.on_results(owner, [_ok("a", ()), _ok("a", (0,))], ["a"])
    assert [o.path for o in out] == [(), (0,), (0, 0), (1,)]
    assert isinstance(out[2].result, TaskFailureResult)
    assert state.finished
    assert state.on_results(owner, [_ok("a", (1,))], []) == []


def test_losing_an_agent_fails_exactly_what_it_owed() -> None:
    hosts = [f"h{i}" for i in range(30)]
    state = _state(hosts)
    lost = "local-1"
    mine = state.assignment[lost]
    assert mine
    finished, partial = mine[0], mine[1]
    state.on_results(lost, [_ok(finished, p) for p in PATHS], [finished])
    state.on_results(lost, [_ok(partial, ())], [])
    failure = Failure("agent local-1 (pid 7) was killed by SIGKILL", TaskFailureKind.INTERNAL)
    out = state.on_agent_lost(lost, failure)
    failed_pairs = {(o.host_id, o.path) for o in out}
    assert (finished, ()) not in failed_pairs
    assert (partial, ()) not in failed_pairs
    assert (partial, (0,)) in failed_pairs
    assert len(out) == (len(mine) - 2) * len(PATHS) + (len(PATHS) - 1)
    assert all("SIGKILL" in o.result.message for o in out)  # type: ignore[union-attr]
    assert not state.finished  # the other agents still owe their hosts
    for agent in AGENTS:
        if agent != lost:
            for host in state.assignment[agent]:
                state.on_results(agent, [_ok(host, p) for p in PATHS], [host])
    assert state.finished


def test_deadline_fails_everything_left_as_a_retryable_timeout() -> None:
    state = _state(["a", "b", "c"], [()])
    out = state.on_deadline(Failure("too slow", TaskFailureKind.TIMEOUT, retryable=True))
    assert sorted(o.host_id for o in out) == ["a", "b", "c"]
    assert all(
        isinstance(o.result, TaskFailureResult)
        and o.result.kind is TaskFailureKind.TIMEOUT
        and o.result.retryable
        for o in out
    )
    assert state.finished


def test_hosts_go_to_agents_of_their_own_pool() -> None:
    hosts = [(f"dc{i}", "local") for i in range(20)] + [(f"edge{i}", "jump1") for i in range(20)]
    state = RunState(hosts, [()], {"local": AGENTS, "jump1": ["jump1-b", "jump1-a"]})
    assert state.route_failures() == []
    for agent, owned in state.assignment.items():
        prefix = "edge" if agent.startswith("jump1") else "dc"
        assert all(h.startswith(prefix) for h in owned)
    # Pools hash over their sorted agent ids, whatever order they were listed in.
    assert (
        state.assignment
        == RunState(
            hosts, [()], {"local": list(reversed(AGENTS)), "jump1": ["jump1-a", "jump1-b"]}
        ).assignment
    )


def test_hosts_of_a_pool_without_agents_fail_at_once_as_connection_failures() -> None:
    state = RunState([("a", "local"), ("b", "dc9")], PATHS, {"local": AGENTS})
    out = state.route_failures()
    assert {(o.host_id, o.path) for o in out} == {("b", p) for p in PATHS}
    failure = out[0].result
    assert isinstance(failure, TaskFailureResult)
    assert failure.kind is TaskFailureKind.CONNECTION
    assert "no agent of pool 'dc9'" in failure.message
    assert state.route_failures() == []
    assert state.unfinished_hosts() == ["a"]
