"""Every field survives domain -> protobuf -> bytes -> protobuf -> domain unchanged."""

from __future__ import annotations

import pytest

from genja import ConnectionOptions, Host
from genja._plan import NodeOutcome, plan_run
from genja.task import (
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskSkipResult,
    TaskSuccessResult,
    task,
)
from genja_rpc._code import pack_plan
from genja_rpc._convert import (
    host_from_proto,
    host_to_proto,
    options_from_spec,
    outcome_from_proto,
    outcome_to_proto,
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
        messages=("m1",),
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
            messages=("m",),
        )
        for kind in TaskFailureKind
    ],
    TaskFailureResult(message="", details=[1, "two"]),
    TaskSkipResult(),
    TaskSkipResult(reason="unsupported_platform", message="host platform is not supported"),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_results_round_trip(result: HostTaskResult) -> None:
    outcome = NodeOutcome("router1", (0, 2), result)
    wire = outcome_to_proto(outcome).SerializeToString()
    message = pb.NodeResult.FromString(wire)
    assert message.depth == 2
    assert outcome_from_proto(message) == outcome


def test_every_failure_kind_has_its_own_proto_value() -> None:
    values = {
        outcome_to_proto(NodeOutcome("h", (), TaskFailureResult(message="x", kind=k))).failed.kind
        for k in TaskFailureKind
    }
    assert len(values) == len(TaskFailureKind)
    assert pb.FAILURE_KIND_UNSPECIFIED not in values


def test_non_json_values_are_refused() -> None:
    with pytest.raises(TypeError):
        outcome_to_proto(NodeOutcome("h", (), TaskSuccessResult(result={1, 2})))
    with pytest.raises(ValueError, match="JSON"):
        outcome_to_proto(NodeOutcome("h", (), TaskSuccessResult(result=float("nan"))))


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


def test_agent_host_cache_reuses_a_host_until_its_message_changes() -> None:
    from genja_rpc._convert import HostCache, HostProtoCache

    cache = HostCache()
    host = Host(id="r1", platform="ios", data={"site": "dc1"})
    wire = host_to_proto(host).SerializeToString()
    first = cache.get(pb.Host.FromString(wire))
    assert first == host
    assert cache.get(pb.Host.FromString(wire)) is first
    changed = host_to_proto(Host(id="r1", platform="eos", data={"site": "dc1"}))
    assert cache.get(changed).platform == "eos"

    protos = HostProtoCache()
    assert protos.get(host) is protos.get(host)
    twin = Host(id="r1", platform="ios", data={"site": "dc1"})
    assert protos.get(twin) is not protos.get(host)
