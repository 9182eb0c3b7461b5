"""The result tree a run returns: one node per task, one result per host, sub-tasks by name.

Two JSON shapes come out of it. The normalized shape (the default) writes each host result as a
flat object with a `status` field and only the fields that carry a value, for reports and
scripts. The raw shape wraps every field, defaults included, in the variant name (`Passed`,
`Failed`, `Skipped`), for debugging and for code that rebuilds results (`TaskResults.from_dict`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from genja.task._results import (
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskSkipResult,
    TaskStatus,
    TaskSuccessResult,
)

_RAW_NAMES = {
    TaskStatus.PASSED: "Passed",
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


def _count(results: Mapping[str, HostTaskResult]) -> HostSummary:
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
            failed.update(h for h, r in node.hosts.items() if isinstance(r, TaskFailureResult))
        return [host for host in self.hosts if host in failed] + sorted(failed - set(self.hosts))

    @property
    def passed_hosts(self) -> list[str]:
        """Hosts that passed this task and failed nowhere below it."""
        failed = set(self.failed_hosts)
        return [
            h for h, r in self.hosts.items() if isinstance(r, TaskSuccessResult) and h not in failed
        ]

    @property
    def skipped_hosts(self) -> list[str]:
        """Hosts this task skipped that failed nowhere below it."""
        failed = set(self.failed_hosts)
        return [
            h for h, r in self.hosts.items() if isinstance(r, TaskSkipResult) and h not in failed
        ]

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
        convert = result_to_raw if raw else result_to_normalized
        return {
            "task_name": self.task_name,
            "hosts": {host: convert(result) for host, result in self.hosts.items()},
            "sub_tasks": {name: sub.to_dict(raw=raw) for name, sub in self.sub_tasks.items()},
        }

    def to_json(self, *, pretty: bool = False, raw: bool = False) -> str:
        return json.dumps(self.to_dict(raw=raw), indent=2 if pretty else None, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskResults:
        """Rebuild a tree from `to_dict(raw=True)` output (or from the normalized shape)."""
        return cls(
            task_name=data["task_name"],
            hosts={host: result_from_dict(value) for host, value in data["hosts"].items()},
            sub_tasks={name: cls.from_dict(sub) for name, sub in data["sub_tasks"].items()},
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
            out["messages"] = list(result.messages)
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
            "messages": list(result.messages),
            "metadata": dict(result.metadata),
        }
    elif isinstance(result, TaskFailureResult):
        fields = {
            "message": result.message,
            "kind": result.kind.value,
            "retryable": result.retryable,
            "details": result.details,
            "warnings": list(result.warnings),
            "messages": list(result.messages),
        }
    else:
        fields = {"reason": result.reason, "message": result.message}
    return {_RAW_NAMES[result.status]: fields}


def result_from_dict(data: Mapping[str, Any]) -> HostTaskResult:
    """Read one host result from either JSON shape."""
    if "status" in data:
        status = TaskStatus(data["status"])
        fields = {k: v for k, v in data.items() if k != "status"}
    else:
        ((variant, fields),) = data.items()
        status = {raw: status for status, raw in _RAW_NAMES.items()}[variant]
    if status is TaskStatus.PASSED:
        return TaskSuccessResult(
            result=fields.get("result"),
            changed=fields.get("changed", False),
            diff=fields.get("diff"),
            summary=fields.get("summary"),
            warnings=tuple(fields.get("warnings", ())),
            messages=tuple(fields.get("messages", ())),
            metadata=fields.get("metadata") or {},
        )
    if status is TaskStatus.FAILED:
        return TaskFailureResult(
            message=fields["message"],
            kind=TaskFailureKind(fields.get("kind", "internal")),
            retryable=fields.get("retryable", False),
            details=fields.get("details"),
            warnings=tuple(fields.get("warnings", ())),
            messages=tuple(fields.get("messages", ())),
        )
    return TaskSkipResult(reason=fields.get("reason"), message=fields.get("message"))
