"""The result tree a run returns: one node per task, one result per host, sub-tasks by name.

Two JSON shapes come out of it. The normalized shape (the default) writes each host result as a
flat object with a `status` field and only the fields that carry a value, for reports and
scripts. The raw shape wraps every field, defaults included, in the variant name (`Passed`,
`PassedWithWarnings`, `Failed`, `Skipped`), for debugging and for code that rebuilds results
(`TaskResults.from_dict`). Both add the runtime's `execution_metadata` (start, finish, duration,
agent, attempts) beside a host's result when the result carries it. Messages are objects
(`level`, `text`, and `code` / `timestamp`; the raw shape always has all four).

A tree a run returns is lazy: its `hosts` mappings (`NodeHosts`) read a `ResultStore` that holds
the runtime's host records as they came. Counting, the host views and summaries read only the
records' status bytes; a host's result objects are decoded the first time one is read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from genja._records import FAILED, PASSED, SKIPPED, HostRecord
from genja.task._results import (
    ExecutionMetadata,
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskMessage,
    TaskSkipResult,
    TaskStatus,
    TaskSuccessResult,
)

_RAW_NAMES = {
    TaskStatus.PASSED: "Passed",
    TaskStatus.PASSED_WITH_WARNINGS: "PassedWithWarnings",
    TaskStatus.FAILED: "Failed",
    TaskStatus.SKIPPED: "Skipped",
}


@dataclass(frozen=True, slots=True)
class HostSummary:
    """Counts of hosts by outcome."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    def __add__(self, other: HostSummary) -> HostSummary:
        return HostSummary(
            self.passed + other.passed, self.failed + other.failed, self.skipped + other.skipped
        )

    def __str__(self) -> str:
        return f"passed={self.passed} failed={self.failed} skipped={self.skipped}"


@dataclass(frozen=True, slots=True)
class TaskSummary:
    """Counts for one task node (`hosts`) and for its whole subtree (`total`)."""

    task_name: str
    hosts: HostSummary
    sub_tasks: tuple[TaskSummary, ...] = ()

    @property
    def total(self) -> HostSummary:
        """Host results counted over this task and every sub-task below it."""
        total = self.hosts
        for sub in self.sub_tasks:
            total = total + sub.total
        return total

    def __str__(self) -> str:
        return "\n".join(self._lines(0))

    def _lines(self, indent: int) -> Iterator[str]:
        yield f"{'  ' * indent}{self.task_name}: {self.hosts}"
        for sub in self.sub_tasks:
            yield from sub._lines(indent + 1)


class ResultStore:
    """One run's host records, by host: what `NodeHosts` views read.

    Each host's records must continue where its previous one ended (`add` refuses others); the
    status of every node a host has reported is kept in one byte string per host, so status
    questions never touch the records' results."""

    def __init__(self, host_ids: Sequence[str], node_count: int) -> None:
        self.host_ids = tuple(host_ids)
        self.node_count = node_count
        self._statuses: dict[str, bytearray] = {}
        self._records: dict[str, list[HostRecord]] = {}
        self._covered: dict[str, int] = {}
        self._done: set[str] = set()

    def accepts(self, record: HostRecord) -> bool:
        host_id = record.host_id
        return (
            host_id not in self._done
            and record.first_node == self._covered.get(host_id, 0)
            and record.end_node <= self.node_count
        )

    def add(self, record: HostRecord) -> bool:
        """Keep `record`; False (and nothing kept) when it does not continue the host's
        records, or the host is done already."""
        if not self.accepts(record):
            return False
        host_id = record.host_id
        statuses = self._statuses.get(host_id)
        if statuses is None:
            statuses = self._statuses[host_id] = bytearray(self.node_count)
            self._records[host_id] = [record]
        else:
            self._records[host_id].append(record)
        statuses[record.first_node : record.end_node] = record.statuses
        self._covered[host_id] = record.end_node
        if record.done or record.end_node == self.node_count:
            self._done.add(host_id)
        return True

    def covered(self, host_id: str) -> int:
        """How many nodes of the host's tree have a result."""
        return self._covered.get(host_id, 0)

    def is_done(self, host_id: str) -> bool:
        return host_id in self._done

    def status(self, host_id: str, index: int) -> int:
        statuses = self._statuses.get(host_id)
        return statuses[index] if statuses is not None else 0

    def result(self, host_id: str, index: int) -> HostTaskResult:
        for record in self._records.get(host_id, ()):
            if record.first_node <= index < record.end_node:
                return record.results()[index - record.first_node]
        raise KeyError(host_id)

    def ids_at(self, index: int, code: int | None = None) -> list[str]:
        """Hosts with a result at node `index` (with status `code`), in selection order."""
        found = []
        statuses = self._statuses
        for host_id in self.host_ids:
            row = statuses.get(host_id)
            if row is not None and row[index] and (code is None or row[index] == code):
                found.append(host_id)
        return found


