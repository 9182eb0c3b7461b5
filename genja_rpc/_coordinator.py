"""The coordinator: agent sessions, and runs dispatched over them.

It lives on one asyncio loop. Agents attach through the AgentService servicer; a run sends each
agent its code, a RunStart and its hosts in batches, then folds the agents' result batches
through the scheduler's RunState until every host is finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from genja._errors import RunError
from genja._logging import reemit_agent_record
from genja._plan import RuntimeBatch, TaskPath
from genja.task._results import TaskFailureKind
from genja_rpc._auth import LOCAL_POOL, AgentIdentity
from genja_rpc._convert import kind_from_proto, outcome_from_proto
from genja_rpc._pb import pb
from genja_rpc._scheduler import Failure, RunState

log = logging.getLogger("genja.coordinator")

WORK_BATCH_SIZE = 500
# How often a waiting run checks that the agents it waits for are still attached.
_WATCH_SECONDS = 10.0


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
    detached_at: float | None = None

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


def login_limit(request: pb.RunRequest, agent_count: int) -> int:
    """One agent's cap on logins in progress: its own cap, and its equal share of the run's
    overall cap (at least 1). 0 means no cap."""
    caps = [request.max_logins_per_agent] if request.max_logins_per_agent else []
    if request.max_logins:
        caps.append(max(1, math.ceil(request.max_logins / max(agent_count, 1))))
    return min(caps) if caps else 0


class Coordinator:
    def __init__(self, describe_exit: ExitDescriber = _connection_closed) -> None:
        self._sessions: dict[str, AgentSession] = {}
        self._runs: dict[str, _Run] = {}
        self._describe_exit = describe_exit
        self._changed = asyncio.Condition()
        self._background: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- agent sessions

    def sessions(self, pool: str = LOCAL_POOL) -> list[AgentSession]:
        return sorted(
            (s for s in self._sessions.values() if s.pool == pool), key=lambda s: s.agent_id
        )

    async def attach(self, identity: AgentIdentity, hello: pb.AgentHello) -> AgentSession:
        """A session for a verified agent: its id and pool come from `identity` (see
        genja_rpc._auth); the hello only tells the pid and host it runs on."""
        if identity.agent_id in self._sessions:
            raise RunError(f"an agent named {identity.agent_id!r} is already connected")
        session = AgentSession(
            agent_id=identity.agent_id,
            pool=identity.pool,
            pid=hello.pid,
            hostname=hello.hostname,
        )
        self._sessions[session.agent_id] = session
        log.info(
            "agent %s (pid %d on %s, pool %s) connected with %s",
            session.agent_id, hello.pid, hello.hostname, session.pool, identity.credential,
        )  # fmt: skip
        async with self._changed:
            self._changed.notify_all()
        return session

    def detach(self, session: AgentSession) -> None:
        """The agent's stream ended: fail whatever it still owed to running runs.

        Synchronous on purpose: it is called from the servicer's `finally`, which gRPC may be
        cancelling, and an await there could be cut short after the session was removed but
        before its runs heard of it. The slower part (learning how the agent ended) runs as a
        task of its own."""
        if self._sessions.get(session.agent_id) is not session:
            return
        del self._sessions[session.agent_id]
        session.detached_at = time.monotonic()
        self._spawn(self._notify_changed())
        if not session.runs:
            log.info("agent %s disconnected", session.agent_id)
            return
        self._spawn(self._report_lost(session, set(session.runs)))

    async def _report_lost(self, session: AgentSession, run_ids: set[str]) -> None:
        try:
            reason = await self._describe_exit(session)
        except Exception:
            log.exception("describing how agent %s ended failed", session.agent_id)
            reason = f"agent {session.agent_id} (pid {session.pid}) disconnected"
        log.warning("%s; failing the hosts it had not finished", reason)
        for run_id in run_ids:
            run = self._runs.get(run_id)
            if run is not None:
                run.inbox.put_nowait(("lost", session.agent_id, reason))

    async def _notify_changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def process_exited(self, agent_id: str, pid: int) -> None:
        """A local agent process is gone: end its session even if its stream has not noticed
        yet, so the hosts it owed are failed promptly."""
        session = self._sessions.get(agent_id)
        if session is not None and session.pid == pid:
            session.close()

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

    async def close_connections(self, reason: str, pool: str = LOCAL_POOL) -> None:
        """Ask every agent of `pool` to close the connections it holds. Each agent does so
        before it handles anything sent after this, so a later run logs in anew."""
        for session in self.sessions(pool):
            session.send(
                pb.CoordinatorMessage(close_connections=pb.CloseConnections(reason=reason))
            )

    async def shutdown_agents(self, reason: str) -> None:
        """Tell local agents to exit; remote agents only lose their stream (and reconnect to
        the next coordinator on their own)."""
        for session in list(self._sessions.values()):
            if session.pool == LOCAL_POOL:
                session.send(pb.CoordinatorMessage(shutdown=pb.Shutdown(reason=reason)))
            else:
                session.close()

    # ---------------------------------------------------------------- runs

    async def execute(
        self,
        request: pb.RunRequest,
        *,
        hosts: Sequence[pb.Host] | None = None,
        run_timeout: float | None = None,
    ) -> AsyncIterator[RuntimeBatch]:
        """Run `request` on the agents; yields batches (hosts started, outcomes) as they arrive
        and ends when every host has a result at every node of the tree. Each host runs on an
        agent of its pool (`Host.agent_pool`, default `LOCAL_POOL`); hosts of a pool with no agent
        connected fail at once as `connection` failures. `request.run_timeout`, when set,
        overrides `run_timeout`. In-process callers may pass `hosts` apart from the request,
        which spares copying every host into it."""
        sessions = dict(self._sessions)
        agents_by_pool: dict[str, list[str]] = {}
        for session in sessions.values():
            agents_by_pool.setdefault(session.pool, []).append(session.agent_id)
        if request.HasField("run_timeout"):
            run_timeout = request.run_timeout.ToTimedelta().total_seconds()
        run_id = uuid.uuid4().hex
        paths = spec_paths(request.root)
        # One pass over the hosts: every access to a repeated field makes a wrapper object.
        by_id = {host.id: host for host in (request.hosts if hosts is None else hosts)}
        state = RunState(
            ((host_id, host.agent_pool or LOCAL_POOL) for host_id, host in by_id.items()),
            paths,
            agents_by_pool,
        )
        run = _Run(run_id, state)
        self._runs[run_id] = run
        deadline = None if run_timeout is None else time.monotonic() + run_timeout
        try:
            unroutable = state.route_failures()
            if unroutable:
                yield RuntimeBatch(outcomes=tuple(unroutable))
            for agent_id in state.agents_with_work():
                self._dispatch(sessions[agent_id], run_id, request, state, by_id)
            while not state.finished:
                left = None if deadline is None else max(deadline - time.monotonic(), 0)
                try:
                    kind, agent_id, payload = await asyncio.wait_for(
                        run.inbox.get(), min(left, _WATCH_SECONDS) if left else _WATCH_SECONDS
                    )
                except asyncio.TimeoutError:
                    if deadline is None or time.monotonic() < deadline:
                        # A safety net under the lost-agent events: an agent that owes this
                        # run hosts but is no longer attached will never send them.
                        for agent_id in state.agents_with_work():
                            if self._vanished(sessions[agent_id]):
                                failure = Failure(
                                    f"agent {agent_id} disconnected before finishing this host",
                                    TaskFailureKind.INTERNAL,
                                )
                                yield RuntimeBatch(
                                    outcomes=tuple(state.on_agent_lost(agent_id, failure))
                                )
                        continue
                    failure = Failure(
                        f"the run did not finish within {run_timeout:g}s "
                        "(runner.options.run_timeout)",
                        TaskFailureKind.TIMEOUT,
                        retryable=True,
                    )
                    self._cancel(run_id, sessions.values(), "run timeout")
                    yield RuntimeBatch(outcomes=tuple(state.on_deadline(failure)))
                    break
                batch = self._fold(state, kind, agent_id, payload)
                if batch.outcomes or batch.started_host_ids:
                    yield batch
        finally:
            if not state.finished:
                self._cancel(run_id, sessions.values(), "the client stopped waiting")
            del self._runs[run_id]
            for session in sessions.values():
                if run_id in session.runs:
                    session.runs.discard(run_id)
                    session.send(pb.CoordinatorMessage(run_closed=pb.RunClosed(run_id=run_id)))

    def _vanished(self, session: AgentSession) -> bool:
        """Not attached, and its lost-agent report (which says how it ended) is overdue."""
        if self._sessions.get(session.agent_id) is session:
            return False
        detached = session.detached_at
        return detached is None or time.monotonic() - detached > _WATCH_SECONDS

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
        start = pb.RunStart(
            run_id=run_id,
            root=request.root,
            max_depth=request.max_depth,
            connection_settings_json=request.connection_settings_json,
            login_limit=login_limit(request, len(state.assignment)),
        )
        if request.HasField("task_timeout"):
            start.task_timeout.CopyFrom(request.task_timeout)
        session.send(pb.CoordinatorMessage(run_start=start))
        hosts = state.assignment[session.agent_id]
        for offset in range(0, len(hosts), WORK_BATCH_SIZE):
            chunk = [by_id[h] for h in hosts[offset : offset + WORK_BATCH_SIZE]]
            session.send(pb.CoordinatorMessage(work=pb.WorkBatch(run_id=run_id, hosts=chunk)))

    def _fold(self, state: RunState, kind: str, agent_id: str, payload: Any) -> RuntimeBatch:
        if kind == "results":
            outcomes = [outcome_from_proto(m) for m in payload.results]
            accepted = state.on_results(agent_id, outcomes, payload.done_host_ids)
            return RuntimeBatch(tuple(payload.started_host_ids), tuple(accepted))
        if kind == "rejected":
            failure = Failure(payload.message, kind_from_proto(payload.kind))
        else:
            failure = Failure(str(payload), TaskFailureKind.INTERNAL)
        return RuntimeBatch(outcomes=tuple(state.on_agent_lost(agent_id, failure)))

    def _cancel(self, run_id: str, sessions: Any, reason: str) -> None:
        for session in sessions:
            if run_id in session.runs:
                session.send(
                    pb.CoordinatorMessage(cancel=pb.CancelRun(run_id=run_id, reason=reason))
                )
