"""The coordinator: agent sessions, and runs dispatched over them.

It lives on one asyncio loop. Agents attach through the AgentService servicer; a run sends each
agent its code, a RunStart and its hosts in batches, then passes the agents' host records on as
they arrive (checked against the scheduler's RunState, never decoded) until every host is done,
making failure records itself for whatever an agent could not deliver.

When an agent's session ends mid-run, the run fails the hosts the agent had begun, with how it
ended (`AgentEnd`, from the node's supervisor), and sends the hosts it had not begun to its
successor: the replacement the supervisor starts under the same id (sent when it attaches), or
another agent of its pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from genja import __version__
from genja._errors import RunError
from genja.task._results import TaskFailureKind
from genja_rpc._agent_end import AgentEnd
from genja_rpc._auth import LOCAL_POOL, AgentIdentity
from genja_rpc._convert import HostEntry, encode_record, kind_from_proto, reemit_log
from genja_rpc._liveness import Silence, heartbeat_interval
from genja_rpc._pb import PROTOCOL_VERSION, pb
from genja_rpc._scheduler import Failure, Filler, Loss, RunState

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
    # What its hello said, for status listings.
    version: str = ""
    protocol: int = 0
    concurrency: int = 0
    connected_since: float = field(default_factory=time.time)  # Unix time
    silence: Silence = field(default_factory=Silence)  # heard on every message
    health: pb.AgentHeartbeat = field(default_factory=pb.AgentHeartbeat)  # the latest
    # Why the coordinator ended the session itself (a remote agent that stopped answering).
    ended_by: str = ""

    def send(self, message: pb.CoordinatorMessage) -> None:
        self.outbox.put_nowait(message)

    def close(self) -> None:
        self.outbox.put_nowait(None)


ExitDescriber = Callable[[AgentSession], Awaitable[AgentEnd]]


async def _connection_closed(session: AgentSession) -> AgentEnd:
    return AgentEnd(f"agent {session.agent_id} (pid {session.pid})", "closed its connection")


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
    # Agents confirm they loaded the run's code before any of them gets hosts; one that cannot
    # ends the run with an error (see RunStart.confirm). For a server's clients, whose code
    # may not load on agents that do not share their environment.
    confirm: bool = False
    # Agents' log records for this run come back in RunOutput.logs (a server's clients), at
    # `log_level` and above (0: the agents' own level).
    forward_logs: bool = False
    log_level: int = 0
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
            confirm=True,
            forward_logs=True,
            log_level=request.log_level,
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
    on as they came, and the coordinator's own failure records); with `RunOrder.forward_logs`,
    log records agents made for the run (`agent_id` set)."""

    started_host_ids: Sequence[str] = ()
    records: Sequence[pb.HostRecord] = ()
    logs: Sequence[pb.LogRecord] = ()


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
    session: AgentSession
    end: AgentEnd

    @property
    def agent_id(self) -> str:
        return self.session.agent_id


@dataclass(frozen=True, slots=True)
class _Joined:
    session: AgentSession

    @property
    def agent_id(self) -> str:
        return self.session.agent_id


@dataclass(frozen=True, slots=True)
class _Accepted:
    agent_id: str


@dataclass(frozen=True, slots=True)
class _Logs:
    records: Sequence[pb.LogRecord]


@dataclass(frozen=True, slots=True)
class _Unreplaced:
    """A lost local agent will not be replaced (see `LocalAgentPool`): why."""

    agent_id: str
    reason: str


_RunEvent = _Results | _Rejected | _Lost | _Accepted | _Logs | _Joined | _Unreplaced


