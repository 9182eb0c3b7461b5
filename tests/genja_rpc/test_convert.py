"""Every field survives domain -> protobuf -> bytes -> protobuf -> domain unchanged."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from genja import ConnectionOptions, Host
from genja._plan import plan_run
from genja._records import status_code
from genja._settings import RunnerRetrySettings
from genja.task import (
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskMessage,
    TaskMessageLevel,
    TaskSkipResult,
    TaskSuccessResult,
    task,
)
from genja_rpc._code import pack_plan
from genja_rpc._convert import (
    encode_record,
    encode_records,
    fill_outcome,
    host_from_proto,
    host_to_proto,
    options_from_spec,
    plan_from_spec,
    record_from_proto,
    retry_from_proto,
    retry_to_proto,
    task_spec,
)
from genja_rpc._pb import pb

RESULTS: list[HostTaskResult] = [
    TaskSuccessResult(),
    TaskSuccessResult(
        result={"output": "Cisco IOS", "lines": [1, 2.5, None, True]},
        changed=True,
        diff="--- a\n+++ b\n",
        summary="collected ✓",
        warnings=("w1", "w2"),
        messages=(
            "m1",
            TaskMessage(
                level=TaskMessageLevel.WARNING,
                text="w",
                code="W7",
                timestamp=datetime(2026, 9, 1, 8, tzinfo=timezone(timedelta(hours=2))),
            ),
            TaskMessage("naive", level=TaskMessageLevel.DEBUG, timestamp=datetime(2026, 9, 1)),
        ),
        metadata={"platform": "ios", "nested": {"k": [1]}},
    ),
    TaskSuccessResult(result="plain string", summary=""),
    TaskSuccessResult(result=0),
    *[
        TaskFailureResult(
            message=f"failed {kind}",
            kind=kind,
            retryable=True,
            details={"exception_type": "ValueError"},
            warnings=("w",),
            messages=(TaskMessage("m", level=TaskMessageLevel.ERROR),),
        )
        for kind in TaskFailureKind
    ],
    TaskFailureResult(message="", details=[1, "two"]),
    TaskSkipResult(),
    TaskSkipResult(reason="unsupported_platform", message="host platform is not supported"),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_results_round_trip_in_a_record(result: HostTaskResult) -> None:
    started = [1_764_000_000_123_456_789, 1_764_000_000_223_456_789]
    message = encode_record(
        "router1",
        3,
        [TaskSuccessResult(), result],
        started_ns=started,
        durations_ns=[1_000, 2_500_000],
        done=True,
        agent_id="local-1",
    )
    wire = pb.HostRecord.FromString(message.SerializeToString())
    record = record_from_proto(wire)
    assert (record.host_id, record.first_node, record.end_node, record.done) == (
        "router1",
        3,
        5,
        True,
    )
    assert record.statuses == bytes([1, status_code(result)])
    first, second = record.results()
    assert first == TaskSuccessResult()
    assert second == result
    timing = second.execution_metadata
    assert timing is not None
    assert timing.agent == "local-1"
    assert timing.duration == 0.0025
    assert timing.started_at.timestamp() == pytest.approx(started[1] / 1e9)
    assert record.results() is record.results()  # decoded once


def test_a_record_says_nothing_more_than_the_statuses_of_plain_results() -> None:
    plain = encode_record(
        "h",
        0,
        [TaskSuccessResult(), TaskSkipResult()] * 50,
        started_ns=[0] * 100,
        durations_ns=[0] * 100,
        done=True,
    )
    assert len(pb.NodeDetails.FromString(plain.details).results) == 0
    assert plain.statuses == bytes([1, 3] * 50)


def test_attempts_travel_only_when_a_node_ran_more_than_once() -> None:
    results = [TaskSuccessResult(), TaskFailureResult(message="x", retryable=True)]
    once = encode_record(
        "h",
        0,
        results,
        started_ns=[0, 0],
        durations_ns=[0, 0],
        attempts=[1, 1],
        exhausted=[False, False],
        done=True,
    )
    assert not pb.NodeDetails.FromString(once.details).attempts
    assert [r.execution_metadata.attempts for r in record_from_proto(once).results()] == [1, 1]
    retried = encode_record(
        "h",
        0,
        results,
        started_ns=[0, 0],
        durations_ns=[0, 0],
        attempts=[2, 3],
        exhausted=[False, True],
        done=True,
    )
    timing = [r.execution_metadata for r in record_from_proto(retried).results()]
    assert [(t.attempts, t.retried, t.retries_exhausted) for t in timing] == [
        (2, True, False),
        (3, True, True),
    ]


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_record_says_whether_its_nodes_ran_in_a_dry_run(dry_run: bool) -> None:
    record = encode_record(
        "h",
        0,
        [TaskSuccessResult(), TaskFailureResult(message="x")],
        started_ns=[0, 0],
        durations_ns=[0, 0],
        done=True,
        dry_run=dry_run,
    )
    timing = [r.execution_metadata for r in record_from_proto(record).results()]
    assert [t.dry_run for t in timing if t is not None] == [dry_run, dry_run]


def test_retry_defaults_round_trip() -> None:
    for retry in (RunnerRetrySettings(), RunnerRetrySettings(allow=True, max_attempts=4)):
        assert retry_from_proto(retry_to_proto(retry)) == retry
    # a task may allow what the runner does not: its attempts and delay still travel
    off = RunnerRetrySettings(allow=False, max_attempts=5, delay_ms=250)
    assert retry_from_proto(retry_to_proto(off)) == off
    assert retry_from_proto(pb.RetryDefaults()) == RunnerRetrySettings()


def test_every_message_level_has_its_own_proto_value() -> None:
    message = pb.NodeResult()
    fill_outcome(
        message,
        TaskSuccessResult(messages=[TaskMessage("x", level=level) for level in TaskMessageLevel]),
    )
    values = {m.level for m in message.passed.messages}
    assert len(values) == len(TaskMessageLevel)
    assert pb.MESSAGE_LEVEL_UNSPECIFIED not in values


def test_every_failure_kind_has_its_own_proto_value() -> None:
    values = set()
    for kind in TaskFailureKind:
        message = pb.NodeResult()
        fill_outcome(message, TaskFailureResult(message="x", kind=kind))
        values.add(message.failed.kind)
    assert len(values) == len(TaskFailureKind)
    assert pb.FAILURE_KIND_UNSPECIFIED not in values


def test_non_json_values_are_refused() -> None:
    with pytest.raises(TypeError):
        fill_outcome(pb.NodeResult(), TaskSuccessResult(result={1, 2}))
    with pytest.raises(ValueError, match="JSON"):
        fill_outcome(pb.NodeResult(), TaskSuccessResult(result=float("nan")))


def test_a_value_that_cannot_be_encoded_fails_its_node_not_the_record() -> None:
    bad = TaskSuccessResult(metadata={"when": object()})
    message = encode_record("h", 0, [bad], started_ns=[0], durations_ns=[0], done=True)
    (result,) = record_from_proto(message).results()
    assert isinstance(result, TaskFailureResult)
    assert "could not be encoded" in result.message


def test_a_value_nested_too_deep_to_encode_fails_its_node_not_the_record() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    message = encode_record(
        "h", 0, [TaskSuccessResult(result=deep), TaskSuccessResult(result=1)],
        started_ns=[0, 0], durations_ns=[0, 0], done=True,
    )  # fmt: skip
    failed, passed = record_from_proto(message).results()
    assert isinstance(failed, TaskFailureResult)
    assert failed.message.startswith("the result could not be encoded: RecursionError: ")
    assert passed == TaskSuccessResult(result=1)


def _records(results: list[HostTaskResult], max_bytes: int) -> list[tuple[pb.HostRecord, int]]:
    count = len(results)
    return encode_records(
        "host1", 2, results, started_ns=[7] * count, durations_ns=[9] * count, done=True,
        attempts=[1] * count, exhausted=[False] * count, max_bytes=max_bytes,
    )  # fmt: skip


def test_records_are_split_by_node_to_fit_a_message_and_sized() -> None:
    small = [TaskSuccessResult(result="x" * 100) for _ in range(3)]
    ((whole, size),) = _records(small, max_bytes=10_000)
    assert size >= whole.ByteSize()
    assert record_from_proto(whole).results() == tuple(small)
    pieces = _records(small, max_bytes=200)
    assert [(r.first_node, r.done) for r, _ in pieces] == [(2, False), (3, False), (4, True)]
    for (record, size), result in zip(pieces, small, strict=True):
        assert whole.ByteSize() > size >= record.ByteSize()
        assert record_from_proto(record).results() == (result,)


def test_a_node_too_large_for_a_message_is_sent_as_a_validation_failure() -> None:
    results = [TaskSuccessResult(result="x" * 1000), TaskSuccessResult(result="fine")]
    (big, _), (fine, _) = _records(results, max_bytes=500)
    (failure,) = record_from_proto(big).results()
    assert isinstance(failure, TaskFailureResult)
    assert failure.kind is TaskFailureKind.VALIDATION
    assert failure.message.startswith("the result is too large to send: 10")
    assert failure.message.endswith("more than the 500 bytes a message may hold")
    assert record_from_proto(fine).results() == (results[1],)
    assert (big.done, fine.done) == (False, True)


@pytest.mark.parametrize(
    "host",
    [
        Host(id="minimal"),
        Host(
            id="full",
            hostname="10.0.0.1",
            port=2222,
            username="admin",
            password="s3cret",
            platform="ios",
            groups=("core", "dc1"),
            data={"site": {"name": "dc1"}, "rack": 4},
            connection_options={
                "ssh": ConnectionOptions(
                    hostname="mgmt",
                    port=22,
                    username="u",
                    password="p",
                    platform="cisco_ios",
                    extras={"look_for_keys": False, "enable": "from-env"},
                    env_extras=frozenset({"enable"}),
                ),
                "bare": ConnectionOptions(),
            },
        ),
    ],
)
def test_hosts_round_trip(host: Host) -> None:
    wire = host_to_proto(host).SerializeToString()
    back = host_from_proto(pb.Host.FromString(wire))
    assert back == host
    assert back.secret_values() == host.secret_values()


def test_task_spec_carries_the_planned_tree() -> None:
    @task(name="leaf", options={"x": [1, 2]})
    class Leaf:
        def start(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    @task(name="root", processors=["audit"], connection_plugin_name="ssh", sub_tasks=[Leaf])
    class Root:
        def start(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    plan = plan_run(Root, 1)
    packed = pack_plan(plan)
    spec = pb.TaskSpec.FromString(task_spec(plan.root, packed.refs).SerializeToString())
    assert spec.name == "root"
    assert list(spec.processors) == ["audit"]
    assert spec.connection_plugin_name == "ssh"
    assert options_from_spec(spec) is None
    assert [s.name for s in spec.sub_tasks] == ["leaf"]
    assert options_from_spec(spec.sub_tasks[0]) == {"x": [1, 2]}
    assert set(packed.blobs) == {spec.code.content_hash, spec.sub_tasks[0].code.content_hash}
    assert task_spec(plan_run(Root, 0).root, packed.refs).sub_tasks == []

    # Turned back, as an attaching client does: the tree's shape without code or processors.
    again = plan_from_spec(spec, dry_run=True)
    assert [(n.path, n.name, n.options) for n in again.nodes()] == [
        (n.path, n.name, n.options) for n in plan.nodes()
    ]
    assert again.root.definition.connection_plugin_name == "ssh"
    assert again.processor_names() == []
    assert (again.max_depth, again.dry_run) == (1, True)


def test_agent_host_cache_reuses_a_host_until_its_message_changes() -> None:
    from genja_rpc._convert import HostCache, HostEntry, HostWireCache

    cache = HostCache()
    host = Host(id="r1", platform="ios", data={"site": "dc1", "agent_pool": "jump1"})
    wire = host_to_proto(host).SerializeToString()
    first = cache.get(wire)
    assert first == host
    assert cache.get(bytes(wire)) is first
    changed = host_to_proto(Host(id="r1", platform="eos")).SerializeToString()
    assert cache.get(changed).platform == "eos"
    assert cache.get(wire) is not first  # the old bytes were forgotten with the change
    assert len(cache._by_wire) == 1

    entries = HostWireCache()
    entry = entries.get(host)
    assert entry == HostEntry("r1", "jump1", wire)
    assert entries.get(host) is entry
    twin = Host(id="r1", platform="ios", data={"site": "dc1"})
    assert entries.get(twin) is not entry
    assert HostEntry.from_wire(wire) == entry