class NodeHosts(Mapping[str, HostTaskResult]):
    """The results at one node of a run's tree, by host in selection order, decoded when
    read."""

    __slots__ = ("_ids", "_index", "_store")

    def __init__(self, store: ResultStore, index: int) -> None:
        self._store = store
        self._index = index
        self._ids: list[str] | None = None

    def _host_ids(self) -> list[str]:
        if self._ids is None:
            self._ids = self._store.ids_at(self._index)
        return self._ids

    def __getitem__(self, host_id: str) -> HostTaskResult:
        if not self._store.status(host_id, self._index):
            raise KeyError(host_id)
        return self._store.result(host_id, self._index)

    def __contains__(self, host_id: object) -> bool:
        return isinstance(host_id, str) and bool(self._store.status(host_id, self._index))

    def __iter__(self) -> Iterator[str]:
        return iter(self._host_ids())

    def __len__(self) -> int:
        return len(self._host_ids())

    def with_status(self, code: int) -> list[str]:
        return self._store.ids_at(self._index, code)

    def summary(self) -> HostSummary:
        passed = failed = skipped = 0
        for host_id in self._host_ids():
            code = self._store.status(host_id, self._index)
            if code == PASSED:
                passed += 1
            elif code == FAILED:
                failed += 1
            else:
                skipped += 1
        return HostSummary(passed, failed, skipped)

    def __repr__(self) -> str:
        return f"NodeHosts({len(self)} hosts)"


_CODE_OF_TYPE = {TaskSuccessResult: PASSED, TaskFailureResult: FAILED, TaskSkipResult: SKIPPED}


def _ids_with(results: Mapping[str, HostTaskResult], code: int) -> list[str]:
    if isinstance(results, NodeHosts):
        return results.with_status(code)
    kind = next(t for t, c in _CODE_OF_TYPE.items() if c == code)
    return [h for h, r in results.items() if isinstance(r, kind)]


def _count(results: Mapping[str, HostTaskResult]) -> HostSummary:
    if isinstance(results, NodeHosts):
        return results.summary()
    passed = failed = skipped = 0
    for result in results.values():
        if isinstance(result, TaskSuccessResult):
            passed += 1
        elif isinstance(result, TaskFailureResult):
            failed += 1
        else:
            skipped += 1
    return HostSummary(passed, failed, skipped)


