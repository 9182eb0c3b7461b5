"""Results as they arrive, on real agent processes: events come while other hosts still run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import genja
from genja.task import TaskFailureResult, TaskSuccessResult, task

pytestmark = pytest.mark.e2e


@task(name="wait_for_release")
class WaitForRelease:
    """Host `first` finishes at once; every other host waits for the release file, so the test
    decides when they may finish."""

    def start(self, task: Any, host: Any, context: Any) -> Any:
        if host.id == "first":
            return TaskSuccessResult(summary="first done")
        release = Path(host.data["release"])
        deadline = time.monotonic() + 60
        while not release.exists():
            if time.monotonic() > deadline:
                return TaskFailureResult(message="never released", kind="timeout")
            time.sleep(0.02)
        return TaskSuccessResult(summary=f"{host.id} released")


@pytest.fixture
def waiting_genja(tmp_path: Path) -> Iterator[tuple[genja.Genja, Path]]:
    release = tmp_path / "release"
    hosts = {name: {"data": {"release": str(release)}} for name in ("first", "h2", "h3", "h4")}
    settings = genja.Settings.from_dict({"runner": {"worker_count": 1}})
    with genja.Genja.from_hosts(hosts, settings) as g:
        yield g, release


def test_stream_task_yields_events_while_other_hosts_still_run(
    waiting_genja: tuple[genja.Genja, Path],
) -> None:
    g, release = waiting_genja
    seen: list[genja.RunEvent] = []
    released_after: int | None = None
    for event in g.stream_task(WaitForRelease, max_depth=0):
        seen.append(event)
        started = {e.host_id for e in seen if isinstance(e, genja.HostStarted)}
        finished = [e.host_id for e in seen if isinstance(e, genja.NodeFinished)]
        if released_after is None and finished == ["first"] and len(started) == 4:
            # Every host started and one finished; the others are provably still running.
            released_after = len(seen)
            release.touch()
    assert released_after is not None, [type(e).__name__ for e in seen]
    assert not any(isinstance(e, genja.NodeFinished) for e in seen[:released_after][:-1])
    last = seen[-1]
    assert isinstance(last, genja.RunFinished)
    assert last.results.host_summary() == genja.HostSummary(passed=4)
    assert last.results["h3"].summary == "h3 released"


def test_run_task_events_async(waiting_genja: tuple[genja.Genja, Path]) -> None:
    g, release = waiting_genja

    async def consume() -> list[str]:
        kinds: list[str] = []
        async for event in g.run_task_events(WaitForRelease, max_depth=0):
            kinds.append(type(event).__name__)
            if isinstance(event, genja.NodeFinished) and event.host_id == "first":
                release.touch()
        return kinds

    kinds = asyncio.run(consume())
    assert kinds[0] == "RunStarted"
    assert kinds[-1] == "RunFinished"
    assert kinds.count("HostStarted") == kinds.count("HostFinished") == 4


def test_leaving_the_stream_early_cancels_the_run(
    waiting_genja: tuple[genja.Genja, Path],
) -> None:
    g, release = waiting_genja
    events = g.stream_task(WaitForRelease, max_depth=0)
    for event in events:
        if isinstance(event, genja.NodeFinished):
            break
    events.close()  # type: ignore[attr-defined]
    release.touch()
    # The Genja is still usable: the next run completes.
    results = g.run_task(WaitForRelease, max_depth=0)
    assert results.host_summary().passed == 4
