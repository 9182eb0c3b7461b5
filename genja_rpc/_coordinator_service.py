"""CoordinatorService: clients send a run, the coordinator streams its host records (and the
agents' log records for it) back; a client re-attaches to a run it started, or cancels it; clients
ask the agents to close their connections, and what the pools and agents are doing. Who the
client is comes from genja_rpc._auth; every run is audited (genja_rpc._audit) and kept apart from
the calls that watch it (genja_rpc._run_store)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from genja import __version__
from genja._errors import RunError
from genja_rpc._auth import (
    LOCAL_POOL,
    AuthError,
    ClientIdentity,
    ServerAuth,
    credentials_of,
    refuse,
)
from genja_rpc._coordinator import RunOrder
from genja_rpc._pb import PROTOCOL_VERSION, pb
from genja_rpc._run_store import KeptRun, RunLookupError, RunStore

if TYPE_CHECKING:
    from genja_rpc._node import CoordinatorNode

log = logging.getLogger("genja.coordinator")

# How long a status listing waits for each agent to say what it is doing.
_LOAD_QUERY_SECONDS = 2.0


class CoordinatorServicer:
    def __init__(self, node: CoordinatorNode, auth: ServerAuth, runs: RunStore) -> None:
        self._node = node
        self._auth = auth
        self._runs = runs

    async def _client(self, context: Any) -> ClientIdentity:
        """The caller's identity; a refused caller's call ends here."""
        try:
            return self._auth.client_identity(*credentials_of(context))
        except AuthError as error:
            await refuse(context, error, "a client")

    async def Run(self, request: pb.RunRequest, context: Any) -> AsyncIterator[bytes]:
        """Starts the run, then streams it as `Attach` does, without the RunAttached header.
        Yields serialized RunEvents (see `add_to_server`)."""
        client = await self._client(context)
        order = RunOrder.from_request(request)
        try:
            await self._node.ensure_local_agents()
        except RunError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
            return
        try:
            run = self._runs.start(order, client, context.peer())
        except RunLookupError as error:
            await context.abort(error.code, str(error))
            return
        del order, request  # the run holds what it needs; the hosts' bytes can go with it
        async for event in self._stream(run, context, replay_header=False):
            yield event

    async def Attach(self, request: pb.AttachRequest, context: Any) -> AsyncIterator[bytes]:
        client = await self._client(context)
        try:
            run = self._runs.find(request.run_id, client)
        except RunLookupError as error:
            await context.abort(error.code, str(error))
            return
        log.info(
            "client %s at %s attached to run %s (%s)",
            client, context.peer(), run.run_id, "running" if run.running else "finished",
        )  # fmt: skip
        async for event in self._stream(run, context, replay_header=True):
            yield event

    async def _stream(
        self, run: KeptRun, context: Any, *, replay_header: bool
    ) -> AsyncIterator[bytes]:
        """A kept run's events; the call ends with the run's error if it could not be carried
        out. A caller that goes away only stops watching: the run goes on."""
        try:
            async for event in self._runs.stream(run, replay_header=replay_header):
                yield event
        except RunLookupError as error:
            await context.abort(error.code, str(error))
            return
        if run.error is not None:
            await context.abort(*run.error)

    async def CancelRun(self, request: pb.CancelRunRequest, context: Any) -> pb.CancelRunReply:
        client = await self._client(context)
        try:
            run = self._runs.find(request.run_id, client)
        except RunLookupError as error:
            await context.abort(error.code, str(error))
        reason = f"client {client} asked" + (f": {request.reason}" if request.reason else "")
        return pb.CancelRunReply(was_running=self._runs.cancel(run, reason))

    async def CloseConnections(
        self, request: pb.CloseConnectionsRequest, context: Any
    ) -> pb.CloseConnectionsReply:
        client = await self._client(context)
        agents = self._node.coordinator.close_connections(
            f"client {client} at {context.peer()} asked", list(request.host_ids)
        )
        return pb.CloseConnectionsReply(agents=agents)

    async def Status(self, request: pb.StatusRequest, context: Any) -> pb.StatusReply:
        await self._client(context)
        coordinator = self._node.coordinator
        reply = pb.StatusReply(
            version=__version__, protocol=PROTOCOL_VERSION, runs=coordinator.run_count()
        )
        pools = set(self._auth.agent_tokens)
        if self._node.config.local_agents:
            pools.add(LOCAL_POOL)
        for entry in await coordinator.agent_loads(_LOAD_QUERY_SECONDS):
            session, load = entry.session, entry.load
            pools.add(session.pool)
            agent = reply.agents.add(
                agent_id=session.agent_id,
                pool=session.pool,
                hostname=session.hostname,
                version=session.version,
                protocol=session.protocol,
                pid=session.pid,
                concurrency=session.concurrency,
                answered=load is not None,
            )
            agent.connected_at.FromNanoseconds(int(session.connected_since * 1e9))
            if load is not None:
                agent.hosts_in_flight = load.hosts_in_flight
                agent.open_connections = load.open_connections
                agent.runs = load.runs
        reply.pools.extend(sorted(pools))
        return reply


_SERVICE = "genja.v1.CoordinatorService"


def add_to_server(servicer: CoordinatorServicer, server: grpc.aio.Server) -> None:
    """Serve CoordinatorService. Run and Attach stream RunEvents that are bytes already (the
    run store keeps them serialized), so their responses go out as they are; every other
    method is (de)serialized as the generated code would."""
    methods = pb.DESCRIPTOR.services_by_name["CoordinatorService"].methods_by_name
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for name, method in methods.items():
        request = getattr(pb, method.input_type.name)
        behavior = getattr(servicer, name)  # a method left unserved fails here, at start
        if method.server_streaming:
            if method.output_type.name != "RunEvent":
                raise TypeError(f"{_SERVICE}.{name} streams {method.output_type.name}")
            handlers[name] = grpc.unary_stream_rpc_method_handler(
                behavior, request_deserializer=request.FromString
            )
        else:
            reply = getattr(pb, method.output_type.name)
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                behavior,
                request_deserializer=request.FromString,
                response_serializer=reply.SerializeToString,
            )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
