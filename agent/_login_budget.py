"""How many logins a host may attempt in one run (settings `runner.max_connection_attempts`).

Retries and dead connections make a run log in again; against a device that refuses us, each
attempt is one more failed login on its AAA, which may lock the account for everyone. So every
login a run attempts for a host and connection plugin (successful or not) is counted, and once
the budget is spent the next one fails at once, without touching the device, as a `connection`
failure that is not retryable. The budget is per run: the next run starts afresh.
"""

from __future__ import annotations

import threading

from agent.connections._errors import ConnectionFailure
from genja._host import Host
from genja.task._results import TaskFailureKind


class LoginAttemptsExhausted(ConnectionFailure):
    kind = TaskFailureKind.CONNECTION
    retryable = False


class LoginBudget:
    """One run's login attempts by (host, plugin); thread-safe. `limit` 0 means no bound."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def charge(self, host: Host, plugin: str) -> None:
        """Count one login attempt, or raise LoginAttemptsExhausted when none is left."""
        if self._limit <= 0:
            return
        key = (host.id, plugin)
        with self._lock:
            used = self._used.get(key, 0)
            if used >= self._limit:
                raise LoginAttemptsExhausted(
                    f"host {host.id!r}: no {plugin} login attempts left in this run "
                    f"(runner.max_connection_attempts is {self._limit})",
                    host_id=host.id,
                )
            self._used[key] = used + 1
