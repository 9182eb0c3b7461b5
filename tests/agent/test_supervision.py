"""What an agent tells its supervisor: stuck task threads, a blocked event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent._supervision import LoopWatchdog, TaskThreads
from genja._host import Host
from genja_rpc._agent_state import read_blocked


async def _eventually(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


class _Call:
    def __init__(self, host: Host) -> None:
        self.host = host


async def test_a_call_given_up_on_while_it_runs_is_stuck_until_it_returns() -> None:
    told = threading.Event()
    threads = TaskThreads(2, on_stuck=told.set)
    release = threading.Event()
    loop = asyncio.get_running_loop()

    def hang(call: _Call) -> str:
        release.wait(30)
        return call.host.id

    quick = await loop.run_in_executor(threads, lambda: "fine")
    assert quick == "fine"
    future = loop.run_in_executor(threads, hang, _Call(Host(id="r1")))
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(future, 0.2)
    # The cancellation reaches the call's future in a callback on the loop.
    await _eventually(told.is_set)
    assert threads.stuck() == (1, ["r1"])
    release.set()
    await _eventually(lambda: threads.stuck() == (0, []))
    threads.shutdown()


async def test_stuck_calls_cost_no_capacity(tmp_path: Path) -> None:
    threads = TaskThreads(2)
    release = threading.Event()
    loop = asyncio.get_running_loop()
    for _ in range(2):
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(loop.run_in_executor(threads, release.wait, 30), 0.1)
    await _eventually(lambda: threads.stuck()[0] == 2)
    results = await asyncio.wait_for(
        asyncio.gather(*(loop.run_in_executor(threads, time.sleep, 0.05) for _ in range(2))), 5
    )
    assert results == [None, None]
    release.set()
    threads.shutdown()


async def test_the_watchdog_notes_a_blocked_loop_and_the_host_blocking_it(tmp_path: Path) -> None:
    watchdog = LoopWatchdog(asyncio.get_running_loop(), tmp_path, note_after=0.3, tick=0.05)
    watchdog.start()

    async def start_async(host: Host) -> None:
        # What a task must not do: block the loop (here until the watchdog noticed).
        deadline = time.monotonic() + 30
        while read_blocked(tmp_path) is None and time.monotonic() < deadline:
            time.sleep(0.05)

    before = time.time()
    await start_async(Host(id="r7"))
    note = read_blocked(tmp_path)
    assert note is not None
    assert note.host_id == "r7"
    assert before <= note.since + 0.05
    for _ in range(300):
        if read_blocked(tmp_path) is None:
            break
        await asyncio.sleep(0.05)
    assert read_blocked(tmp_path) is None, "cleared once the loop runs again"
    watchdog.stop()
