"""Converters between genja's domain objects and genja.v1 protobuf messages: the one place
where the two meet. JSON-valued fields travel as compact JSON strings; an empty string means
the field's default (null, or {} for objects)."""

from __future__ import annotations

import functools
import json
import time
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from genja._host import ConnectionOptions, Host, ValueSource
from genja._plan import PlannedTask, RunPlan
from genja._records import FAILED, PASSED, SKIPPED, HostRecord, status_code, with_timing
from genja.task._definition import TaskDefinition
from genja.task._results import (
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskMessage,
    TaskMessageLevel,
    TaskSkipResult,
    TaskSuccessResult,
)
from genja_rpc._pb import pb

if TYPE_CHECKING:
    from genja._settings import RunnerRetrySettings
    from genja._status import CoordinatorStatus

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


_LEVEL_TO_PROTO: dict[TaskMessageLevel, pb.MessageLevel] = {
    level: cast(pb.MessageLevel, pb.MessageLevel.Value(f"MESSAGE_LEVEL_{level.name}"))
    for level in TaskMessageLevel
}
_LEVEL_FROM_PROTO = {value: level for level, value in _LEVEL_TO_PROTO.items()}


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


@dataclass(frozen=True, slots=True)
class HostEntry:
    """A host as a run carries it: the id and agent pool the coordinator routes by, and the
    serialized Host message it passes on."""

    host_id: str
    pool: str
    wire: bytes

    @classmethod
    def from_wire(cls, wire: bytes) -> HostEntry:
        message = pb.Host.FromString(wire)
        return cls(message.id, message.agent_pool, wire)


class HostWireCache:
    """A HostEntry per Host object, reused across runs: inventory hosts are immutable, and
    converting them is a large share of a run's per-host cost on the client. Bytes, not
    messages: a message object costs ~1.5 KB per host, its bytes ~100 B."""

    def __init__(self) -> None:
        self._by_identity: dict[int, tuple[Host, HostEntry]] = {}

    def get(self, host: Host) -> HostEntry:
        found = self._by_identity.get(id(host))
        if found is not None and found[0] is host:
            return found[1]
        message = host_to_proto(host)
        entry = HostEntry(host.id, message.agent_pool, message.SerializeToString())
        self._by_identity[id(host)] = (host, entry)
        return entry


class HostCache:
    """Host per serialized host on an agent: a host the coordinator sends again with the same
    bytes is the same Host object, found without decoding. A host whose bytes changed is
    decoded again and replaces its old entry."""

    def __init__(self) -> None:
        self._by_wire: dict[bytes, Host] = {}
        self._wire_of: dict[str, bytes] = {}

    def get(self, wire: bytes) -> Host:
        host = self._by_wire.get(wire)
        if host is not None:
            return host
        host = host_from_proto(pb.Host.FromString(wire))
        old = self._wire_of.get(host.id)
        if old is not None:
            del self._by_wire[old]
        self._by_wire[wire] = host
        self._wire_of[host.id] = wire
        return host


# ---------------------------------------------------------------- results


def message_to_proto(message: TaskMessage) -> pb.TaskMessage:
    out = pb.TaskMessage(level=_LEVEL_TO_PROTO[message.level], text=message.text)
    if message.code is not None:
        out.code = message.code
    if message.timestamp is not None:
        out.timestamp = message.timestamp.isoformat()
    return out


def message_from_proto(message: pb.TaskMessage) -> TaskMessage:
    return TaskMessage(
        text=message.text,
        level=_LEVEL_FROM_PROTO.get(message.level, TaskMessageLevel.INFO),
        code=message.code if message.HasField("code") else None,
        timestamp=(
            datetime.fromisoformat(message.timestamp) if message.HasField("timestamp") else None
        ),
    )


def fill_outcome(message: pb.NodeResult, result: HostTaskResult) -> None:
    """Write `result` into the oneof of `message`. Raises TypeError or ValueError when a
    JSON-valued field cannot be serialized; the message is then left without an outcome."""
    # Fields are set in place, defaults skipped: this runs for every node that carries more
    # than its status. JSON is encoded first so a failure leaves the message untouched.
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
            passed.messages.extend(map(message_to_proto, result.messages))
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
                messages=map(message_to_proto, result.messages),
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
_EMPTY_SKIP = TaskSkipResult()
_NO_OUTCOME = TaskFailureResult(
    message="the agent sent a result without an outcome", kind=TaskFailureKind.INTERNAL
)


