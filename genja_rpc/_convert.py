"""Converters between genja's domain objects and genja.v1 protobuf messages: the one place
where the two meet. JSON-valued fields travel as compact JSON strings; an empty string means
the field's default (null, or {} for objects)."""

from __future__ import annotations

import functools
import json
import types
from collections.abc import Mapping
from typing import Any, cast

from genja._host import ConnectionOptions, Host, ValueSource
from genja._plan import NodeOutcome, PlannedTask
from genja.task._results import (
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskSkipResult,
    TaskSuccessResult,
)
from genja_rpc._pb import pb

_KIND_TO_PROTO: dict[TaskFailureKind, pb.FailureKind] = {
    kind: cast(pb.FailureKind, pb.FailureKind.Value(f"FAILURE_KIND_{kind.name}"))
    for kind in TaskFailureKind
}
_KIND_FROM_PROTO = {value: kind for kind, value in _KIND_TO_PROTO.items()}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _json_value(value: Any) -> str:
    return "" if value is None else _dumps(value)


def _json_object(value: Mapping[str, Any]) -> str:
    return _dumps(dict(value)) if value else ""


def _load_value(text: str) -> Any:
    return json.loads(text) if text else None


def _load_object(text: str) -> dict[str, Any]:
    return json.loads(text) if text else {}


def kind_to_proto(kind: TaskFailureKind) -> pb.FailureKind:
    return _KIND_TO_PROTO[kind]


def kind_from_proto(value: pb.FailureKind) -> TaskFailureKind:
    return _KIND_FROM_PROTO.get(value, TaskFailureKind.INTERNAL)


# ---------------------------------------------------------------- hosts


@functools.lru_cache(maxsize=4096)
def _sources(text: str) -> Mapping[str, ValueSource]:
    """Hosts that inherit alike share one sources text: parse it once per agent, not once per
    host per run. The mapping is read-only because hosts share it."""
    if not text:
        return types.MappingProxyType({})
    return types.MappingProxyType(
        {key: ValueSource.parse(token) for key, token in json.loads(text).items()}
    )


def _options_to_proto(options: ConnectionOptions) -> pb.ConnectionOptions:
    message = pb.ConnectionOptions(
        extras_json=_json_object(options.extras), env_extras=sorted(options.env_extras)
    )
    for name in ("hostname", "port", "username", "password", "platform"):
        value = getattr(options, name)
        if value is not None:
            setattr(message, name, value)
    return message


def _options_from_proto(message: pb.ConnectionOptions) -> ConnectionOptions:
    return ConnectionOptions(
        hostname=message.hostname if message.HasField("hostname") else None,
        port=message.port if message.HasField("port") else None,
        username=message.username if message.HasField("username") else None,
        password=message.password if message.HasField("password") else None,
        platform=message.platform if message.HasField("platform") else None,
        extras=_load_object(message.extras_json),
        env_extras=frozenset(message.env_extras),
    )


def host_to_proto(host: Host) -> pb.Host:
    pool = host.data.get("agent_pool")
    message = pb.Host(
        id=host.id,
        groups=host.groups,
        data_json=_json_object(host.data),
        agent_pool=pool if isinstance(pool, str) else "",
    )
    for name in ("hostname", "port", "username", "password", "platform"):
        value = getattr(host, name)
        if value is not None:
            setattr(message, name, value)
    for plugin, options in host.connection_options.items():
        message.connection_options[plugin].CopyFrom(_options_to_proto(options))
    if host.all_groups != host.groups:
        message.all_groups.extend(host.all_groups)
    if host.sources:
        message.sources_json = _dumps({key: str(source) for key, source in host.sources.items()})
    return message


def host_from_proto(message: pb.Host) -> Host:
    return Host(
        id=message.id,
        hostname=message.hostname if message.HasField("hostname") else None,
        port=message.port if message.HasField("port") else None,
        username=message.username if message.HasField("username") else None,
        password=message.password if message.HasField("password") else None,
        platform=message.platform if message.HasField("platform") else None,
        groups=tuple(message.groups),
        data=_load_object(message.data_json),
        connection_options={
            plugin: _options_from_proto(options)
            for plugin, options in message.connection_options.items()
        },
        all_groups=tuple(message.all_groups),
        sources=_sources(message.sources_json),
    )


class HostProtoCache:
    """pb.Host per Host object, reused across runs: inventory hosts are immutable, and
    converting them is a large share of a run's per-host cost on the client."""

    def __init__(self) -> None:
        self._by_identity: dict[int, tuple[Host, pb.Host]] = {}

    def get(self, host: Host) -> pb.Host:
        entry = self._by_identity.get(id(host))
        if entry is not None and entry[0] is host:
            return entry[1]
        message = host_to_proto(host)
        self._by_identity[id(host)] = (host, message)
        return message


