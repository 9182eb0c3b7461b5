"""The agent's outbox: host records leave in batches bounded by count and by size."""

from __future__ import annotations

import asyncio

from agent import _outbox
from agent._outbox import MAX_BATCH_BYTES, MAX_RECORDS_PER_MESSAGE, Outbox
from genja._runner_defaults import MAX_RESULT_SIZE_LIMIT
from genja_rpc._channels import MAX_MESSAGE_BYTES
from genja_rpc._pb import pb


def _sent(records: list[tuple[str, int]], started: list[str]) -> list[pb.ResultBatch]:
    """The ResultBatch messages an outbox sends for records (host id, size) queued at once."""
    messages: list[pb.ResultBatch] = []

    async def send(message: pb.AgentMessage) -> None:
        messages.append(message.results)

    async def go() -> None:
        outbox = Outbox(asyncio.get_running_loop(), send)
        for host_id in started:
            outbox.add_started("run", host_id)
        for host_id, size in records:
            outbox.add_record("run", pb.HostRecord(host_id=host_id), size)
        flusher = asyncio.create_task(outbox.run())
        while sum(len(m.records) for m in messages) < len(records):
            await asyncio.sleep(0.001)
        flusher.cancel()

    asyncio.run(go())
    return messages


def test_small_records_share_a_message_up_to_the_count() -> None:
    count = MAX_RECORDS_PER_MESSAGE + 5
    messages = _sent([(f"h{i}", 100) for i in range(count)], ["h0", "h1"])
    assert [len(m.records) for m in messages] == [MAX_RECORDS_PER_MESSAGE, 5]
    assert [list(m.started_host_ids) for m in messages] == [["h0", "h1"], []]


def test_large_records_are_split_by_size_and_keep_their_order() -> None:
    mib = 1024 * 1024
    sizes = [50 * mib] * 3 + [mib] * 4 + [MAX_BATCH_BYTES + 1]
    messages = _sent([(f"h{i}", size) for i, size in enumerate(sizes)], [])
    assert [[r.host_id for r in m.records] for m in messages] == [
        ["h0"], ["h1"], ["h2"], ["h3", "h4", "h5", "h6"], ["h7"],
    ]  # fmt: skip


def test_a_record_alone_fits_in_a_message_with_room_to_spare() -> None:
    assert MAX_BATCH_BYTES < _outbox.MAX_RECORD_BYTES < MAX_MESSAGE_BYTES
    # The largest result settings allow fits in a record alone.
    assert MAX_RESULT_SIZE_LIMIT < _outbox.MAX_RECORD_BYTES
