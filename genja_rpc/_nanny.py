"""The supervisor of a node's agents (a nanny, as in dask): heartbeats out, and a verdict on each
agent every tick.

A local agent is replaced (killed; the pool starts a new one under the same id, and the runs it
served fail the hosts it was running and move the others) when

- its event loop has been blocked for `timeout` seconds in a task's code (its watchdog thread
  notes it in its state folder, naming the host whose code holds the loop; in the agent's own
  code, `OWN_CODE_FACTOR` times longer),
- it said nothing for `timeout` seconds (frozen: SIGSTOP, or a loop blocked where even its
  watchdog cannot run),
- its task threads stuck past their task_timeout reached `stuck_worker_limit` (it reports them
  in its heartbeats, at once when one gets stuck): it is drained first, told to begin no more
  hosts, and replaced once the hosts it is running are through (their task_timeout bounds
  that), so that only the stuck hosts fail; or
- its memory passed the limit (the pool's memory watch does that one, from /proc).

A remote agent (on a jump host: the coordinator cannot restart it) that stops answering has
its stream closed, so that its hosts move to the other agents of its pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from genja_rpc._agent_end import Replacement
from genja_rpc._agent_state import Blocked
from genja_rpc._auth import LOCAL_POOL
from genja_rpc._coordinator import AgentSession, Coordinator
from genja_rpc._liveness import TICK_SECONDS, heartbeat_interval, stuck_worker_limit
from genja_rpc._pb import pb
from genja_rpc._pool import LocalAgentPool

log = logging.getLogger("genja.coordinator")

# A drained agent is replaced at the latest this long after the task_timeout of its runs.
DRAIN_MARGIN = 2.0
# An agent whose event loop is blocked in its own code, not a task's, is given this many
# heartbeat timeouts.
OWN_CODE_FACTOR = 3


def diagnose(
    *,
    silence: float,
    blocked: Blocked | None,
    health: pb.AgentHeartbeat,
    concurrency: int,
    timeout: float,
    now: float,
    local: bool = True,
) -> Replacement | None:
    """Whether to replace an agent (for a remote one, `local` False: to stop counting on it),
    and why. `silence`: seconds since it last said anything; `blocked`: its watchdog's note,
    if any; `now`: Unix time (the note's clock)."""
    if blocked is not None:
        # Its watchdog knows more than the silence says: go by its note.
        seconds = now - blocked.since
        if blocked.host_id:
            if seconds < timeout:
                return None
            return Replacement(
                "was replaced",
                f"event loop blocked for {seconds:.0f} s in {{hosts}}",
                [blocked.host_id],
            )
        # No task's code on the loop: the agent's own work (loading a large task module on a
        # loaded machine, say) is slow, not wrong; only far longer means it is stuck.
        if seconds < OWN_CODE_FACTOR * timeout:
            return None
        return Replacement(
            "was replaced", f"event loop blocked for {seconds:.0f} s in its own code", []
        )
    if silence >= timeout:
        replaced = " and was replaced" if local else ""
        return Replacement(f"stopped answering {silence:.0f} s ago{replaced}")
    if health.stuck_workers >= stuck_worker_limit(concurrency or 1):
        return Replacement(
            "was replaced",
            f"{health.stuck_workers} task workers stuck past their task_timeout, in {{hosts}}",
            list(health.stuck_host_ids),
            drain=True,
        )
    return None


class Nanny:
    def __init__(self, coordinator: Coordinator, pool: LocalAgentPool, timeout: float) -> None:
        self._coordinator = coordinator
        self._pool = pool
        self._timeout = timeout
        self._interval = heartbeat_interval(timeout)
        self._task: asyncio.Task[None] | None = None
        # Agents told to begin no more hosts: when to replace them at the latest, and why.
        self._draining: dict[AgentSession, tuple[float, Replacement]] = {}

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def on_health(self, session: AgentSession) -> None:
        """An agent's heartbeat: act on what it reports at once, before the results that
        follow it (a run that just ended must not hand its successor a crippled agent)."""
        self._judge(session, silence=0.0)

    async def _watch(self) -> None:
        beat = 0.0
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            if now - beat >= self._interval:
                beat = now
                self._coordinator.heartbeat()
            for session in self._sessions():
                self._judge(session, silence=session.silence.check(now))
            for session, (deadline, verdict) in list(self._draining.items()):
                if session.detached_at is not None:  # gone meanwhile
                    del self._draining[session]
                elif now >= deadline or not self._coordinator.is_running_hosts(session):
                    del self._draining[session]
                    self._pool.replace(session.agent_id, session.pid, verdict)

    def _sessions(self) -> Sequence[AgentSession]:
        return [s for s in self._coordinator.all_sessions() if not s.ended_by]

    def _judge(self, session: AgentSession, *, silence: float) -> None:
        local = session.pool == LOCAL_POOL
        if session.ended_by or (local and not self._pool.is_current(session.agent_id, session.pid)):
            return  # being replaced already, or not one of ours
        verdict = diagnose(
            silence=silence,
            blocked=self._pool.blocked(session.agent_id, session.pid) if local else None,
            health=session.health if local else pb.AgentHeartbeat(),
            concurrency=session.concurrency,
            timeout=self._timeout,
            now=time.time(),
            local=local,
        )
        if verdict is None:
            return
        if local and verdict.drain:
            longest = self._coordinator.drain(session, verdict.how)
            self._draining[session] = (time.monotonic() + longest + DRAIN_MARGIN, verdict)
            return
        self._coordinator.retire(session, verdict.how)
        if local:
            self._pool.replace(session.agent_id, session.pid, verdict)
        else:
            log.warning(
                "agent %s of pool %r %s; closing its stream",
                session.agent_id, session.pool, verdict.how,
            )  # fmt: skip
