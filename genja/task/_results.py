"""What a task returns for one host: passed, failed or skipped.

The three result classes are frozen; their fields are the reference's, plus
`execution_metadata`, which the runtime attaches to what it reports (never part of equality).
Values that travel (`result`, `metadata`, `details`) must be JSON-serializable: the runtime
checks that before a result leaves the task, and turns a result that is not into an `internal`
failure that says why.

A passed result that carries warnings has the status `passed_with_warnings` (as in Genja 0.4):
it still counts as passed everywhere (summaries, `passed_hosts`, the CLI's counts).
`messages` are `TaskMessage`s with a level; a plain string is taken as an `info` message.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeAlias, TypeVar


class TaskStatus(str, enum.Enum):
    """The states a host ends a task in: passed (with or without warnings), failed, skipped."""

    PASSED = "passed"
    PASSED_WITH_WARNINGS = "passed_with_warnings"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def passed(self) -> bool:
        """Whether a host with this status counts as passed (with warnings or not)."""
        return self is TaskStatus.PASSED or self is TaskStatus.PASSED_WITH_WARNINGS

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


E = TypeVar("E", bound=enum.Enum)
R = TypeVar("R", bound="_ReadableAsMapping")


class _ReadableAsMapping:
    """`obj["summary"]` reads the field `summary`, as Genja 0.4's result models allow;
    KeyError for a name that is not one of the class's `_KEYS` (its fields and the properties
    it lists, never its methods). Read-only: the objects are frozen."""

    __slots__ = ()
    _KEYS: ClassVar[frozenset[str]] = frozenset()

    def __getitem__(self, key: str) -> Any:
        if key not in self._KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self._KEYS else default

    def keys(self) -> list[str]:
        return sorted(self._KEYS)

    def __contains__(self, key: object) -> bool:
        return key in self._KEYS


def _readable(*properties: str) -> Callable[[type[R]], type[R]]:
    """Fills `_KEYS` of a dataclass: its fields plus `properties`."""

    def fill(cls: type[R]) -> type[R]:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        cls._KEYS = frozenset(names | set(properties))
        return cls

    return fill


def _member(kind: type[E], value: object, what: str) -> E:
    """`value` as a member of `kind` (the member, or its lower-case value)."""
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(str(member.value) for member in kind)
        raise ValueError(f"unknown {what} {value!r}; expected one of {known}") from None


class TaskMessageLevel(str, enum.Enum):
    """How much a `TaskMessage` matters; values match `genja.v1.MessageLevel`
    (MESSAGE_LEVEL_<NAME>)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    DEBUG = "debug"

    def __str__(self) -> str:
        return self.value


@_readable()
@dataclass(frozen=True, slots=True)
class TaskMessage(_ReadableAsMapping):
    """One message a task attaches to its result. `level` also accepts its lower-case value
    (`"warning"`); `code` is a machine-readable identifier of the message; `timestamp` says
    when it happened (kept as given: aware or naive)."""

    text: str
    level: TaskMessageLevel = TaskMessageLevel.INFO
    code: str | None = None
    timestamp: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"message text must be a string, got {type(self.text).__name__}")
        object.__setattr__(self, "level", _member(TaskMessageLevel, self.level, "message level"))
        _optional_str("code", self.code)
        if self.timestamp is not None and not isinstance(self.timestamp, datetime):
            raise TypeError(
                f"timestamp must be a datetime or None, got {type(self.timestamp).__name__}"
            )

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """`level` and `text`, and `code` and `timestamp` when set (all four with `full`)."""
        out: dict[str, Any] = {"level": self.level.value, "text": self.text}
        if full or self.code is not None:
            out["code"] = self.code
        if full or self.timestamp is not None:
            out["timestamp"] = None if self.timestamp is None else self.timestamp.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> TaskMessage:
        """A message from `to_dict()` output, or a plain string (an info message)."""
        if isinstance(data, str):
            return cls(data)
        stamp = data.get("timestamp")
        return cls(
            text=data["text"],
            level=TaskMessageLevel(data.get("level", "info")),
            code=data.get("code"),
            timestamp=None if stamp is None else datetime.fromisoformat(stamp),
        )


