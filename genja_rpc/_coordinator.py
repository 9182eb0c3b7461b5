"""The coordinator: agent sessions, and runs dispatched over them.

It lives on one asyncio loop. Agents attach through the AgentService servicer; a run sends each
agent its code, a RunStart and its hosts in batches, then passes the agents' host records on as
they arrive (checked against the scheduler's RunState, never decoded) until every host is done,
making failure records itself for whatever an agent could not deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from genja import __version__
from genja._errors import RunError
from genja._logging import reemit_agent_record
from genja.task._results import TaskFailureKind
from genja_rpc._auth import LOCAL_POOL, AgentIdentity
from genja_rpc._convert import HostEntry, encode_record, kind_from_proto
from genja_rpc._pb import PROTOCOL_VERSION, pb
from genja_rpc._scheduler import Failure, Filler, RunState

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


@dataclass(frozen=True, slots=True)
class RunOrder:
    """A run as the coordinator carries it out: from a client's RunRequest (`from_request`)
    or built directly by the embedded runtime. `root` is pruned to the run's depth already."""

    run_id: str
    root: pb.TaskSpec
    code: Sequence[pb.CodeBlob]
    hosts: Sequence[HostEntry]
    task_timeout: float | None = None
    run_timeout: float | None = None
    connection_settings_json: str = ""
    max_logins_per_agent: int = 0
    max_logins: int = 0
    stream_nodes: bool = False
    retry: pb.RetryDefaults | None = None
    max_connection_attempts: int = 0
    dry_run: bool = False
    max_result_size: int = 0  # 0: the agents' default

    @property
    def node_count(self) -> int:
        return count_nodes(self.root)

    @classmethod
    def from_request(cls, request: pb.RunRequest) -> RunOrder:
        return cls(
            run_id=request.run_id or uuid.uuid4().hex,
            root=request.root,
            code=request.code,
            hosts=[HostEntry.from_wire(wire) for wire in request.hosts],
            task_timeout=_seconds(request, "task_timeout"),
            run_timeout=_seconds(request, "run_timeout"),
            connection_settings_json=request.connection_settings_json,
            max_logins_per_agent=request.max_logins_per_agent,
            max_logins=request.max_logins,
            stream_nodes=request.stream_nodes,
            retry=request.retry if request.HasField("retry") else None,
            max_connection_attempts=request.max_connection_attempts,
            dry_run=request.dry_run,
            max_result_size=request.max_result_size,
        )


def _seconds(request: pb.RunRequest, field_name: str) -> float | None:
    if not request.HasField(field_name):
        return None
    seconds: float = getattr(request, field_name).ToTimedelta().total_seconds()
    return seconds


@dataclass(frozen=True, slots=True)
class RunOutput:
    """What a run yields at once: hosts agents began, and host records (the agents', passed
    on as they came, and the coordinator's own failure records)."""

    started_host_ids: Sequence[str] = ()
    records: Sequence[pb.HostRecord] = ()


# What reaches a run's inbox: typed events, one class each.
@dataclass(frozen=True, slots=True)
class _Results:
    agent_id: str
    batch: pb.ResultBatch


@dataclass(frozen=True, slots=True)
class _Rejected:
    agent_id: str
    message: str
    kind: TaskFailureKind


@dataclass(frozen=True, slots=True)
class _Lost:
    agent_id: str
    reason: str


_RunEvent = _Results | _Rejected | _Lost


@dataclass(eq=False)
class _Run:
    run_id: str
    state: RunState
    inbox: asyncio.Queue[_RunEvent] = field(default_factory=asyncio.Queue)


def count_nodes(spec: pb.TaskSpec) -> int:
    return 1 + sum(count_nodes(child) for child in spec.sub_tasks)


def login_limit(order: RunOrder, agent_count: int) -> int:
    """One agent's cap on logins in progress: its own cap, and its equal share of the run's
    overall cap (at least 1). 0 means no cap."""
    caps = [order.max_logins_per_agent] if order.max_logins_per_agent else []
    if order.max_logins:
        caps.append(max(1, math.ceil(order.max_logins / max(agent_count, 1))))
    return min(caps) if caps else 0