def result_from_proto(message: pb.NodeResult) -> HostTaskResult:
    which = message.WhichOneof("outcome")
    if which == "passed":
        passed = message.passed
        if not passed.ByteSize():
            return _EMPTY_SUCCESS
        return TaskSuccessResult(
            result=_load_value(passed.result_json),
            changed=passed.changed,
            diff=passed.diff if passed.HasField("diff") else None,
            summary=passed.summary if passed.HasField("summary") else None,
            warnings=tuple(passed.warnings),
            messages=tuple(map(message_from_proto, passed.messages)),
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
            messages=tuple(map(message_from_proto, failed.messages)),
        )
    if which == "skipped":
        skipped = message.skipped
        return TaskSkipResult(
            reason=skipped.reason if skipped.HasField("reason") else None,
            message=skipped.message if skipped.HasField("message") else None,
        )
    return _NO_OUTCOME


# ---------------------------------------------------------------- host records

_STATUS_CODES = {TaskSuccessResult: PASSED, TaskFailureResult: FAILED, TaskSkipResult: SKIPPED}
_DEFAULT_OF_STATUS: dict[int, HostTaskResult] = {
    PASSED: _EMPTY_SUCCESS,
    SKIPPED: _EMPTY_SKIP,
    FAILED: _NO_OUTCOME,
}


def _says_more_than_its_status(result: HostTaskResult) -> bool:
    if type(result) is TaskSuccessResult:
        return not (
            result.result is None
            and not result.changed
            and result.diff is None
            and result.summary is None
            and not result.warnings
            and not result.messages
            and not result.metadata
        )
    if type(result) is TaskSkipResult:
        return result.reason is not None or result.message is not None
    return True


def encode_record(
    host_id: str,
    first_node: int,
    results: Sequence[HostTaskResult],
    *,
    started_ns: Sequence[int],
    durations_ns: Sequence[int],
    done: bool,
    attempts: Sequence[int] = (),
    exhausted: Sequence[bool] = (),
    agent_id: str = "",
    dry_run: bool = False,
) -> pb.HostRecord:
    """One host's consecutive node results as a record; runs once per host (or per node when
    streaming) on the agents, so it writes only what a node's status does not already say
    (and no attempts when every node ran once). Never raises for what a result holds: a node
    that cannot be encoded is sent as an `internal` failure saying why."""
    statuses, details = _encode_nodes(
        results, started_ns, durations_ns, attempts, exhausted, agent_id=agent_id, dry_run=dry_run
    )
    return pb.HostRecord(
        host_id=host_id, first_node=first_node, statuses=statuses, done=done, details=details
    )


# What a record costs on the wire besides its details, statuses and host id (field tags,
# lengths, first_node, done), in bytes, at most.
_RECORD_FRAMING = 32


def encode_records(
    host_id: str,
    first_node: int,
    results: Sequence[HostTaskResult],
    *,
    started_ns: Sequence[int],
    durations_ns: Sequence[int],
    done: bool,
    attempts: Sequence[int] = (),
    exhausted: Sequence[bool] = (),
    agent_id: str = "",
    dry_run: bool = False,
    max_bytes: int,
) -> list[tuple[pb.HostRecord, int]]:
    """`encode_record`, as records of at most `max_bytes` each, with their sizes: one record
    in the common case; for a host whose nodes together are larger, one record per node
    (`done` on the last); a node larger alone is sent as a `validation` failure saying its
    size. The agents' results then always fit in a message (genja_rpc._channels)."""
    statuses, details = _encode_nodes(
        results, started_ns, durations_ns, attempts, exhausted, agent_id=agent_id, dry_run=dry_run
    )
    size = len(details) + len(statuses) + len(host_id) + _RECORD_FRAMING
    if size <= max_bytes:
        record = pb.HostRecord(
            host_id=host_id, first_node=first_node, statuses=statuses, done=done, details=details
        )
        return [(record, size)]
    del details
    pieces = []
    last = len(results) - 1
    for index, result in enumerate(results):
        one = slice(index, index + 1)
        node: list[HostTaskResult] = [result]
        while True:
            node_statuses, node_details = _encode_nodes(
                node, started_ns[one], durations_ns[one], attempts[one], exhausted[one],
                agent_id=agent_id, dry_run=dry_run,
            )  # fmt: skip
            if len(node_details) + len(host_id) + _RECORD_FRAMING <= max_bytes:
                break
            node = [
                TaskFailureResult(
                    message=f"the result is too large to send: {len(node_details)} bytes "
                    f"encoded, more than the {max_bytes} bytes a message may hold",
                    kind=TaskFailureKind.VALIDATION,
                )
            ]
        record = pb.HostRecord(
            host_id=host_id,
            first_node=first_node + index,
            statuses=node_statuses,
            done=done and index == last,
            details=node_details,
        )
        pieces.append((record, len(node_details) + len(host_id) + _RECORD_FRAMING))
    return pieces


