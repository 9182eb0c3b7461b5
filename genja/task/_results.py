"""What a task returns for one host: passed, failed or skipped.

The three result classes are frozen; their fields are the reference's, plus
`execution_metadata`, which the runtime attaches to what it reports (never part of equality).
Values that travel (`result`, `metadata`, `details`) must be JSON-serializable: the runtime
checks that before a result leaves the task, and turns a result that is not into an `internal`
failure that says why.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias


class TaskStatus(str, enum.Enum):
    """The three normal states a host ends a task in."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


class TaskFailureKind(str, enum.Enum):
    """Why a host failed; values match `genja.v1.FailureKind` (FAILURE_KIND_<NAME>)."""

    CONNECTION = "connection"
    AUTHENTICATION = "authentication"
    VALIDATION = "validation"
    TIMEOUT = "timeout"
    COMMAND = "command"
    UNSUPPORTED = "unsupported"
    INTERNAL = "internal"
    EXTERNAL = "external"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionMetadata:
    """How the runtime ran one task node for one host, attached by the runtime to the result it
    reports (`result.execution_metadata`); a result a task builds itself has none.

    `started_at` is a UTC time; `duration` is in seconds, measured on a monotonic clock where
    the node ran (so it is exact even if that machine's wall clock stepped); `agent` names the
    agent process that ran it (`local-0`, a remote agent's id, or `client` for the in-process
    runners). Not part of result equality: two runs of the same tree compare equal.
    """

    started_at: datetime
    duration: float
    agent: str | None = None

    @property
    def finished_at(self) -> datetime:
        return self.started_at + timedelta(seconds=self.duration)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration": self.duration,
        }
        if self.agent is not None:
            out["agent"] = self.agent
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutionMetadata:
        return cls(
            started_at=datetime.fromisoformat(data["started_at"]),
            duration=float(data["duration"]),
            agent=data.get("agent"),
        )


def _strings(name: str, values: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(values, str):
        return (values,)
    items = tuple(values)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must be strings, got {type(item).__name__}")
    return items


def _optional_str(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None, got {type(value).__name__}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSuccessResult:
    """The task completed for this host."""

    result: Any = None
    changed: bool = False
    diff: str | None = None
    summary: str | None = None
    warnings: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    execution_metadata: ExecutionMetadata | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _optional_str("summary", self.summary)
        _optional_str("diff", self.diff)
        if not isinstance(self.changed, bool):
            raise TypeError(f"changed must be a bool, got {type(self.changed).__name__}")
        if not isinstance(self.metadata, Mapping):
            raise TypeError(f"metadata must be a mapping, got {type(self.metadata).__name__}")
        object.__setattr__(self, "warnings", _strings("warnings", self.warnings))
        object.__setattr__(self, "messages", _strings("messages", self.messages))

    @property
    def status(self) -> TaskStatus:
        return TaskStatus.PASSED


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailureResult:
    """The task ran and determined that this host failed.

    `kind` defaults to `internal`; tasks that can classify the failure should say so.
    `kind` also accepts the lower-case string value (`"timeout"`).
    """

    message: str
    kind: TaskFailureKind = TaskFailureKind.INTERNAL
    retryable: bool = False
    details: Any = None
    warnings: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    execution_metadata: ExecutionMetadata | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.message, str):
            raise TypeError(f"message must be a string, got {type(self.message).__name__}")
        try:
            object.__setattr__(self, "kind", TaskFailureKind(self.kind))
        except ValueError:
            known = ", ".join(kind.value for kind in TaskFailureKind)
            raise ValueError(
                f"unknown failure kind {self.kind!r}; expected one of {known}"
            ) from None
        if not isinstance(self.retryable, bool):
            raise TypeError(f"retryable must be a bool, got {type(self.retryable).__name__}")
        object.__setattr__(self, "warnings", _strings("warnings", self.warnings))
        object.__setattr__(self, "messages", _strings("messages", self.messages))

    @property
    def status(self) -> TaskStatus:
        return TaskStatus.FAILED


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSkipResult:
    """The task intentionally did not apply to this host."""

    reason: str | None = None
    message: str | None = None
    execution_metadata: ExecutionMetadata | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _optional_str("reason", self.reason)
        _optional_str("message", self.message)

    @property
    def status(self) -> TaskStatus:
        return TaskStatus.SKIPPED


HostTaskResult: TypeAlias = TaskSuccessResult | TaskFailureResult | TaskSkipResult
RESULT_TYPES = (TaskSuccessResult, TaskFailureResult, TaskSkipResult)
