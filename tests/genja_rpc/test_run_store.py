"""The coordinator server's run store, driven in-process: runs outlive their watchers, events are
replayed as the bytes they were, only the client that started a run may see it, and the memory
bound drops finished runs first, then stops keeping the largest running one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from genja._errors import RunError
from genja.task import TaskSuccessResult
from genja_rpc._auth import ClientIdentity
from genja_rpc._cli import _duration, _size
from genja_rpc._convert import HostEntry, encode_record
from genja_rpc._coordinator import RunOrder, RunOutput
from genja_rpc._pb import pb
from genja_rpc._run_store import KeptRun, RunLookupError, RunStore

OPS = ClientIdentity("token 'ops'")


def _order(run_id: str, hosts: list[str]) -> RunOrder:
    return RunOrder(
        run_id=run_id,
        root=pb.TaskSpec(name="root"),
        code=(),
        hosts=[HostEntry(h, "", pb.Host(id=h).SerializeToString()) for h in hosts],
    )


def _record(host_id: str, padding: int = 0) -> pb.HostRecord:
    record = encode_record(
        host_id, 0, [TaskSuccessResult(summary="x" * padding)], started_ns=[0], durations_ns=[0],
        done=True,
    )  # fmt: skip
    return record


class Agents:
    """Stands for the coordinator's execute: each run yields what the test releases."""

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[RunOutput | None]] = {}

    async def execute(self, order: RunOrder) -> AsyncIterator[RunOutput]:
        queue = self.queues.setdefault(order.run_id, asyncio.Queue())
        while (output := await queue.get()) is not None:
            yield output

    def send(self, run_id: str, *hosts: str, padding: int = 0) -> None:
        records = [_record(h, padding) for h in hosts]
        self.queues.setdefault(run_id, asyncio.Queue()).put_nowait(RunOutput(records=records))

    def finish(self, run_id: str) -> None:
        self.queues.setdefault(run_id, asyncio.Queue()).put_nowait(None)


async def _drain(store: RunStore, run: KeptRun, *, header: bool) -> list[pb.RunEvent]:
    return [pb.RunEvent.FromString(e) async for e in store.stream(run, replay_header=header)]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_run_goes_on_without_watchers_and_an_attach_gets_it_all() -> None:
    agents = Agents()
    store = RunStore(agents.execute)
    run = store.start(_order("r1", ["a", "b"]), OPS, "peer")
    agents.send("r1", "a")
    await _settle()
    # Nobody watches; the run goes on. A watcher that comes later gets all of it.
    watcher = asyncio.ensure_future(_drain(store, store.find("r1", OPS), header=True))
    await _settle()
    agents.send("r1", "b")
    agents.finish("r1")
    events = await asyncio.wait_for(watcher, 10)
    kinds = [e.WhichOneof("body") for e in events]
    assert kinds == ["attached", "results", "results", "finished"]
    assert list(events[0].attached.host_ids) == ["a", "b"]
    assert [r.host_id for e in events[1:3] for r in e.results.records] == ["a", "b"]
    assert not run.running
    # Finished and kept: replayed whole, header first.
    again = await _drain(store, store.find("r1", OPS), header=True)
    assert [e.SerializeToString() for e in again] == [e.SerializeToString() for e in events]


async def test_only_its_client_sees_a_run_and_unknown_ids_say_so() -> None:
    agents = Agents()
    store = RunStore(agents.execute, keep_seconds=7200)
    store.start(_order("r1", ["a"]), OPS, "peer")
    with pytest.raises(RunLookupError) as other:
        store.find("r1", ClientIdentity("token 'dev'"))
    assert other.value.code == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(RunLookupError) as unknown:
        store.find("nope", OPS)
    assert unknown.value.code == grpc.StatusCode.NOT_FOUND
    assert "finished more than 2h ago" in str(unknown.value)
    with pytest.raises(RunLookupError) as twice:
        store.start(_order("r1", ["a"]), OPS, "peer")
    assert twice.value.code == grpc.StatusCode.ALREADY_EXISTS
    agents.finish("r1")
    await store.close("test over")


async def test_a_finished_run_is_forgotten_after_its_retention() -> None:
    agents = Agents()
    store = RunStore(agents.execute, keep_seconds=0.05)
    store.start(_order("r1", ["a"]), OPS, "peer")
    agents.finish("r1")
    await _settle()
    store.find("r1", OPS)  # kept for now
    for _ in range(200):
        await asyncio.sleep(0.05)
        try:
            store.find("r1", OPS)
        except RunLookupError:
            break
    with pytest.raises(RunLookupError):
        store.find("r1", OPS)
    assert store.used_bytes == 0


async def test_cancelling_ends_the_run_with_the_reason() -> None:
    agents = Agents()
    store = RunStore(agents.execute)
    run = store.start(_order("r1", ["a"]), OPS, "peer")
    await _settle()
    assert store.cancel(run, "client token 'ops' asked")
    events = await _drain(store, run, header=False)
    assert events[-1].finished.cancelled == "client token 'ops' asked"
    assert not store.cancel(run, "again")


async def test_past_the_memory_bound_finished_runs_go_first_then_the_largest_running() -> None:
    agents = Agents()
    store = RunStore(agents.execute, max_bytes=4500)
    old = store.start(_order("old", ["a"]), OPS, "peer")
    agents.send("old", "a", padding=1500)
    agents.finish("old")
    await _settle()
    assert not old.running
    big = store.start(_order("big", ["b", "c"]), OPS, "peer")
    small = store.start(_order("small", ["d"]), OPS, "peer")
    watcher = asyncio.ensure_future(_drain(store, big, header=False))  # big's client
    await _settle()
    agents.send("big", "b", padding=3000)
    await _settle()
    with pytest.raises(RunLookupError):  # the finished run made room first
        store.find("old", OPS)
    assert big.events is not None
    agents.send("big", "c", padding=3000)
    agents.send("small", "d", padding=100)
    await _settle()
    # Running runs alone pass the bound: the largest is no longer kept...
    assert big.events is None
    assert small.events is not None
    assert store.used_bytes <= 4500
    with pytest.raises(RunLookupError) as refused:
        await _drain(store, big, header=True)
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    # ... but its connected client still gets every event.
    agents.finish("big")
    agents.finish("small")
    events = await asyncio.wait_for(watcher, 10)
    assert [r.host_id for e in events if e.HasField("results") for r in e.results.records] == [
        "b",
        "c",
    ]
    assert events[-1].HasField("finished")


def test_keep_runs_and_its_memory_read_as_an_operator_writes_them() -> None:
    assert [_duration(t) for t in ("90", "90s", "30m", "1h", "2d", "0")] == [
        90, 90, 1800, 3600, 172800, 0,
    ]  # fmt: skip
    assert [_size(t) for t in ("1024", "256MiB", "2GiB", "64k", "512M")] == [
        1024, 256 << 20, 2 << 30, 64 << 10, 512 << 20,
    ]  # fmt: skip


async def test_a_run_that_cannot_be_carried_out_ends_every_watcher_with_its_error() -> None:
    async def refused(order: RunOrder) -> AsyncIterator[RunOutput]:
        yield RunOutput(started_host_ids=["a"])
        raise RunError("agent jump1-0 (pool jump1) cannot run this task: no module 'x'")

    store = RunStore(refused)
    run = store.start(_order("r1", ["a"]), OPS, "peer")
    events = await _drain(store, run, header=False)
    assert [e.WhichOneof("body") for e in events] == ["results"]
    assert run.error == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "agent jump1-0 (pool jump1) cannot run this task: no module 'x'",
    )
    assert not run.running