@dataclass(eq=False)
class _Run:
    order: RunOrder
    state: RunState
    by_id: dict[str, bytes]
    # The session each agent id of the run was (or is to be) dispatched to.
    sessions: dict[str, AgentSession]
    replacement_timeout: float
    deadline_ns: int | None = None  # wall clock, for agents' RunStart
    # Agents owed hosts that are not attached yet (a replacement starting), with when to give up.
    replacing: dict[str, float] = field(default_factory=dict)
    # With `confirm`, the agents whose RunAccepted is awaited: hosts go out when none is.
    confirming: set[str] = field(default_factory=set)
    forward_logs: bool = False
    inbox: asyncio.Queue[_RunEvent] = field(default_factory=asyncio.Queue)

    @property
    def run_id(self) -> str:
        return self.order.run_id


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """One agent as a status listing shows it: its session, and its answer to a load query
    (None: it did not answer in time)."""

    session: AgentSession
    load: pb.AgentLoad | None


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
    def __init__(
        self,
        describe_exit: ExitDescriber = _connection_closed,
        *,
        heartbeat_timeout: float | None = None,
        replacement_timeout: float = 60.0,
        on_attach: Callable[[AgentSession], None] | None = None,
        on_health: Callable[[AgentSession], None] | None = None,
    ) -> None:
        """`heartbeat_timeout`: agents are asked for heartbeats (see `Liveness`); None asks for
        none. `replacement_timeout`: how long a run waits for a lost agent's replacement to
        attach. `on_attach` hears of each agent attached, `on_health` of each heartbeat (the
        node's supervisor)."""
        self._sessions: dict[str, AgentSession] = {}
        self._runs: dict[str, _Run] = {}
        self._describe_exit = describe_exit
        self._heartbeat_timeout = heartbeat_timeout
        self._replacement_timeout = replacement_timeout
        self._on_attach = on_attach
        self._on_health = on_health
        self._changed = asyncio.Condition()
        self._background: set[asyncio.Task[None]] = set()
        # Hosts sent to another agent because theirs ended before it began them, since start.
        self.moved_hosts = 0
        self._query_ids = itertools.count(1)
        self._queries: dict[int, tuple[str, asyncio.Future[pb.AgentLoad]]] = {}

    # ---------------------------------------------------------------- agent sessions

    def all_sessions(self) -> list[AgentSession]:
        return list(self._sessions.values())

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
            version=hello.version,
            protocol=hello.protocol,
            concurrency=hello.concurrency,
        )
        self._sessions[session.agent_id] = session
        log.info(
            "agent %s (pid %d on %s, pool %s, genja %s) connected with %s",
            session.agent_id, hello.pid, hello.hostname, session.pool, hello.version,
            identity.credential,
        )  # fmt: skip
        if self._heartbeat_timeout is not None:
            liveness = pb.Liveness()
            liveness.heartbeat_interval.FromTimedelta(
                timedelta(seconds=heartbeat_interval(self._heartbeat_timeout))
            )
            liveness.timeout.FromTimedelta(timedelta(seconds=self._heartbeat_timeout))
            session.send(pb.CoordinatorMessage(liveness=liveness))
        if self._on_attach is not None:
            self._on_attach(session)
        for run in self._runs.values():
            run.inbox.put_nowait(_Joined(session))
        async with self._changed:
            self._changed.notify_all()
        return session

    def retire(self, session: AgentSession, why: str) -> None:
        """Count no more on this session (its supervisor is replacing the agent, or it stopped
        answering): no new hosts go to it, and, unless it is a local agent (whose process the
        supervisor ends), its stream is closed."""
        session.ended_by = why
        if session.pool != LOCAL_POOL:
            session.close()

    def drain(self, session: AgentSession, why: str) -> float:
        """Retire the session and tell its agent to begin no more hosts (those it has not begun
        move when it ends); the longest task_timeout of its runs (0: none)."""
        self.retire(session, why)
        reason = f"agent {session.agent_id} is being replaced: {why}"
        session.send(pb.CoordinatorMessage(drain=pb.Drain(reason=reason)))
        timeouts = [
            run.order.task_timeout or 0.0
            for run_id in session.runs
            if (run := self._runs.get(run_id)) is not None
        ]
        return max(timeouts, default=0.0)

    def is_running_hosts(self, session: AgentSession) -> bool:
        """Whether the agent is running hosts it began (by its reports) for any run."""
        return any(
            run.state.running(session.agent_id)
            for run_id in session.runs
            if (run := self._runs.get(run_id)) is not None
        )

    def heartbeat(self) -> None:
        """Tell every agent we are here (the node's supervisor calls it at each interval)."""
        message = pb.CoordinatorMessage(heartbeat=pb.Heartbeat())
        for session in self._sessions.values():
            session.send(message)

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
            end = await self._describe_exit(session)
        except Exception:
            log.exception("describing how agent %s ended failed", session.agent_id)
            end = AgentEnd(f"agent {session.agent_id} (pid {session.pid})", "disconnected")
        log.warning(
            "%s %s%s; failing the hosts it was running%s",
            end.where, end.how, f" ({end.cause.format(hosts='its hosts')})" if end.cause else "",
            ", moving the others to its replacement" if end.replaced else "",
        )  # fmt: skip
        for run_id in run_ids:
            run = self._runs.get(run_id)
            if run is not None:
                run.inbox.put_nowait(_Lost(session, end))

    async def _notify_changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def process_exited(self, agent_id: str, pid: int, not_replaced: str | None = None) -> None:
        """A local agent process is gone: end its session even if its stream has not noticed
        yet, so the hosts it owed are failed promptly. `not_replaced` says why no process
        takes its place: runs waiting for one stop waiting."""
        session = self._sessions.get(agent_id)
        if session is not None and session.pid == pid:
            session.close()
        if not_replaced is not None:
            for run in self._runs.values():
                if agent_id in run.replacing:
                    run.inbox.put_nowait(_Unreplaced(agent_id, not_replaced))

    def on_agent_message(self, session: AgentSession, message: pb.AgentMessage) -> None:
        session.silence.heard()
        which = message.WhichOneof("body")
        if which == "heartbeat":
            session.health = message.heartbeat
            if self._on_health is not None:
                self._on_health(session)
        elif which == "results":
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
        elif which == "accepted":
            run = self._runs.get(message.accepted.run_id)
            if run is not None:
                run.inbox.put_nowait(_Accepted(session.agent_id))
        elif which == "logs":
            self._on_logs(session, message.logs.records)
        elif which == "load":
            query = self._queries.get(message.load.query_id)
            if query is not None and query[0] == session.agent_id and not query[1].done():
                query[1].set_result(message.load)
        else:
            log.warning("agent %s sent an unexpected %s message", session.agent_id, which)

    def _on_logs(self, session: AgentSession, records: Iterable[pb.LogRecord]) -> None:
        """Re-emit an agent's records here; those of a run whose client wants them also go to
        that run (records of no run, or of an embedded run, whose client is this process, only
        here)."""
        forwarded: dict[str, list[pb.LogRecord]] = {}
        for record in records:
            reemit_log(session.agent_id, record)
            if record.run_id:
                run = self._runs.get(record.run_id)
                if run is not None and run.forward_logs:
                    record.agent_id = session.agent_id
                    forwarded.setdefault(record.run_id, []).append(record)
        for run_id, batch in forwarded.items():
            self._runs[run_id].inbox.put_nowait(_Logs(batch))

    async def agent_loads(self, timeout: float) -> list[AgentLoad]:
        """Every connected agent with what it says it is doing, asked now; an agent that does
        not answer within `timeout` seconds is listed without (a busy or stuck agent)."""
        sessions = sorted(self._sessions.values(), key=lambda s: (s.pool, s.agent_id))
        loop = asyncio.get_running_loop()
        asked: list[tuple[int, asyncio.Future[pb.AgentLoad]]] = []
        for session in sessions:
            query_id = next(self._query_ids)
            future: asyncio.Future[pb.AgentLoad] = loop.create_future()
            self._queries[query_id] = (session.agent_id, future)
            asked.append((query_id, future))
            session.send(pb.CoordinatorMessage(load_query=pb.LoadQuery(query_id=query_id)))
        try:
            if asked:
                await asyncio.wait([future for _, future in asked], timeout=timeout)
        finally:
            for query_id, _ in asked:
                self._queries.pop(query_id, None)
        return [
            AgentLoad(session, future.result() if future.done() else None)
            for session, (_, future) in zip(sessions, asked, strict=True)
        ]

    def run_count(self) -> int:
        return len(self._runs)

    async def wait_for_agents(
        self,
        agent_ids: set[str],
        timeout: float,
        failed: Callable[[], str | None],
        ready: Callable[[AgentSession], bool] = lambda session: True,
    ) -> None:
        """Wait until every agent in `agent_ids` is attached (with a session that is `ready`).
        `failed` reports an agent that exited before attaching (checked at each change and
        once a second)."""
        deadline = time.monotonic() + timeout

        def attached() -> set[str]:
            return {a for a, s in self._sessions.items() if ready(s) and not s.ended_by}

        async with self._changed:
            while not agent_ids <= attached():
                problem = failed()
                if problem is not None:
                    raise RunError(problem)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = ", ".join(sorted(agent_ids - attached()))
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
        timeout = order.run_timeout
        run = _Run(
            order,
            _placed(order, self._sessions.values()),
            by_id={host.host_id: host.wire for host in order.hosts},
            sessions=dict(self._sessions),
            replacement_timeout=self._replacement_timeout,
            deadline_ns=None if timeout is None else time.time_ns() + int(timeout * 1e9),
            forward_logs=order.forward_logs,
        )
        state, node_count = run.state, order.node_count
        self._runs[run.run_id] = run
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            unroutable = state.route_failures()
            if unroutable:
                yield RunOutput(records=[filler_record(f, node_count) for f in unroutable])
            for agent_id in state.agents_with_work():
                self._start(run.sessions[agent_id], run)
            if order.confirm:
                run.confirming.update(state.agents_with_work())
            else:
                self._send_work(run)
            while not state.finished:
                left = None if deadline is None else max(deadline - time.monotonic(), 0)
                try:
                    event = await asyncio.wait_for(
                        run.inbox.get(), min(left, _WATCH_SECONDS) if left else _WATCH_SECONDS
                    )
                except asyncio.TimeoutError:
                    if deadline is None or time.monotonic() < deadline:
                        vanished = self._vanished_agents(run)
                        if vanished:
                            yield RunOutput(records=vanished)
                        if run.confirming and self._confirmed(run):
                            self._send_work(run)
                        continue
                    yield RunOutput(records=self._timed_out(run, timeout))
                    break
                if isinstance(event, _Logs):
                    yield RunOutput(logs=event.records)
                    continue
                if isinstance(event, _Rejected) and event.agent_id in run.confirming:
                    raise _refused(run.sessions[event.agent_id], event.message)
                if not isinstance(event, _Accepted):
                    output = self._fold(run, event)
                    if output.records or output.started_host_ids:
                        yield output
                if run.confirming and self._confirmed(run, event.agent_id):
                    self._send_work(run)
        finally:
            self._close_run(run)

    def _close_run(self, run: _Run) -> None:
        if not run.state.finished:
            self._cancel(run, "the client stopped waiting")
        del self._runs[run.run_id]
        for session in run.sessions.values():
            if run.run_id in session.runs:
                session.runs.discard(run.run_id)
                session.send(pb.CoordinatorMessage(run_closed=pb.RunClosed(run_id=run.run_id)))

    def _timed_out(self, run: _Run, timeout: float | None) -> list[pb.HostRecord]:
        """The run's deadline passed: cancel it on the agents; failures for what is owed."""
        failure = Failure(
            f"the run did not finish within {timeout:g}s (runner.options.run_timeout)",
            TaskFailureKind.TIMEOUT,
            retryable=True,
        )
        self._cancel(run, "run timeout")
        fillers = run.state.on_deadline(failure)
        return [filler_record(f, run.state.node_count) for f in fillers]

    @staticmethod
    def _confirmed(run: _Run, agent_id: str = "") -> bool:
        """Take `agent_id` (it answered, or was lost) and agents the run no longer waits on
        out of those whose confirmation it awaits; whether none is left, so hosts may go out."""
        run.confirming.discard(agent_id)
        run.confirming.intersection_update(run.state.agents_with_work())
        return not run.confirming

    def _vanished_agents(self, run: _Run) -> list[pb.HostRecord]:
        """A safety net under the lost-agent events: an agent that owes this run hosts but is
        no longer attached will never send them; nor will a replacement that never came."""
        records: list[pb.HostRecord] = []
        state = run.state
        for agent_id in state.agents_with_work():
            waited = run.replacing.get(agent_id)
            if waited is not None:
                if time.monotonic() < waited:
                    continue
                message = (
                    f"agent {agent_id} was not replaced within {run.replacement_timeout:g}s "
                    "after it ended"
                )
            elif self._vanished(run.sessions.get(agent_id)):
                message = f"agent {agent_id} disconnected before finishing this host"
            else:
                continue
            run.replacing.pop(agent_id, None)
            failure = Failure(message, TaskFailureKind.INTERNAL)
            fillers = state.on_agent_lost(agent_id, failure).fillers
            records.extend(filler_record(f, state.node_count) for f in fillers)
        return records

    def _vanished(self, session: AgentSession | None) -> bool:
        """Not attached, and its lost-agent report (which says how it ended) is overdue."""
        if session is None:
            return True
        if self._sessions.get(session.agent_id) is session:
            return False
        detached = session.detached_at
        return detached is None or time.monotonic() - detached > _WATCH_SECONDS

    def _send_work(self, run: _Run) -> None:
        """Send every agent that owes the run hosts the ones it was not sent yet."""
        for agent_id in run.state.agents_with_work():
            self._deliver(run, agent_id)

    def _deliver(self, run: _Run, agent_id: str) -> None:
        """Send `agent_id` the hosts of `run` it owes and was not sent yet, once it is attached
        (a lost agent's replacement may not be yet: then when it attaches), and once every
        agent the run awaits confirmed it loaded the run's code."""
        session = self._sessions.get(agent_id)
        if session is None or session.ended_by:
            run.replacing.setdefault(agent_id, time.monotonic() + run.replacement_timeout)
            return
        run.replacing.pop(agent_id, None)
        if run.run_id not in session.runs:
            self._start(session, run)
        if run.confirming:
            return
        hosts = run.state.take_undelivered(agent_id)
        for offset in range(0, len(hosts), WORK_BATCH_SIZE):
            chunk = [run.by_id[h] for h in hosts[offset : offset + WORK_BATCH_SIZE]]
            session.send(pb.CoordinatorMessage(work=pb.WorkBatch(run_id=run.run_id, hosts=chunk)))

    def _start(self, session: AgentSession, run: _Run) -> None:
        """Send an agent the run's code (what it lacks) and its RunStart."""
        order = run.order
        run.sessions[session.agent_id] = session
        session.runs.add(order.run_id)
        for blob in order.code:
            if blob.content_hash not in session.code_sent:
                session.send(pb.CoordinatorMessage(code=blob))
                session.code_sent.add(blob.content_hash)
        start = pb.RunStart(
            run_id=order.run_id,
            root=order.root,
            connection_settings_json=order.connection_settings_json,
            login_limit=login_limit(order, len(run.state.assignment)),
            stream_nodes=order.stream_nodes,
            retry=order.retry,
            max_connection_attempts=order.max_connection_attempts,
            dry_run=order.dry_run,
            confirm=order.confirm,
            log_level=order.log_level,
            max_result_size=order.max_result_size,
        )
        if order.task_timeout is not None:
            start.task_timeout.FromTimedelta(timedelta(seconds=order.task_timeout))
        if run.deadline_ns is not None:
            start.deadline.FromNanoseconds(run.deadline_ns)
        session.send(pb.CoordinatorMessage(run_start=start))

    def _fold(
        self, run: _Run, event: _Results | _Rejected | _Lost | _Joined | _Unreplaced
    ) -> RunOutput:
        state = run.state
        if isinstance(event, _Results):
            records: list[pb.HostRecord] = []
            started = event.batch.started_host_ids
            if started:
                state.on_started(event.agent_id, started)
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
            return RunOutput(started, records)
        if isinstance(event, _Joined):
            if event.agent_id in run.replacing:
                self._deliver(run, event.agent_id)
            return RunOutput()
        if isinstance(event, _Unreplaced):
            return self._fold_unreplaced(run, event)
        if isinstance(event, _Rejected):
            failure = Failure(event.message, event.kind)
            fillers = state.on_agent_lost(event.agent_id, failure).fillers
            return RunOutput(records=[filler_record(f, state.node_count) for f in fillers])
        return self._fold_lost(run, event)

    def _fold_lost(self, run: _Run, event: _Lost) -> RunOutput:
        state, end, lost = run.state, event.end, event.session
        if run.sessions.get(lost.agent_id) is not lost:
            return RunOutput()  # a session this run had stopped counting on
        started = end.started.get(run.run_id, ())
        if end.replaced:
            successors = [lost.agent_id]
        else:
            successors = [
                s.agent_id
                for s in self.sessions(lost.pool)
                if s.agent_id != lost.agent_id and not s.ended_by
            ]
        running = state.running(lost.agent_id, started)
        loss = state.on_agent_lost(
            lost.agent_id,
            end.running_failure(running, run.by_id),
            queued=end.queued_failure(),
            started=started,
            successors=successors,
        )
        self._moved(run, lost.agent_id, loss)
        return RunOutput(records=[filler_record(f, state.node_count) for f in loss.fillers])

    def _fold_unreplaced(self, run: _Run, event: _Unreplaced) -> RunOutput:
        """The hosts waiting for a replacement that will not come (none of them began) move to
        the other agents of the local pool, or fail saying why."""
        agent_id = event.agent_id
        if run.replacing.pop(agent_id, None) is None:
            return RunOutput()
        others = [s.agent_id for s in self.sessions() if s.agent_id != agent_id and not s.ended_by]
        failure = Failure(
            f"{event.reason}; no agent could take this host", TaskFailureKind.INTERNAL
        )
        loss = run.state.on_agent_lost(agent_id, failure, successors=others)
        self._moved(run, agent_id, loss)
        return RunOutput(records=[filler_record(f, run.state.node_count) for f in loss.fillers])

    def _moved(self, run: _Run, agent_id: str, loss: Loss) -> None:
        moved = sum(len(hosts) for hosts in loss.moved.values())
        if moved:
            self.moved_hosts += moved
            log.info("run %s: %d hosts move from agent %s", run.run_id, moved, agent_id)
        for target in loss.moved:
            self._deliver(run, target)

    def _cancel(self, run: _Run, reason: str) -> None:
        for session in run.sessions.values():
            if run.run_id in session.runs:
                session.send(
                    pb.CoordinatorMessage(cancel=pb.CancelRun(run_id=run.run_id, reason=reason))
                )


def _placed(order: RunOrder, sessions: Iterable[AgentSession]) -> RunState:
    """The run's bookkeeping, its hosts placed on the agents connected now."""
    agents_by_pool: dict[str, list[str]] = {}
    for session in sessions:
        agents_by_pool.setdefault(session.pool, []).append(session.agent_id)
    return RunState(
        ((host.host_id, host.pool or LOCAL_POOL) for host in order.hosts),
        order.node_count,
        agents_by_pool,
    )


def _refused(session: AgentSession, message: str) -> RunError:
    """The error a run ends with when an agent cannot run its code at all."""
    return RunError(
        f"agent {session.agent_id} (pool {session.pool}) cannot run this task: {message}"
    )


class ProtocolMismatch(RunError):
    """An agent that speaks another version of the wire contract."""