@dataclass(frozen=True, slots=True)
class TaskResults:
    """The results of one task over the selected hosts, with its sub-tasks' results by name.

    Host-level views (`failed_hosts`, `passed_hosts`, `skipped_hosts`, `host_summary()`) look at
    a host's whole tree: a host is failed if it failed at any node, otherwise passed or skipped
    as its root result says. Every host is in exactly one of the three.
    """

    task_name: str
    hosts: Mapping[str, HostTaskResult] = field(default_factory=dict)
    sub_tasks: Mapping[str, TaskResults] = field(default_factory=dict)
    run_id: str | None = field(default=None, compare=False)

    # ---------------------------------------------------------------- lookup

    def __getitem__(self, host_id: str) -> HostTaskResult:
        return self.hosts[host_id]

    def __contains__(self, host_id: object) -> bool:
        return host_id in self.hosts

    def __len__(self) -> int:
        return len(self.hosts)

    def host(self, host_id: str) -> HostTaskResult:
        """This task's result for one host; KeyError naming the host if it was not selected."""
        try:
            return self.hosts[host_id]
        except KeyError:
            raise KeyError(f"no result for host {host_id!r} in task {self.task_name!r}") from None

    def sub_task(self, *names: str) -> TaskResults:
        """A sub-task's results, by name; several names walk down the tree."""
        node = self
        for name in names:
            try:
                node = node.sub_tasks[name]
            except KeyError:
                known = ", ".join(node.sub_tasks) or "none"
                raise KeyError(
                    f"task {node.task_name!r} has no sub-task {name!r} in these results "
                    f"(sub-tasks: {known})"
                ) from None
        return node

    def walk(self) -> Iterator[TaskResults]:
        """This node and every node below it, parents before children, in declared order."""
        yield self
        for sub in self.sub_tasks.values():
            yield from sub.walk()

    # ---------------------------------------------------------------- host views

    @property
    def failed_hosts(self) -> list[str]:
        """Hosts that failed at this task or at any sub-task below it."""
        failed: set[str] = set()
        for node in self.walk():
            failed.update(_ids_with(node.hosts, FAILED))
        return [host for host in self.hosts if host in failed] + sorted(failed - set(self.hosts))

    @property
    def passed_hosts(self) -> list[str]:
        """Hosts that passed this task and failed nowhere below it."""
        failed = set(self.failed_hosts)
        return [h for h in _ids_with(self.hosts, PASSED) if h not in failed]

    @property
    def skipped_hosts(self) -> list[str]:
        """Hosts this task skipped that failed nowhere below it."""
        failed = set(self.failed_hosts)
        return [h for h in _ids_with(self.hosts, SKIPPED) if h not in failed]

    def host_summary(self) -> HostSummary:
        """Hosts by their outcome over the whole tree (see the class docstring)."""
        return HostSummary(len(self.passed_hosts), len(self.failed_hosts), len(self.skipped_hosts))

    def task_summary(self) -> TaskSummary:
        """Per-task counts, recursively; `.total` sums every node of the tree."""
        return TaskSummary(
            self.task_name,
            _count(self.hosts),
            tuple(sub.task_summary() for sub in self.sub_tasks.values()),
        )

    # ---------------------------------------------------------------- serialization

    def to_dict(self, *, raw: bool = False) -> dict[str, Any]:
        """The tree as plain data; the root of a run's tree also carries its `run_id`."""
        convert = result_to_raw if raw else result_to_normalized
        out: dict[str, Any] = {
            "task_name": self.task_name,
            "hosts": {host: convert(result) for host, result in self.hosts.items()},
            "sub_tasks": {name: sub.to_dict(raw=raw) for name, sub in self.sub_tasks.items()},
        }
        if self.run_id is not None:
            out["run_id"] = self.run_id
        return out

    def to_json(self, *, pretty: bool = False, raw: bool = False) -> str:
        return json.dumps(self.to_dict(raw=raw), indent=2 if pretty else None, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskResults:
        """Rebuild a tree from `to_dict(raw=True)` output (or from the normalized shape)."""
        return cls(
            task_name=data["task_name"],
            hosts={host: result_from_dict(value) for host, value in data["hosts"].items()},
            sub_tasks={name: cls.from_dict(sub) for name, sub in data["sub_tasks"].items()},
            run_id=data.get("run_id"),
        )


def result_to_normalized(result: HostTaskResult) -> dict[str, Any]:
    """The flat shape: `status` plus only the fields that carry a value."""
    out: dict[str, Any] = {"status": result.status.value}
    if isinstance(result, TaskFailureResult):
        out["message"] = result.message
        out["kind"] = result.kind.value
        out["retryable"] = result.retryable
        if result.details is not None:
            out["details"] = result.details
    elif isinstance(result, TaskSuccessResult):
        if result.summary is not None:
            out["summary"] = result.summary
        if result.changed:
            out["changed"] = True
        if result.diff is not None:
            out["diff"] = result.diff
        if result.result is not None:
            out["result"] = result.result
        if result.metadata:
            out["metadata"] = dict(result.metadata)
    else:
        if result.reason is not None:
            out["reason"] = result.reason
        if result.message is not None:
            out["message"] = result.message
    if not isinstance(result, TaskSkipResult):
        if result.warnings:
            out["warnings"] = list(result.warnings)
        if result.messages:
            out["messages"] = [message.to_dict() for message in result.messages]
    if result.execution_metadata is not None:
        out["execution_metadata"] = result.execution_metadata.to_dict()
    return out


def result_to_raw(result: HostTaskResult) -> dict[str, Any]:
    """The variant-wrapped shape with every field, defaults included."""
    fields: dict[str, Any]
    if isinstance(result, TaskSuccessResult):
        fields = {
            "result": result.result,
            "changed": result.changed,
            "diff": result.diff,
            "summary": result.summary,
            "warnings": list(result.warnings),
            "messages": [message.to_dict(full=True) for message in result.messages],
            "metadata": dict(result.metadata),
        }
    elif isinstance(result, TaskFailureResult):
        fields = {
            "message": result.message,
            "kind": result.kind.value,
            "retryable": result.retryable,
            "details": result.details,
            "warnings": list(result.warnings),
            "messages": [message.to_dict(full=True) for message in result.messages],
        }
    else:
        fields = {"reason": result.reason, "message": result.message}
    out: dict[str, Any] = {_RAW_NAMES[result.status]: fields}
    if result.execution_metadata is not None:
        out["execution_metadata"] = result.execution_metadata.to_dict()
    return out


def result_from_dict(data: Mapping[str, Any]) -> HostTaskResult:
    """Read one host result from either JSON shape."""
    timing = data.get("execution_metadata")
    execution = ExecutionMetadata.from_dict(timing) if timing is not None else None
    if "status" in data:
        status = TaskStatus(data["status"])
        fields = {k: v for k, v in data.items() if k not in ("status", "execution_metadata")}
    else:
        ((variant, fields),) = [(k, v) for k, v in data.items() if k != "execution_metadata"]
        status = {raw: status for status, raw in _RAW_NAMES.items()}[variant]
    messages = tuple(TaskMessage.from_dict(item) for item in fields.get("messages", ()))
    if status.passed:
        return TaskSuccessResult(
            result=fields.get("result"),
            changed=fields.get("changed", False),
            diff=fields.get("diff"),
            summary=fields.get("summary"),
            warnings=tuple(fields.get("warnings", ())),
            messages=messages,
            metadata=fields.get("metadata") or {},
            execution_metadata=execution,
        )
    if status is TaskStatus.FAILED:
        return TaskFailureResult(
            message=fields["message"],
            kind=TaskFailureKind(fields.get("kind", "internal")),
            retryable=fields.get("retryable", False),
            details=fields.get("details"),
            warnings=tuple(fields.get("warnings", ())),
            messages=messages,
            execution_metadata=execution,
        )
    return TaskSkipResult(
        reason=fields.get("reason"), message=fields.get("message"), execution_metadata=execution
    )
