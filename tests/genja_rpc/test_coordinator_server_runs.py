"""What the coordinator does for a server's clients, driven in-process without sockets: runs
confirmed by every agent before any host goes out, log records passed back to the run, and
agents asked what they are doing."""

from __future__ import annotations

import asyncio

import pytest

from genja._errors import RunError
from genja.task import TaskSuccessResult
from genja_rpc._auth import AgentIdentity
from genja_rpc._convert import HostEntry, encode_record
from genja_rpc._coordinator import AgentSession, Coordinator, RunOrder, RunOutput
from genja_rpc._pb import PROTOCOL_VERSION, pb


def _order(hosts: list[str], **options: object) -> RunOrder:
    return RunOrder(
        run_id="run-1",
        root=pb.TaskSpec(name="root"),
        code=(),
        hosts=[HostEntry(h, "", pb.Host(id=h).SerializeToString()) for h in hosts],
        **options,  # type: ignore[arg-type]
    )


async def _attach(coordinator: Coordinator, agent_id: str) -> AgentSession:
    identity = AgentIdentity(agent_id, "local", "a test")
    hello = pb.AgentHello(agent_id=agent_id, pid=7, protocol=PROTOCOL_VERSION, version="9.9")
    return await coordinator.attach(identity, hello)


async def _next(session: AgentSession, kind: str) -> pb.CoordinatorMessage:
    """The next message of `kind` the session is sent (others are skipped)."""
    while True:
        message = await asyncio.wait_for(session.outbox.get(), 10)
        assert message is not None
        if message.WhichOneof("body") == kind:
            return message


def _sent(session: AgentSession) -> list[str]:
    """What the session was sent and has not read yet (drained)."""
    kinds = []
    while not session.outbox.empty():
        message = session.outbox.get_nowait()
        kinds.append("closed" if message is None else str(message.WhichOneof("body")))
    return kinds


def _done(coordinator: Coordinator, session: AgentSession, host_id: str) -> None:
    record = encode_record(
        host_id, 0, [TaskSuccessResult()], started_ns=[0], durations_ns=[0], done=True
    )
    batch = pb.ResultBatch(run_id="run-1", records=[record])
    coordinator.on_agent_message(session, pb.AgentMessage(results=batch))


async def _collect(coordinator: Coordinator, order: RunOrder) -> list[RunOutput]:
    return [output async for output in coordinator.execute(order)]


async def test_hosts_go_out_only_when_every_agent_accepted_the_run() -> None:
    coordinator = Coordinator()
    a = await _attach(coordinator, "a")
    b = await _attach(coordinator, "b")
    hosts = [f"h{i}" for i in range(20)]
    run = asyncio.create_task(_collect(coordinator, _order(hosts, confirm=True)))
    start = await _next(a, "run_start")
    assert start.run_start.confirm
    await _next(b, "run_start")
    coordinator.on_agent_message(a, pb.AgentMessage(accepted=pb.RunAccepted(run_id="run-1")))
    await asyncio.sleep(0.05)
    assert "work" not in _sent(a) + _sent(b)  # b has not answered yet
    coordinator.on_agent_message(b, pb.AgentMessage(accepted=pb.RunAccepted(run_id="run-1")))
    for session in (a, b):
        work = await _next(session, "work")
        for wire in work.work.hosts:
            _done(coordinator, session, pb.Host.FromString(wire).id)
    outputs = await asyncio.wait_for(run, 10)
    assert sorted(r.host_id for o in outputs for r in o.records) == sorted(hosts)


async def test_an_agent_that_cannot_load_the_code_ends_the_run_before_any_host() -> None:
    coordinator = Coordinator()
    a = await _attach(coordinator, "a")
    b = await _attach(coordinator, "b")
    run = asyncio.create_task(_collect(coordinator, _order(["h1", "h2", "h3"], confirm=True)))
    await _next(a, "run_start")
    await _next(b, "run_start")
    coordinator.on_agent_message(a, pb.AgentMessage(accepted=pb.RunAccepted(run_id="run-1")))
    rejected = pb.RunRejected(run_id="run-1", message="the task code needs vpkg 1.0")
    coordinator.on_agent_message(b, pb.AgentMessage(rejected=rejected))
    with pytest.raises(RunError, match=r"^agent b \(pool local\) cannot run this task: the task"):
        await asyncio.wait_for(run, 10)
    for session in (a, b):
        assert "work" not in _sent(session)


async def test_an_agent_lost_before_it_answered_fails_its_hosts_and_the_rest_go_out() -> None:
    coordinator = Coordinator()
    a = await _attach(coordinator, "a")
    b = await _attach(coordinator, "b")
    hosts = [f"h{i}" for i in range(20)]
    run = asyncio.create_task(_collect(coordinator, _order(hosts, confirm=True)))
    await _next(a, "run_start")
    await _next(b, "run_start")
    coordinator.on_agent_message(a, pb.AgentMessage(accepted=pb.RunAccepted(run_id="run-1")))
    coordinator.detach(b)
    work = await _next(a, "work")
    for wire in work.work.hosts:
        _done(coordinator, a, pb.Host.FromString(wire).id)
    outputs = await asyncio.wait_for(run, 30)
    records = [r for o in outputs for r in o.records]
    assert sorted(r.host_id for r in records) == sorted(hosts)
    assert len(work.work.hosts) < len(hosts)  # b's hosts failed, never sent


async def test_a_runs_log_records_come_back_with_the_run_and_others_do_not() -> None:
    coordinator = Coordinator()
    a = await _attach(coordinator, "a")
    run = asyncio.create_task(_collect(coordinator, _order(["h1"], forward_logs=True)))
    await _next(a, "work")
    logs = pb.LogRecords(
        records=[
            pb.LogRecord(logger="t", level=30, message="for the run", run_id="run-1"),
            pb.LogRecord(logger="t", level=30, message="the agent's own"),
            pb.LogRecord(logger="t", level=30, message="another run's", run_id="run-2"),
        ]
    )
    coordinator.on_agent_message(a, pb.AgentMessage(logs=logs))
    _done(coordinator, a, "h1")
    outputs = await asyncio.wait_for(run, 10)
    forwarded = [record for output in outputs for record in output.logs]
    assert [(r.message, r.agent_id) for r in forwarded] == [("for the run", "a")]


async def test_agents_are_asked_what_they_are_doing() -> None:
    coordinator = Coordinator()
    a = await _attach(coordinator, "a")
    await _attach(coordinator, "b")  # never answers

    async def answer() -> None:
        query = await _next(a, "load_query")
        load = pb.AgentLoad(
            query_id=query.load_query.query_id, hosts_in_flight=3, open_connections=2, runs=1
        )
        coordinator.on_agent_message(a, pb.AgentMessage(load=load))

    answering = asyncio.create_task(answer())
    loads = await coordinator.agent_loads(timeout=0.5)
    await answering
    assert [(entry.session.agent_id, entry.session.version) for entry in loads] == [
        ("a", "9.9"),
        ("b", "9.9"),
    ]
    assert loads[0].load is not None
    assert (loads[0].load.hosts_in_flight, loads[0].load.open_connections) == (3, 2)
    assert loads[1].load is None