class HostCache:
    """Host per host id on an agent, reused while the coordinator keeps sending the same
    bytes for it (serializing and comparing run in C, far cheaper than converting again).
    It keeps the bytes, not the message: a message would keep its whole batch alive."""

    def __init__(self) -> None:
        self._by_id: dict[str, tuple[bytes, Host]] = {}

    def get(self, message: pb.Host) -> Host:
        wire = message.SerializeToString(deterministic=True)
        entry = self._by_id.get(message.id)
        if entry is not None and entry[0] == wire:
            return entry[1]
        host = host_from_proto(message)
        self._by_id[message.id] = (wire, host)
        return host


# ---------------------------------------------------------------- results


def fill_outcome(message: pb.NodeResult, result: HostTaskResult) -> None:
    """Write `result` into the oneof of `message`. Raises TypeError or ValueError when a
    JSON-valued field cannot be serialized; the message is then left without an outcome."""
    # Fields are set in place, defaults skipped: this runs once per (task, host) on the hot
    # path. JSON is encoded first so a failure leaves the message untouched.
    if isinstance(result, TaskSuccessResult):
        result_json = _json_value(result.result)
        metadata_json = _json_object(result.metadata)
        passed = message.passed
        passed.SetInParent()
        if result_json:
            passed.result_json = result_json
        if result.changed:
            passed.changed = True
        if result.diff is not None:
            passed.diff = result.diff
        if result.summary is not None:
            passed.summary = result.summary
        if result.warnings:
            passed.warnings.extend(result.warnings)
        if result.messages:
            passed.messages.extend(result.messages)
        if metadata_json:
            passed.metadata_json = metadata_json
    elif isinstance(result, TaskFailureResult):
        message.failed.CopyFrom(
            pb.Failed(
                message=result.message,
                kind=_KIND_TO_PROTO[result.kind],
                retryable=result.retryable,
                details_json=_json_value(result.details),
                warnings=result.warnings,
                messages=result.messages,
            )
        )
    else:
        skipped = pb.Skipped()
        if result.reason is not None:
            skipped.reason = result.reason
        if result.message is not None:
            skipped.message = result.message
        message.skipped.CopyFrom(skipped)


# Results are immutable, so every all-default success can be the same object (its metadata
# is a read-only empty mapping, so nobody can change it for all the others).
_EMPTY_SUCCESS = TaskSuccessResult(metadata=types.MappingProxyType({}))


def result_from_proto(message: pb.NodeResult) -> HostTaskResult:
    which = message.WhichOneof("outcome")
    if which == "passed":
        passed = message.passed
        if not passed.ByteSize():  # all defaults: the common no-payload success
            return _EMPTY_SUCCESS
        return TaskSuccessResult(
            result=_load_value(passed.result_json),
            changed=passed.changed,
            diff=passed.diff if passed.HasField("diff") else None,
            summary=passed.summary if passed.HasField("summary") else None,
            warnings=tuple(passed.warnings),
            messages=tuple(passed.messages),
            metadata=_load_object(passed.metadata_json),
        )
    if which == "failed":
        failed = message.failed
        return TaskFailureResult(
            message=failed.message,
            kind=kind_from_proto(failed.kind),
            retryable=failed.retryable,
            details=_load_value(failed.details_json),
            warnings=tuple(failed.warnings),
            messages=tuple(failed.messages),
        )
    if which == "skipped":
        skipped = message.skipped
        return TaskSkipResult(
            reason=skipped.reason if skipped.HasField("reason") else None,
            message=skipped.message if skipped.HasField("message") else None,
        )
    return TaskFailureResult(
        message="the agent sent a result without an outcome", kind=TaskFailureKind.INTERNAL
    )


def outcome_to_proto(outcome: NodeOutcome) -> pb.NodeResult:
    message = pb.NodeResult(
        host_id=outcome.host_id, task_path=outcome.path, depth=len(outcome.path)
    )
    fill_outcome(message, outcome.result)
    return message


def outcome_from_proto(message: pb.NodeResult) -> NodeOutcome:
    return NodeOutcome(message.host_id, tuple(message.task_path), result_from_proto(message))


# ---------------------------------------------------------------- task specs


def task_spec(node: PlannedTask, code_refs: Mapping[tuple[int, ...], pb.CodeRef]) -> pb.TaskSpec:
    """The TaskSpec tree of a planned node; `code_refs` says where each node's code is."""
    definition = node.definition
    return pb.TaskSpec(
        name=definition.name,
        options_json=_json_value(definition.options),
        processors=definition.processors,
        connection_plugin_name=definition.connection_plugin_name or "",
        sub_tasks=[task_spec(child, code_refs) for child in node.children],
        code=code_refs[node.path],
    )


def options_from_spec(spec: pb.TaskSpec) -> Any:
    return _load_value(spec.options_json)
