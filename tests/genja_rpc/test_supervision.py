"""Supervision without processes: silence, the nanny's verdicts, the agent's state folder."""

from __future__ import annotations

from pathlib import Path

from genja_rpc._agent_end import AgentEnd, name_hosts
from genja_rpc._agent_state import (
    Blocked,
    StartJournal,
    clear_blocked,
    read_blocked,
    read_started,
    write_blocked,
)
from genja_rpc._liveness import Silence, heartbeat_interval, stuck_worker_limit
from genja_rpc._nanny import diagnose
from genja_rpc._pb import pb


def test_silence_counts_from_the_last_message() -> None:
    silence = Silence(tick=0.5, now=100.0)
    assert silence.check(100.5) == 0.5
    silence.heard(100.75)
    assert silence.check(101.0) == 0.25
    assert silence.check(101.5) == 0.75


def test_silence_does_not_blame_the_peer_for_time_this_side_was_not_running() -> None:
    silence = Silence(tick=0.5, now=100.0)
    silence.check(100.5)
    # This process was stopped (or starved) for 30 s: the peer's messages may be waiting, so
    # only the silence before, and one tick, count.
    assert silence.check(130.5) == 1.0
    assert silence.check(131.0) == 1.5


def test_heartbeats_come_several_times_per_timeout() -> None:
    assert heartbeat_interval(10) == 2
    assert stuck_worker_limit(100) == 25
    assert stuck_worker_limit(2) == 1


def _diagnose(**given: object) -> object:
    facts: dict[str, object] = {
        "silence": 0.0,
        "blocked": None,
        "health": pb.AgentHeartbeat(),
        "concurrency": 8,
        "timeout": 10.0,
        "now": 1000.0,
    }
    facts.update(given)
    return diagnose(**facts)  # type: ignore[arg-type]


def test_a_healthy_agent_stays() -> None:
    assert _diagnose(silence=9.9, health=pb.AgentHeartbeat(stuck_workers=1)) is None


def test_a_silent_agent_is_replaced_saying_for_how_long() -> None:
    verdict = _diagnose(silence=10.4)
    assert verdict is not None
    assert verdict.how == "stopped answering 10 s ago and was replaced"  # type: ignore[attr-defined]
    remote = _diagnose(silence=10.4, local=False)
    assert remote.how == "stopped answering 10 s ago"  # type: ignore[attr-defined]


def test_a_blocked_loop_waits_for_its_note_to_come_of_age_then_names_the_host() -> None:
    blocked = Blocked(since=992.0, host_id="r1")
    assert _diagnose(silence=10.5, blocked=blocked) is None  # 8 s: not yet, and not "silent"
    verdict = _diagnose(silence=12.0, blocked=Blocked(since=988.0, host_id="r1"))
    assert verdict is not None
    assert verdict.cause == "event loop blocked for 12 s in {hosts}"  # type: ignore[attr-defined]
    assert verdict.culprits == ["r1"]  # type: ignore[attr-defined]


def test_a_loop_blocked_in_the_agents_own_code_gets_longer() -> None:
    assert _diagnose(silence=25.0, blocked=Blocked(since=975.0)) is None
    verdict = _diagnose(silence=31.0, blocked=Blocked(since=969.0))
    assert verdict is not None
    assert verdict.cause == "event loop blocked for 31 s in its own code"  # type: ignore[attr-defined]


def test_stuck_workers_past_the_limit_drain_the_agent() -> None:
    health = pb.AgentHeartbeat(stuck_workers=2, stuck_host_ids=["a", "b"])
    verdict = _diagnose(health=health)
    assert verdict is not None
    assert verdict.drain  # type: ignore[attr-defined]
    assert verdict.culprits == ["a", "b"]  # type: ignore[attr-defined]


def test_a_run_names_only_its_own_hosts() -> None:
    end = AgentEnd(
        "agent local-0 (pid 7)",
        "was replaced",
        "event loop blocked for 12 s in {hosts}",
        culprits=["r9"],
    )
    mine = end.running_failure(["r1"], own={"r1", "r9"})
    assert mine.message == (
        "agent local-0 (pid 7) was replaced while running this host: "
        "event loop blocked for 12 s in host r9"
    )
    theirs = end.running_failure(["r1"], own={"r1"})
    assert theirs.message.endswith("event loop blocked for 12 s in a host of another run")
    memory = AgentEnd(
        "agent local-0 (pid 7)", "was replaced", "memory limit exceeded while running {hosts}"
    )
    assert memory.running_failure(["r1", "r2"], own={"r1", "r2"}).message.endswith(
        "memory limit exceeded while running hosts r1, r2"
    )
    assert name_hosts([f"h{i}" for i in range(8)]) == "hosts h0, h1, h2, h3, h4 and 3 more"


def test_the_start_journal_survives_its_writer_and_hides_run_ids_from_paths(
    tmp_path: Path,
) -> None:
    journal = StartJournal(tmp_path)
    journal.open_run("../../etc/run")
    journal.started("../../etc/run", "r1")
    journal.started("../../etc/run", 'odd "host"\nname')
    journal.started("never-opened", "r2")
    journal.open_run("other")
    journal.started("other", "r3")
    assert all(p.parent == tmp_path for p in tmp_path.iterdir())
    long_name = "a-host-with-a-name-longer-than-one-slot." * 3
    journal.started("other", long_name)
    many = [f"h{i}" for i in range(20_000)]  # more than one slot file holds
    for name in many:
        journal.started("other", name)
    other = next(p for p in tmp_path.glob("started-*") if p.read_bytes() == b'"other"\n')
    with other.with_name(other.name + ".0").open("r+b") as torn:
        torn.write(b'"half a na')  # the agent died in mid-write of r3's slot
    assert read_started(tmp_path) == {
        "../../etc/run": {"r1", 'odd "host"\nname'},
        "other": {long_name, *many},
    }
    journal.close_run("other")
    journal.started("other", "late")  # after the run closed: ignored
    assert set(read_started(tmp_path)) == {"../../etc/run"}


def test_the_blocked_note_is_written_whole_and_cleared(tmp_path: Path) -> None:
    assert read_blocked(tmp_path) is None
    write_blocked(tmp_path, Blocked(since=5.5, host_id="r1"))
    assert read_blocked(tmp_path) == Blocked(5.5, "r1")
    clear_blocked(tmp_path)
    clear_blocked(tmp_path)
    assert read_blocked(tmp_path) is None
