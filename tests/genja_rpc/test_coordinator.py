"""The coordinator driven in-process, without sockets: fake agents read their session's outbox
and answer through `on_agent_message`, as the servicer would."""

from __future__ import annotations

import asyncio

import pytest

from genja._plan import RuntimeBatch
from genja.task import TaskFailureResult
from genja_rpc import _coordinator
from genja_rpc._auth import LOCAL_POOL, AgentIdentity
from genja_rpc._coordinator import AgentSession, Coordinator
from genja_rpc._pb import pb


def _request(hosts: list[str]) -> pb.RunRequest:
    return pb.RunRequest(
        root=pb.TaskSpec(name="root", sub_tasks=[pb.TaskSpec(name="child")]),
        hosts=[pb.Host(id=h) for h in hosts],
    )


async def _attach(coordinator: Coordinator, agent_id: str) -> AgentSession:
    identity = AgentIdentity(agent_id, LOCAL_POOL, "a test")
    return await coordinator.attach(identity, pb.AgentHello(agent_id=agent_id, pid=1))


async def _answer(coordinator: Coordinator, session: AgentSession, *, stop_after: int) -> None:
    """Pass every host it is sent, until `stop_after` hosts; then go silent."""
    answered = 0
    while True:
        message = await session.outbox.get()
        if message is None:
            return
        if message.WhichOneof("body") != "work":
            continue
        for host in message.work.hosts:
            if answered == stop_after:
                return
            answered += 1
            results = [
                pb.NodeResult(host_id=host.id, task_path=path, passed=pb.Passed())
                for path in ([], [0])
            ]
            coordinator.on_agent_message(
                session,
                pb.AgentMessage(
                    results=pb.ResultBatch(
                        run_id=message.work.run_id, results=results, done_host_ids=[host.id]
                    )
                ),
            )


async def _collect(coordinator: Coordinator, request: pb.RunRequest) -> list[RuntimeBatch]:
    return [batch async for batch in coordinator.execute(request)]


async def test_a_run_completes_with_every_host_at_every_node() -> None:
    coordinator = Coordinator()
    sessions = [await _attach(coordinator, f"local-{i}") for i in range(2)]
    agents = [asyncio.create_task(_answer(coordinator, s, stop_after=100)) for s in sessions]
    batches = await asyncio.wait_for(_collect(coordinator, _request(["a", "b", "c", "d"])), 10)
    outcomes = [o for b in batches for o in b.outcomes]
    assert sorted((o.host_id, o.path) for o in outcomes) == sorted(
        (h, p) for h in "abcd" for p in [(), (0,)]
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
    run = asyncio.create_task(_collect(coordinator, _request(["a", "b", "c"])))
    await asyncio.sleep(0.1)
    # The session disappears the way no code path should allow: no detach, no lost report.
    del coordinator._sessions["local-0"]
    batches = await asyncio.wait_for(run, 10)
    failures = [
        (o.host_id, o.result)
        for b in batches
        for o in b.outcomes
        if isinstance(o.result, TaskFailureResult)
    ]
    assert len({host for host, _ in failures}) == 2
    assert {r.message for _, r in failures} == {
        "agent local-0 disconnected before finishing this host"
    }
    silent.cancel()


async def test_detach_reports_the_loss_even_if_the_caller_is_cancelled_right_after() -> None:
    described = asyncio.Event()

    async def slow_describe(session: AgentSession) -> str:
        await asyncio.sleep(0.2)
        described.set()
        return f"agent {session.agent_id} was killed by SIGKILL"

    coordinator = Coordinator(describe_exit=slow_describe)
    session = await _attach(coordinator, "local-0")
    run = asyncio.create_task(_collect(coordinator, _request(["a"])))
    await asyncio.sleep(0.1)

    async def servicer_finally() -> None:
        coordinator.detach(session)
        await asyncio.sleep(10)  # where a servicer could be cancelled by gRPC

    handler = asyncio.create_task(servicer_finally())
    await asyncio.sleep(0.01)
    handler.cancel()
    batches = await asyncio.wait_for(run, 10)
    assert described.is_set()
    result = batches[-1].outcomes[0].result
    assert isinstance(result, TaskFailureResult)
    assert "killed by SIGKILL" in result.message
