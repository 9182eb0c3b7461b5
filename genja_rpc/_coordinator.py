"""The coordinator: agent sessions, and runs dispatched over them.

It lives on one asyncio loop. Agents attach through the AgentService servicer; a run sends each
agent its code, a RunStart and its hosts in batches, then folds the agents' result batches
through the scheduler's RunState until every host is finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from genja._errors import RunError
from genja._logging import reemit_agent_record
from genja._plan import NodeOutcome, TaskPath
from genja.task._results import TaskFailureKind
from genja_rpc._convert import kind_from_proto, outcome_from_proto
from genja_rpc._pb import pb
from genja_rpc._scheduler import Failure, RunState

log = logging.getLogger("genja.coordinator")

WORK_BATCH_SIZE = 500
DEFAULT_POOL = "local"


@dataclass(eq=False)
class AgentSession:
    agent_id: str
    pool: str
    pid: int
    hostname: str
    outbox: asyncio.Queue[pb.CoordinatorMessage | None] = field(default_factory=asyncio.Queue)
    code_sent: set[str] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)
    connected_at: float = field(default_factory=time.monotonic)

    def send(self, message: pb.CoordinatorMessage) -> None:
        self.outbox.put_nowait(message)

    def close(self) -> None:
        self.outbox.put_nowait(None)


ExitDescriber = Callable[[AgentSession], Awaitable[str]]


async def _connection_closed(session: AgentSession) -> str:
    return f"agent {session.agent_id} (pid {session.pid}) closed its connection"


@dataclass(eq=False)
class _Run:
    run_id: str
    state: RunState
    inbox: asyncio.Queue[tuple[str, str, Any]] = field(default_factory=asyncio.Queue)


def spec_paths(spec: pb.TaskSpec, prefix: TaskPath = ()) -> list[TaskPath]:
    paths = [prefix]
    for index, child in enumerate(spec.sub_tasks):
        paths.extend(spec_paths(child, (*prefix, index)))
    return paths


class Coordinator:
    def __init__(self, describe_exit: ExitDescriber = _connection_closed) -> None:
        self._sessions: dict[str, AgentSession] = {}
        self._runs: dict[str, _Run] = {}
        self._describe_exit = describe_exit
        self._changed = asyncio.Condition()

    # ---------------------------------------------------------------- agent sessions

    def sessions(self, pool: str = DEFAULT_POOL) -> list[AgentSession]:
        return sorted(
            (s for s in self._sessions.values() if s.pool == pool), key=lambda s: s.agent_id
        )

    async def attach(self, hello: pb.AgentHello) -> AgentSession:
        if hello.agent_id in self._sessions:
            raise RunError(f"an agent named {hello.agent_id!r} is already connected")
        session = AgentSession(
            agent_id=hello.agent_id,
            pool=hello.pool or DEFAULT_POOL,
            pid=hello.pid,
            hostname=hello.hostname,
        )
        self._sessions[session.agent_id] = session
        log.info("agent %s (pid %d, pool %s) connected", session.agent_id, hello.pid, session.pool)
        async with self._changed:
            self._changed.notify_all()
        return session

    async def detach(self, session: AgentSession) -> None:
        """The agent's stream ended: fail whatever it still owed to running runs."""
        if self._sessions.get(session.agent_id) is not session:
            return
        del self._sessions[session.agent_id]
        async with self._changed:
            self._changed.notify_all()
        if not session.runs:
            log.info("agent %s disconnected", session.agent_id)
            return
        reason = await self._describe_exit(session)
        log.warning("%s; failing the hosts it had not finished", reason)
        for run_id in session.runs:
            run = self._runs.get(run_id)
            if run is not None:
                run.inbox.put_nowait(("lost", session.agent_id, reason))

    def on_agent_message(self, session: AgentSession, message: pb.AgentMessage) -> None:
        which = message.WhichOneof("body")
        if which == "results":
            batch = message.results
            run = self._runs.get(batch.run_id)
            if run is not None:
                run.inbox.put_nowait(("results", session.agent_id, batch))
        elif which == "rejected":
            run = self._runs.get(message.rejected.run_id)
            if run is not None:
                run.inbox.put_nowait(("rejected", session.agent_id, message.rejected))
        elif which == "logs":
            for record in message.logs.records:
                reemit_agent_record(
                    session.agent_id,
                    logger_name=record.logger,
                    level=record.level,
                    message=record.message,
                    created=record.created,
                    pid=record.pid,
                    thread=record.thread,
                )
        else:
            log.warning("agent %s sent an unexpected %s message", session.agent_id, which)

    async def wait_for_agents(
        self, agent_ids: set[str], timeout: float, failed: Callable[[], str | None]
    ) -> None:
        """Wait until every agent in `agent_ids` is attached. `failed` reports an agent that
        exited before attaching (checked at each change and once a second)."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not agent_ids <= self._sessions.keys():
                problem = failed()
                if problem is not None:
                    raise RunError(problem)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = ", ".join(sorted(agent_ids - self._sessions.keys()))
                    raise RunError(f"agents did not connect within {timeout:g}s: {missing}")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))

    async def shutdown_agents(self, reason: str) -> None:
        for session in list(self._sessions.values()):
            session.send(pb.CoordinatorMessage(shutdown=pb.Shutdown(reason=reason)))

    # ---------------------------------------------------------------- runs

    async def execute(
        self,
        request: pb.RunRequest,
        *,
        pool: str = DEFAULT_POOL,
        run_timeout: float | None = None,
    ) -> AsyncIterator[list[NodeOutcome]]:
        """Run `request` on the pool's agents; yields batches of outcomes as they arrive and
        ends when every host has a result at every node of the tree."""
        sessions = {s.agent_id: s for s in self.sessions(pool)}
        if not sessions:
            raise RunError(f"no agents are connected in pool {pool!r}")
        run_id = uuid.uuid4().hex
        paths = spec_paths(request.root)
        state = RunState((h.id for h in request.hosts), paths, sorted(sessions))
        run = _Run(run_id, state)
        self._runs[run_id] = run
        by_id = {host.id: host for host in request.hosts}
        deadline = None if run_timeout is None else time.monotonic() + run_timeout
        try:
            for agent_id in state.agents_with_work():
                self._dispatch(sessions[agent_id], run_id, request, state, by_id)
            while not state.finished:
                timeout = None if deadline is None else max(deadline - time.monotonic(), 0)
                try:
                    kind, agent_id, payload = await asyncio.wait_for(run.inbox.get(), timeout)
                except asyncio.TimeoutError:
                    failure = Failure(
                        f"the run did not finish within {run_timeout:g}s "
                        "(runner.options.run_timeout)",
                        TaskFailureKind.TIMEOUT,
                        retryable=True,
                    )
                    self._cancel(run_id, sessions.values(), "run timeout")
                    yield state.on_deadline(failure)
                    break
                outcomes = self._fold(state, kind, agent_id, payload)
                if outcomes:
                    yield outcomes
        finally:
            if not state.finished:
                self._cancel(run_id, sessions.values(), "the client stopped waiting")
            del self._runs[run_id]
            for session in sessions.values():
                if run_id in session.runs:
                    session.runs.discard(run_id)
                    session.send(pb.CoordinatorMessage(run_closed=pb.RunClosed(run_id=run_id)))

    def _dispatch(
        self,
        session: AgentSession,
        run_id: str,
        request: pb.RunRequest,
        state: RunState,
        by_id: dict[str, pb.Host],
    ) -> None:
        session.runs.add(run_id)
        for blob in request.code:
            if blob.content_hash not in session.code_sent:
                session.send(pb.CoordinatorMessage(code=blob))
                session.code_sent.add(blob.content_hash)
        start = pb.RunStart(run_id=run_id, root=request.root, max_depth=request.max_depth)
        if request.HasField("task_timeout"):
            start.task_timeout.CopyFrom(request.task_timeout)
        session.send(pb.CoordinatorMessage(run_start=start))
        hosts = state.assignment[session.agent_id]
        for offset in range(0, len(hosts), WORK_BATCH_SIZE):
            chunk = [by_id[h] for h in hosts[offset : offset + WORK_BATCH_SIZE]]
            session.send(pb.CoordinatorMessage(work=pb.WorkBatch(run_id=run_id, hosts=chunk)))

    def _fold(self, state: RunState, kind: str, agent_id: str, payload: Any) -> list[NodeOutcome]:
        if kind == "results":
            outcomes = [outcome_from_proto(m) for m in payload.results]
            return state.on_results(agent_id, outcomes, payload.done_host_ids)
        if kind == "rejected":
            return state.on_agent_lost(
                agent_id, Failure(payload.message, kind_from_proto(payload.kind))
            )
        return state.on_agent_lost(agent_id, Failure(str(payload), TaskFailureKind.INTERNAL))

    def _cancel(self, run_id: str, sessions: Any, reason: str) -> None:
        for session in sessions:
            if run_id in session.runs:
                session.send(
                    pb.CoordinatorMessage(cancel=pb.CancelRun(run_id=run_id, reason=reason))
                )