def filler_record(filler: Filler, node_count: int) -> pb.HostRecord:
    count = node_count - filler.first_node
    now = time.time_ns()
    return encode_record(
        filler.host_id,
        filler.first_node,
        [filler.failure.result()] * count,
        started_ns=[now] * count,
        durations_ns=[0] * count,
        done=True,
    )


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
        genja_rpc._auth); the hello only tells its protocol, pid, host and version."""
        if hello.protocol != PROTOCOL_VERSION:
            raise ProtocolMismatch(
                f"agent {identity.agent_id!r} (genja {hello.version or 'unknown'}) speaks "
                f"protocol version {hello.protocol}, this coordinator (genja {__version__}) "
                f"speaks version {PROTOCOL_VERSION}: run the same genja version on both"
            )
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
            "agent %s (pid %d on %s, pool %s, genja %s) connected with %s",
            session.agent_id, hello.pid, hello.hostname, session.pool, hello.version,
            identity.credential,
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
                run.inbox.put_nowait(_Lost(session.agent_id, reason))

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
                run.inbox.put_nowait(_Results(session.agent_id, batch))
        elif which == "rejected":
            rejected = message.rejected
            run = self._runs.get(rejected.run_id)
            if run is not None:
                kind = kind_from_proto(rejected.kind)
                run.inbox.put_nowait(_Rejected(session.agent_id, rejected.message, kind))
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

    def close_connections(self, reason: str, host_ids: Sequence[str] = ()) -> int:
        """Ask every agent to close the connections it holds (of `host_ids`, or all). Each
        agent does so before it handles anything sent after this, so a later run logs in
        anew. Returns how many agents were asked."""
        sessions = list(self._sessions.values())
        message = pb.CloseConnections(reason=reason, host_ids=host_ids)
        for session in sessions:
            session.send(pb.CoordinatorMessage(close_connections=message))
        return len(sessions)

    async def shutdown_agents(self, reason: str) -> set[str]:
        """Tell local agents to exit; remote agents only lose their stream (and reconnect to
        the next coordinator on their own). The ids of the local agents told."""
        told = set()
        for session in list(self._sessions.values()):
            if session.pool == LOCAL_POOL:
                session.send(pb.CoordinatorMessage(shutdown=pb.Shutdown(reason=reason)))
                told.add(session.agent_id)
            else:
                session.close()
        return told

    # ---------------------------------------------------------------- runs

    async def execute(self, order: RunOrder) -> AsyncIterator[RunOutput]:
        """Carry out `order` on the agents; yields what arrives, and ends when every host has
        records for every node of the tree. Each host runs on an agent of its pool
        (`Host.agent_pool`, default `LOCAL_POOL`); hosts of a pool with no agent connected fail at
        once as `connection` failures."""
        if order.run_id in self._runs:
            raise RunError(f"a run with id {order.run_id!r} is already running")
        sessions = dict(self._sessions)
        agents_by_pool: dict[str, list[str]] = {}
        for session in sessions.values():
            agents_by_pool.setdefault(session.pool, []).append(session.agent_id)
        node_count = order.node_count
        by_id = {host.host_id: host.wire for host in order.hosts}
        state = RunState(
            ((host.host_id, host.pool or LOCAL_POOL) for host in order.hosts),
            node_count,
            agents_by_pool,
        )
        run = _Run(order.run_id, state)
        self._runs[run.run_id] = run
        timeout = order.run_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            unroutable = state.route_failures()
            if unroutable:
                yield RunOutput(records=[filler_record(f, node_count) for f in unroutable])
            for agent_id in state.agents_with_work():
                self._dispatch(sessions[agent_id], order, state, by_id)
            while not state.finished:
                left = None if deadline is None else max(deadline - time.monotonic(), 0)
                try:
                    event = await asyncio.wait_for(
                        run.inbox.get(), min(left, _WATCH_SECONDS) if left else _WATCH_SECONDS
                    )
                except asyncio.TimeoutError:
                    if deadline is None or time.monotonic() < deadline:
                        vanished = self._vanished_agents(state, sessions)
                        if vanished:
                            yield RunOutput(records=vanished)
                        continue
                    failure = Failure(
                        f"the run did not finish within {timeout:g}s (runner.options.run_timeout)",
                        TaskFailureKind.TIMEOUT,
                        retryable=True,
                    )
                    self._cancel(run.run_id, sessions.values(), "run timeout")
                    fillers = state.on_deadline(failure)
                    yield RunOutput(records=[filler_record(f, node_count) for f in fillers])
                    break
                output = self._fold(state, event)
                if output.records or output.started_host_ids:
                    yield output
        finally:
            if not state.finished:
                self._cancel(run.run_id, sessions.values(), "the client stopped waiting")
            del self._runs[run.run_id]
            for session in sessions.values():
                if run.run_id in session.runs:
                    session.runs.discard(run.run_id)
                    session.send(pb.CoordinatorMessage(run_closed=pb.RunClosed(run_id=run.run_id)))

    def _vanished_agents(
        self, state: RunState, sessions: dict[str, AgentSession]
    ) -> list[pb.HostRecord]:
        """A safety net under the lost-agent events: an agent that owes this run hosts but is
        no longer attached will never send them."""
        records: list[pb.HostRecord] = []
        for agent_id in state.agents_with_work():
            if self._vanished(sessions[agent_id]):
                failure = Failure(
                    f"agent {agent_id} disconnected before finishing this host",
                    TaskFailureKind.INTERNAL,
                )
                fillers = state.on_agent_lost(agent_id, failure)
                records.extend(filler_record(f, state.node_count) for f in fillers)
        return records

    def _vanished(self, session: AgentSession) -> bool:
        """Not attached, and its lost-agent report (which says how it ended) is overdue."""
        if self._sessions.get(session.agent_id) is session:
            return False
        detached = session.detached_at
        return detached is None or time.monotonic() - detached > _WATCH_SECONDS

    def _dispatch(
        self,
        session: AgentSession,
        order: RunOrder,
        state: RunState,
        by_id: dict[str, bytes],
    ) -> None:
        session.runs.add(order.run_id)
        for blob in order.code:
            if blob.content_hash not in session.code_sent:
                session.send(pb.CoordinatorMessage(code=blob))
                session.code_sent.add(blob.content_hash)
        start = pb.RunStart(
            run_id=order.run_id,
            root=order.root,
            connection_settings_json=order.connection_settings_json,
            login_limit=login_limit(order, len(state.assignment)),
            stream_nodes=order.stream_nodes,
            retry=order.retry,
            max_connection_attempts=order.max_connection_attempts,
            dry_run=order.dry_run,
            max_result_size=order.max_result_size,
        )
        if order.task_timeout is not None:
            start.task_timeout.FromTimedelta(timedelta(seconds=order.task_timeout))
        if order.run_timeout is not None:
            start.deadline.FromNanoseconds(time.time_ns() + int(order.run_timeout * 1e9))
        session.send(pb.CoordinatorMessage(run_start=start))
        hosts = state.assignment[session.agent_id]
        for offset in range(0, len(hosts), WORK_BATCH_SIZE):
            chunk = [by_id[h] for h in hosts[offset : offset + WORK_BATCH_SIZE]]
            session.send(pb.CoordinatorMessage(work=pb.WorkBatch(run_id=order.run_id, hosts=chunk)))

    def _fold(self, state: RunState, event: _RunEvent) -> RunOutput:
        if isinstance(event, _Results):
            records: list[pb.HostRecord] = []
            for record in event.batch.records:
                accepted, filler = state.accept(
                    event.agent_id,
                    record.host_id,
                    record.first_node,
                    len(record.statuses),
                    record.done,
                )
                if accepted:
                    records.append(record)
                if filler is not None:
                    records.append(filler_record(filler, state.node_count))
            return RunOutput(event.batch.started_host_ids, records)
        if isinstance(event, _Rejected):
            failure = Failure(event.message, event.kind)
        else:
            failure = Failure(event.reason, TaskFailureKind.INTERNAL)
        fillers = state.on_agent_lost(event.agent_id, failure)
        return RunOutput(records=[filler_record(f, state.node_count) for f in fillers])

    def _cancel(self, run_id: str, sessions: Iterable[AgentSession], reason: str) -> None:
        for session in sessions:
            if run_id in session.runs:
                session.send(
                    pb.CoordinatorMessage(cancel=pb.CancelRun(run_id=run_id, reason=reason))
                )


class ProtocolMismatch(RunError):
    """An agent that speaks another version of the wire contract."""
