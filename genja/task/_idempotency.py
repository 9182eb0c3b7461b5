"""A task's convergence check: `@task(idempotency=IdempotencyMode.CHECK)` with a `check` method.

Idempotency is declared by the task author, never inferred. With `CHECK`, the runtime calls the
task's `check(task, host, context)` (`async check_async(...)` for an async task) before its
entry point: when the check says the host is already `converged`, the host passes with
`changed=False` and `start` is not called. `CHECK_AND_VERIFY` also calls the check again after
a passed `start`; a host that still needs a change then fails with a `validation` failure.

A check should only read: inspect the device, compare with the desired state, describe the
difference. It runs through the task's connection, like `start`. A dry run does not call it
(see `TaskRunOptions`): a task that wants its dry run to reuse the check calls it itself.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class IdempotencyMode(str, enum.Enum):
    """Whether (and how) the runtime calls a task's convergence check."""

    DISABLED = "disabled"
    CHECK = "check"  # before the entry point
    CHECK_AND_VERIFY = "check_and_verify"  # before it, and again after a passed call

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class IdempotencyCheckResult:
    """What a task's `check` found: the host is `converged` (nothing to do) or needs a change.

    Build one with `IdempotencyCheckResult.converged(...)` or `.change_required(...)`.
    `summary` is for people, `diff` describes the change still needed, `details` is any
    JSON-serializable value (it travels in the host's result)."""

    is_converged: bool
    summary: str | None = None
    diff: str | None = None
    details: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.is_converged, bool):
            raise TypeError(f"is_converged must be a bool, got {type(self.is_converged).__name__}")
        for name in ("summary", "diff"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a string or None, got {type(value).__name__}")

    @classmethod
    def converged(
        cls, summary: str | None = None, *, details: Any = None
    ) -> IdempotencyCheckResult:
        """The host is in the desired state already."""
        return cls(True, summary=summary, details=details)

    @classmethod
    def change_required(
        cls, diff: str | None = None, *, summary: str | None = None, details: Any = None
    ) -> IdempotencyCheckResult:
        """The host needs the change `diff` describes."""
        return cls(False, summary=summary, diff=diff, details=details)

    @property
    def status(self) -> str:
        """`converged` or `change_required`."""
        return "converged" if self.is_converged else "change_required"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        for name in ("summary", "diff", "details"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out
