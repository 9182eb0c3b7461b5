"""Post-change session verification: `@task(session_verification=SessionVerificationConfig())`.

For a change that may cut off management access (an ACL, AAA or key change): when the task's
entry point returns a passed result with `changed=True`, the runtime closes the host's cached
connection and logs in anew; that new session must come up, else the host fails as a
`connection` failure that says the change may already be applied (nothing is rolled back, and
the task is not called again). It does not run in a dry run, after a failed or skipped result,
or after `changed=False`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Attempts and delays are whole numbers a uint32 holds (as RetryConfig's).
_MAX_UINT32 = 2**32 - 1


@dataclass(frozen=True, slots=True)
class SessionVerificationConfig:
    """`max_attempts`: logins to try for the new session (1 or more; each counts against
    `runner.max_connection_attempts`). `delay_ms`: milliseconds to wait between two of them
    (a device may take a moment to apply what the task changed)."""

    max_attempts: int = 1
    delay_ms: int = 0

    def __post_init__(self) -> None:
        for name, lowest in (("max_attempts", 1), ("delay_ms", 0)):
            value = getattr(self, name)
            if value.__class__ is not int or not lowest <= value <= _MAX_UINT32:
                raise ValueError(
                    f"SessionVerificationConfig.{name} must be a whole number from {lowest} to "
                    f"{_MAX_UINT32}, got {value!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        return {"max_attempts": self.max_attempts, "delay_ms": self.delay_ms}