def _encode_nodes(
    results: Sequence[HostTaskResult],
    started_ns: Sequence[int],
    durations_ns: Sequence[int],
    attempts: Sequence[int],
    exhausted: Sequence[bool],
    *,
    agent_id: str,
    dry_run: bool,
) -> tuple[bytes, bytes]:
    """The statuses and the serialized NodeDetails of a record's nodes."""
    codes = _STATUS_CODES
    details = pb.NodeDetails(
        started_at_ns=started_ns, duration_ns=durations_ns, agent_id=agent_id, dry_run=dry_run
    )
    if any(exhausted) or any(count != 1 for count in attempts):
        details.attempts.extend(attempts)
        details.retries_exhausted.extend(exhausted)
    statuses = bytearray()
    for offset, result in enumerate(results):
        code = codes.get(type(result)) or status_code(result)
        if _says_more_than_its_status(result):
            node = details.results.add(node=offset)
            try:
                fill_outcome(node, result)
            # Checked on the agent before, but values may have changed since; or nested
            # deeper than this stack allows (RecursionError); or too large (MemoryError).
            except Exception as error:
                code = FAILED
                fill_outcome(node, _not_encoded(error))
        statuses.append(code)
    return bytes(statuses), details.SerializeToString()


def _not_encoded(error: Exception) -> TaskFailureResult:
    try:
        text = " ".join(str(error).split())[:500]
    except BaseException:  # an exception whose text cannot be made
        text = ""
    why = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return TaskFailureResult(
        message=f"the result could not be encoded: {why}", kind=TaskFailureKind.INTERNAL
    )


def record_to_proto(record: HostRecord) -> pb.HostRecord:
    """A record made on this side (the coordinator's failures for hosts it could not get
    results for), for the wire."""
    if isinstance(record, WireRecord):
        return record.message()
    now = time.time_ns()
    results = record.results()
    return encode_record(
        record.host_id,
        record.first_node,
        results,
        started_ns=[now] * len(results),
        durations_ns=[0] * len(results),
        done=record.done,
    )


def decode_details(details: bytes, statuses: bytes) -> tuple[HostTaskResult, ...]:
    """The results of a record's nodes, with their execution metadata."""
    message = pb.NodeDetails.FromString(details)
    results: list[HostTaskResult | None] = [None] * len(statuses)
    for node in message.results:
        if node.node < len(results):
            results[node.node] = result_from_proto(node)
    filled = [
        found if found is not None else _DEFAULT_OF_STATUS.get(code, _NO_OUTCOME)
        for found, code in zip(results, statuses, strict=True)
    ]
    started, durations = message.started_at_ns, message.duration_ns
    count = len(filled)
    if len(started) != count or len(durations) != count:
        return tuple(filled)
    attempts: Sequence[int] = message.attempts
    exhausted: Sequence[bool] = message.retries_exhausted
    if len(attempts) != count or len(exhausted) != count:
        attempts, exhausted = (1,) * count, (False,) * count
    agent = message.agent_id or None
    dry_run = message.dry_run
    return tuple(
        with_timing(result, at, took, agent, attempts=tries, exhausted=ran_out, dry_run=dry_run)
        for result, at, took, tries, ran_out in zip(
            filled, started, durations, attempts, exhausted, strict=True
        )
    )


class WireRecord(HostRecord):
    """A record as it came over the wire: its details are decoded the first time they are
    read, once."""

    __slots__ = ("_details", "_results")

    def __init__(
        self, host_id: str, first_node: int, statuses: bytes, done: bool, details: bytes
    ) -> None:
        super().__init__(host_id, first_node, statuses, done)
        self._details = details
        self._results: tuple[HostTaskResult, ...] | None = None

    def results(self) -> tuple[HostTaskResult, ...]:
        if self._results is None:
            self._results = decode_details(self._details, self.statuses)
        return self._results

    def message(self) -> pb.HostRecord:
        return pb.HostRecord(
            host_id=self.host_id,
            first_node=self.first_node,
            statuses=self.statuses,
            done=self.done,
            details=self._details,
        )


