"""Liveness: heartbeats on the agent and client streams, and the numbers the supervisor and the
agents agree on. No I/O here.

Each side of a stream sends a heartbeat every `heartbeat_interval(timeout)`; a side that hears
nothing from its peer for `timeout` seconds counts it as frozen (a SIGSTOPped process, a blocked
event loop, a dead link that TCP has not noticed yet). `Silence` measures that, without blaming
the peer for time this side was not running itself.
"""

from __future__ import annotations

import time

# How often a supervisor looks at its agents (and at the silence of its peers).
TICK_SECONDS = 0.5


def heartbeat_interval(timeout: float) -> float:
    """Several heartbeats fit in one timeout, so that one late message is never fatal."""
    return max(timeout / 5, 0.05)


def stuck_worker_limit(concurrency: int) -> int:
    """Task calls stuck past their deadline at which an agent's supervisor drains and replaces
    it. The agent keeps `concurrency` spare task threads, so that stuck calls cost no capacity
    up to this limit, nor while it drains."""
    return max(1, concurrency // 4)


class Silence:
    """How long a peer has said nothing, not counting the time this side itself was not running
    (a process that was stopped, or starved of CPU, must not blame its peers when it wakes up).

    Call `heard` on every message from the peer and `check` every `tick` seconds or so."""

    __slots__ = ("_checked", "_heard", "_tick")

    def __init__(self, tick: float = TICK_SECONDS, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._tick = tick
        self._heard = now
        self._checked = now

    def heard(self, now: float | None = None) -> None:
        self._heard = time.monotonic() if now is None else now

    def check(self, now: float | None = None) -> float:
        """Seconds of silence so far."""
        now = time.monotonic() if now is None else now
        away = now - self._checked - self._tick
        self._checked = now
        if away > 1.0:  # this side was not running: that part of the silence is ours
            self._heard = min(now, self._heard + away)
        return now - self._heard
