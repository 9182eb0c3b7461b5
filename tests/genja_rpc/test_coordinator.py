"""The coordinator driven in-process, without sockets: fake agents read their session's outbox
and answer through `on_agent_message`, as the servicer would."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import pytest

from genja._errors import RunError
from genja.task import TaskFailureResult, TaskSuccessResult
from genja_rpc import _coordinator
from genja_rpc._agent_end import AgentEnd
from genja_rpc._auth import LOCAL_POOL, AgentIdentity
from genja_rpc._convert import HostEntry, encode_record, record_from_proto
from genja_rpc._coordinator import (
    AgentSession,
    Coordinator,
    ProtocolMismatch,
    RunOrder,
    RunOutput,
)
from genja_rpc._pb import PROTOCOL_VERSION, pb


def _order(hosts: list[str]) -> RunOrder:
    return RunOrder(
        run_id=f"run-{len(hosts)}",
        root=pb.TaskSpec(name="root", sub_tasks=[pb.TaskSpec(name="child")]),
        code=(),
        hosts=[HostEntry(h, "", pb.Host(id=h).SerializeToString()) for h in hosts],
    )


async def _attach(coordinator: Coordinator, agent_id: str) -> AgentSession:
    identity = AgentIdentity(agent_id, LOCAL_POOL, "a test")
    hello = pb.AgentHello(agent_id=agent_id, pid=1, protocol=PROTOCOL_VERSION)
    return await coordinator.attach(identity, hello)


async def _answer(coordinator: Coordinator, session: AgentSession, *, stop_after: int) -> None:
    """Pass every host it is sent, until `stop_after` hosts; then go silent."""
    answered = 0
    while True:
        message = await session.outbox.get()
        if message is None:
            return
        if message.WhichOneof("body") != "work":
            continue
        for wire in message.work.hosts:
            host = pb.Host.FromString(wire)
            if answered == stop_after:
                return
            answered += 1
            record = encode_record(
                host.id,
                0,
                [TaskSuccessResult()] * 2,
                started_ns=[0, 0],
                durations_ns=[0, 0],
                done=True,
            )
            coordinator.on_agent_message(
                session,
                pb.AgentMessage(
                    results=pb.ResultBatch(run_id=message.work.run_id, records=[record])
                ),
            )


async def _collect(coordinator: Coordinator, order: RunOrder) -> list[RunOutput]:
    return [batch async for batch in coordinator.execute(order)]


def _results(batches: list[RunOutput]) -> list[tuple[str, int, object]]:
    """(host, node, result) for every node of every record."""
    found = []
    for batch in batches:
        for message in batch.records:
            record = record_from_proto(message)
            for offset, result in enumerate(record.results()):
                found.append((record.host_id, record.first_node + offset, result))
    return found


async def test_a_run_completes_with_every_host_at_every_node() -> None:
    coordinator = Coordinator()
    sessions = [await _attach(coordinator, f"local-{i}") for i in range(2)]
    agents = [asyncio.create_task(_answer(coordinator, s, stop_after=100)) for s in sessions]
    batches = await asyncio.wait_for(_collect(coordinator, _order(["a", "b", "c", "d"])), 10)
    assert sorted((host, node) for host, node, _ in _results(batches)) == sorted(
        (h, n) for h in "abcd" for n in (0, 1)
    )
    for agent in agents:
        agent.cancel()


async def test_an_agent_that_vanishes_without_a_report_is_caught_by_the_watch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_coordinator, "_WATCH_SECONDS", 0.2)
    coordinator = Coordinator()
    session = await _attach(coordinator, "local-0")
    silent = asyncio.create_task(_answer(coordinator, session, stop_after=1))
    run = asyncio.create_task(_collect(coordinator, _order(["a", "b", "c"])))
    await asyncio.sleep(0.1)
    # The session disappears the way no code path should allow: no detach, no lost report.
    del coordinator._sessions["local-0"]
    batches = await asyncio.wait_for(run, 10)
    failures = [
        (host, result)
        for host, _, result in _results(batches)
        if isinstance(result, TaskFailureResult)
    ]
    assert len({host for host, _ in failures}) == 2
    assert {r.message for _, r in failures} == {
        "agent local-0 disconnected before finishing this host"
    }
    silent.cancel()


async def test_detach_reports_the_loss_even_if_the_caller_is_cancelled_right_after() -> None:
    described = asyncio.Event()

    async def slow_describe(session: AgentSession) -> AgentEnd:
        await asyncio.sleep(0.2)
        described.set()
        return AgentEnd(f"agent {session.agent_id}", "was killed by SIGKILL")

    coordinator = Coordinator(describe_exit=slow_describe)
    session = await _attach(coordinator, "local-0")
    run = asyncio.create_task(_collect(coordinator, _order(["a"])))
    await asyncio.sleep(0.1)

    async def servicer_finally() -> None:
        coordinator.detach(session)
        await asyncio.sleep(10)  # where a servicer could be cancelled by gRPC

    handler = asyncio.create_task(servicer_finally())
    await asyncio.sleep(0.01)
    handler.cancel()
    batches = await asyncio.wait_for(run, 10)
    assert described.is_set()
    _, node, result = _results(batches)[0]
    assert node == 0
    assert isinstance(result, TaskFailureResult)
    assert "killed by SIGKILL" in result.message


async def test_an_agent_speaking_another_protocol_is_refused_naming_both_versions() -> None:
    coordinator = Coordinator()
    hello = pb.AgentHello(agent_id="old", pid=1, version="0.0.9", protocol=1)
    with pytest.raises(ProtocolMismatch) as caught:
        await coordinator.attach(AgentIdentity("old", "jump1", "a test"), hello)
    message = str(caught.value)
    assert "protocol version 1" in message
    assert f"speaks version {PROTOCOL_VERSION}" in message
    assert "genja 0.0.9" in message
    assert coordinator.sessions() == []


async def test_a_run_id_already_running_is_refused() -> None:
    coordinator = Coordinator()
    session = await _attach(coordinator, "local-0")
    first = coordinator.execute(_order(["a"]))
    pending = asyncio.ensure_future(first.__anext__())
    await asyncio.sleep(0.05)
    with pytest.raises(RunError, match="already running"):
        await coordinator.execute(_order(["b"])).__anext__()
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pending
    await first.aclose()
    session.close()


async def test_a_host_whose_agent_died_half_way_keeps_its_first_node() -> None:
    """The agent streamed node 0 of host a, then died: the run keeps that result, and the
    rest of a's tree (and all of b's) fails with how the agent ended."""

    async def describe(session: AgentSession) -> AgentEnd:
        return AgentEnd(f"agent {session.agent_id} (pid 1)", "was killed by SIGKILL")

    coordinator = Coordinator(describe_exit=describe)
    session = await _attach(coordinator, "local-0")
    order = dataclasses.replace(_order(["a", "b"]), stream_nodes=True)
    run = asyncio.create_task(_collect(coordinator, order))
    while True:
        message = await session.outbox.get()
        assert message is not None
        if message.WhichOneof("body") == "run_start":
            assert message.run_start.stream_nodes
        if message.WhichOneof("body") == "work":
            break
    first = encode_record(
        "a", 0, [TaskSuccessResult(summary="one")], started_ns=[5], durations_ns=[6], done=False
    )
    coordinator.on_agent_message(
        session,
        pb.AgentMessage(
            results=pb.ResultBatch(run_id=order.run_id, records=[first], started_host_ids=["a"])
        ),
    )
    await asyncio.sleep(0.05)
    coordinator.detach(session)
    batches = await asyncio.wait_for(run, 10)
    assert [list(b.started_host_ids) for b in batches if b.started_host_ids] == [["a"]]
    found = {(host, node): result for host, node, result in _results(batches)}
    assert set(found) == {("a", 0), ("a", 1), ("b", 0), ("b", 1)}
    assert found["a", 0] == TaskSuccessResult(summary="one")
    for key in (("a", 1), ("b", 0), ("b", 1)):
        failure = found[key]
        assert isinstance(failure, TaskFailureResult)
    # a had begun; b had not, and no other agent could take it.
    assert (
        found["a", 1].message
        == "agent local-0 (pid 1) was killed by SIGKILL while running this host"
    )
    assert (
        found["b", 0].message
        == "agent local-0 (pid 1) was killed by SIGKILL before starting this host"
    )


async def _work_hosts(session: AgentSession) -> list[str]:
    """The hosts of the next WorkBatch the session is sent."""
    while True:
        message = await asyncio.wait_for(session.outbox.get(), 10)
        assert message is not None
        if message.WhichOneof("body") == "work":
            return [pb.Host.FromString(wire).id for wire in message.work.hosts]


def _began(coordinator: Coordinator, session: AgentSession, run_id: str, hosts: list[str]) -> None:
    coordinator.on_agent_message(
        session,
        pb.AgentMessage(results=pb.ResultBatch(run_id=run_id, started_host_ids=hosts)),
    )


def _finish(coordinator: Coordinator, session: AgentSession, run_id: str, hosts: list[str]) -> None:
    records = [
        encode_record(
            h, 0, [TaskSuccessResult()] * 2, started_ns=[0, 0], durations_ns=[0, 0], done=True
        )
        for h in hosts
    ]
    coordinator.on_agent_message(
        session, pb.AgentMessage(results=pb.ResultBatch(run_id=run_id, records=records))
    )


async def test_a_replaced_agents_unbegun_hosts_wait_for_its_replacement() -> None:
    """The agent dies having begun one host: that one fails; the others go to the new agent
    that attaches under the same id, with the run's code and RunStart first."""

    async def describe(session: AgentSession) -> AgentEnd:
        return AgentEnd(f"agent {session.agent_id} (pid 1)", "was killed by SIGKILL", replaced=True)

    coordinator = Coordinator(describe_exit=describe)
    old = await _attach(coordinator, "local-0")
    hosts = ["a", "b", "c", "d"]
    order = _order(hosts)
    run = asyncio.create_task(_collect(coordinator, order))
    assert await _work_hosts(old) == hosts
    _began(coordinator, old, order.run_id, ["a"])
    await asyncio.sleep(0.05)
    coordinator.detach(old)
    await asyncio.sleep(0.05)
    new = await _attach(coordinator, "local-0")
    kinds = []
    while True:
        message = await asyncio.wait_for(new.outbox.get(), 10)
        assert message is not None
        kinds.append(message.WhichOneof("body"))
        if kinds[-1] == "work":
            assert [pb.Host.FromString(w).id for w in message.work.hosts] == ["b", "c", "d"]
            break
    assert "run_start" in kinds
    _finish(coordinator, new, order.run_id, ["b", "c", "d"])
    found = {(h, n): r for h, n, r in _results(await asyncio.wait_for(run, 10))}
    began = found["a", 0]
    assert isinstance(began, TaskFailureResult)
    assert began.message == "agent local-0 (pid 1) was killed by SIGKILL while running this host"
    assert all(found[h, 0] == TaskSuccessResult() for h in "bcd")
    assert coordinator.moved_hosts == 3


async def test_hosts_waiting_for_a_replacement_that_will_not_come_go_to_another_agent() -> None:
    async def describe(session: AgentSession) -> AgentEnd:
        return AgentEnd(f"agent {session.agent_id} (pid 1)", "exited with status 1", replaced=True)

    coordinator = Coordinator(describe_exit=describe)
    sessions = {a: await _attach(coordinator, a) for a in ("local-0", "local-1")}
    hosts = [f"h{i}" for i in range(12)]
    order = _order(hosts)
    run = asyncio.create_task(_collect(coordinator, order))
    mine = {a: await _work_hosts(s) for a, s in sessions.items()}
    coordinator.detach(sessions["local-0"])
    await asyncio.sleep(0.05)  # the loss is told; the run waits for local-0's replacement
    coordinator.process_exited("local-0", 2, "agent local-0 (pid 2) exited with status 1 again")
    moved = await _work_hosts(sessions["local-1"])
    assert moved == mine["local-0"]
    _finish(coordinator, sessions["local-1"], order.run_id, mine["local-1"] + moved)
    found = {(h, n): r for h, n, r in _results(await asyncio.wait_for(run, 10))}
    assert all(found[h, 0] == TaskSuccessResult() for h in hosts)
