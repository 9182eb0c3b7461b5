"""A task's retry overrides: `@task(retry=RetryConfig(...))`.

Retry is policy, not inference: a host's task is called again only when its result is a
`TaskFailureResult(retryable=True)` (connection and timeout failures of connection plugins are;
authentication failures are not) and the effective policy allows another attempt. The effective
policy is the runner's defaults (settings `runner.retry`) with the task's `RetryConfig` laid
over them field by field: a field left None keeps the runner's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Attempts and delays travel as uint32.
_MAX_UINT32 = 2**32 - 1


def _optional_count(name: str, value: Any, lowest: int) -> None:
    if value is None:
        return
    if value.__class__ is not int or not lowest <= value <= _MAX_UINT32:
        raise ValueError(
            f"RetryConfig.{name} must be a whole number from {lowest} to {_MAX_UINT32} or None, "
            f"got {value!r}"
        )


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """Per-task retry overrides; None keeps the runner's default (`runner.retry`).

    `allow`: whether retryable failures are retried at all. `max_attempts`: calls in all, the
    first one included (1: no retry). `delay_ms`: milliseconds to wait before each retry.
    """

    allow: bool | None = None
    max_attempts: int | None = None
    delay_ms: int | None = None

    def __post_init__(self) -> None:
        if self.allow is not None and not isinstance(self.allow, bool):
            raise ValueError(f"RetryConfig.allow must be True, False or None, got {self.allow!r}")
        _optional_count("max_attempts", self.max_attempts, 1)
        _optional_count("delay_ms", self.delay_ms, 0)

    def to_dict(self) -> dict[str, Any]:
        return {"allow": self.allow, "max_attempts": self.max_attempts, "delay_ms": self.delay_ms}