@_readable("finished_at", "retried")
@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionMetadata(_ReadableAsMapping):
    """How the runtime ran one task node for one host, attached by the runtime to the result it
    reports (`result.execution_metadata`); a result a task builds itself has none.

    `started_at` is a UTC time; `duration` is in seconds, measured on a monotonic clock where
    the node ran (so it is exact even if that machine's wall clock stepped); `agent` names the
    agent process that ran it (`local-0`, a remote agent's id, or `client` for the in-process
    runners). Not part of result equality: two runs of the same tree compare equal.

    `attempts` is how many attempts ran for the host (more than one when a retryable failure
    was retried; see `RetryConfig`): calls of the task's entry point, or of its idempotency
    check when that found nothing to do; the timing covers all of them and the delays between
    them. `retries_exhausted` says the last attempt still failed retryably
    and the retry policy allowed no more. `dry_run` says the node ran in a dry run (see
    `TaskRunOptions`): its result describes a change planned, not applied.
    """

    started_at: datetime
    duration: float
    agent: str | None = None
    attempts: int = 1
    retries_exhausted: bool = False
    dry_run: bool = False

    @property
    def finished_at(self) -> datetime:
        return self.started_at + timedelta(seconds=self.duration)

    @property
    def retried(self) -> bool:
        """Whether the task was called more than once for the host."""
        return self.attempts > 1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration": self.duration,
            "attempts": self.attempts,
            "retried": self.retried,
            "retries_exhausted": self.retries_exhausted,
            "dry_run": self.dry_run,
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
            attempts=int(data.get("attempts", 1)),
            retries_exhausted=bool(data.get("retries_exhausted", False)),
            dry_run=bool(data.get("dry_run", False)),
        )


def _strings(name: str, values: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(values, str):
        return (values,)
    items = tuple(values)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must be strings, got {type(item).__name__}")
    return items


def _messages(values: Iterable[TaskMessage | str] | TaskMessage | str) -> tuple[TaskMessage, ...]:
    """Messages as TaskMessages: a plain string is an info message."""
    if isinstance(values, str | TaskMessage):
        values = (values,)
    out = []
    for item in values:
        if isinstance(item, str):
            out.append(TaskMessage(item))
        elif isinstance(item, TaskMessage):
            out.append(item)
        else:
            raise TypeError(f"messages must be TaskMessages or strings, got {type(item).__name__}")
    return tuple(out)


def _optional_str(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None, got {type(value).__name__}")


@_readable("status")
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSuccessResult(_ReadableAsMapping):
    """The task completed for this host."""

    result: Any = None
    changed: bool = False
    diff: str | None = None
    summary: str | None = None
    warnings: tuple[str, ...] = ()
    messages: tuple[TaskMessage, ...] = ()
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
        object.__setattr__(self, "messages", _messages(self.messages))

    @property
    def status(self) -> TaskStatus:
        """`passed_with_warnings` when the result carries warnings, else `passed`."""
        return TaskStatus.PASSED_WITH_WARNINGS if self.warnings else TaskStatus.PASSED


@_readable("status")
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailureResult(_ReadableAsMapping):
    """The task ran and determined that this host failed.

    `kind` defaults to `internal`; tasks that can classify the failure should say so.
    `kind` also accepts the lower-case string value (`"timeout"`).
    """

    message: str
    kind: TaskFailureKind = TaskFailureKind.INTERNAL
    retryable: bool = False
    details: Any = None
    warnings: tuple[str, ...] = ()
    messages: tuple[TaskMessage, ...] = ()
    execution_metadata: ExecutionMetadata | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.message, str):
            raise TypeError(f"message must be a string, got {type(self.message).__name__}")
        object.__setattr__(self, "kind", _member(TaskFailureKind, self.kind, "failure kind"))
        if not isinstance(self.retryable, bool):
            raise TypeError(f"retryable must be a bool, got {type(self.retryable).__name__}")
        object.__setattr__(self, "warnings", _strings("warnings", self.warnings))
        object.__setattr__(self, "messages", _messages(self.messages))

    @property
    def status(self) -> TaskStatus:
        return TaskStatus.FAILED


@_readable("status")
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSkipResult(_ReadableAsMapping):
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