def record_from_proto(message: pb.HostRecord) -> WireRecord:
    return WireRecord(
        message.host_id, message.first_node, message.statuses, message.done, message.details
    )


# ---------------------------------------------------------------- run settings


def retry_to_proto(retry: RunnerRetrySettings) -> pb.RetryDefaults:
    return pb.RetryDefaults(
        allow=retry.allow, max_attempts=retry.max_attempts, delay_ms=retry.delay_ms
    )


def retry_from_proto(message: pb.RetryDefaults) -> RunnerRetrySettings:
    """The runner's retry defaults of a run (all of them: a task may allow retries the runner
    does not, and take its attempts and delay). Unset means the settings' defaults."""
    # Imported here: agents need the settings model for this alone, once a run starts, and
    # start faster without it.
    from genja._settings import RunnerRetrySettings

    return RunnerRetrySettings(
        allow=message.allow, max_attempts=max(message.max_attempts, 1), delay_ms=message.delay_ms
    )


# ---------------------------------------------------------------- task specs


def task_spec(node: PlannedTask, code_refs: Mapping[tuple[int, ...], pb.CodeRef]) -> pb.TaskSpec:
    """The TaskSpec tree of a planned node; `code_refs` says where each node's code is."""
    definition = node.definition
    return pb.TaskSpec(
        name=definition.name,
        options_json=_json_value(node.options),
        processors=definition.processors,
        connection_plugin_name=definition.connection_plugin_name or "",
        sub_tasks=[task_spec(child, code_refs) for child in node.children],
        code=code_refs[node.path],
    )


def options_from_spec(spec: pb.TaskSpec) -> Any:
    return _load_value(spec.options_json)


def status_from_proto(reply: pb.StatusReply, address: str) -> CoordinatorStatus:
    # Imported here: only clients read a coordinator's status (see reemit_log).
    from genja._status import AgentStatus, CoordinatorStatus

    return CoordinatorStatus(
        address=address,
        version=reply.version,
        protocol=reply.protocol,
        pools=tuple(reply.pools),
        agents=tuple(
            AgentStatus(
                agent_id=agent.agent_id,
                pool=agent.pool,
                hostname=agent.hostname,
                version=agent.version,
                protocol=agent.protocol,
                pid=agent.pid,
                connected_since=agent.connected_at.ToDatetime(tzinfo=timezone.utc),
                concurrency=agent.concurrency,
                hosts_in_flight=agent.hosts_in_flight if agent.answered else None,
                open_connections=agent.open_connections if agent.answered else None,
                runs=agent.runs if agent.answered else None,
            )
            for agent in reply.agents
        ),
        runs=reply.runs,
    )


def reemit_log(agent_id: str, record: pb.LogRecord) -> None:
    """An agent's log record through this process's logging (see genja._logging)."""
    # Imported here: only clients re-emit agents' records, and agents, which import this
    # module, start faster without genja._logging (logging.handlers, queue).
    from genja._logging import reemit_agent_record

    reemit_agent_record(
        agent_id,
        logger_name=record.logger,
        level=record.level,
        message=record.message,
        created=record.created,
        pid=record.pid,
        thread=record.thread,
    )


class RemoteTask:
    """Stands for a task class in the tree of a run met again (`Genja.attach`): the attaching
    client need not have the class; the run's TaskSpec says all its tree needs."""


def plan_from_spec(root: pb.TaskSpec, *, dry_run: bool = False) -> RunPlan:
    """The plan of a run as a coordinator holds it (`task_spec` turned back): names, options
    and connection plugins per node; no processors, no code."""

    def node(spec: pb.TaskSpec, path: tuple[int, ...]) -> PlannedTask:
        options = options_from_spec(spec)
        definition = TaskDefinition(
            name=spec.name,
            task_class=RemoteTask,
            is_async=False,
            connection_plugin_name=spec.connection_plugin_name or None,
            options=options,
        )
        children = tuple(node(child, (*path, i)) for i, child in enumerate(spec.sub_tasks))
        return PlannedTask(path, definition, None, options, children)

    planned = node(root, ())
    return RunPlan(planned, max(len(n.path) for n in planned.walk()), dry_run)
