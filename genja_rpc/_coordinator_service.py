"""CoordinatorService: clients send a run, the coordinator streams its host records (and the
agents' log records for it) back; clients ask the agents to close their connections, and what
the pools and agents are doing. Who the client is comes from genja_rpc._auth; every run is
audited (genja_rpc._audit)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from genja import __version__
from genja._errors import RunError
from genja_rpc._audit import audited_run
from genja_rpc._auth import (
    LOCAL_POOL,
    AuthError,
    ClientIdentity,
    ServerAuth,
    credentials_of,
    refuse,
)
from genja_rpc._coordinator import RunOrder
from genja_rpc._pb import PROTOCOL_VERSION, pb, pb_grpc

if TYPE_CHECKING:
    from genja_rpc._node import CoordinatorNode

log = logging.getLogger("genja.coordinator")

# How long a status listing waits for each agent to say what it is doing.
_LOAD_QUERY_SECONDS = 2.0


class CoordinatorServicer(pb_grpc.CoordinatorServiceServicer):  # type: ignore[misc]
    def __init__(self, node: CoordinatorNode, auth: ServerAuth) -> None:
        self._node = node
        self._auth = auth

    async def _client(self, context: Any) -> ClientIdentity:
        """The caller's identity; a refused caller's call ends here."""
        try:
            return self._auth.client_identity(*credentials_of(context))
        except AuthError as error:
            await refuse(context, error, "a client")

    async def Run(self, request: pb.RunRequest, context: Any) -> AsyncIterator[pb.RunEvent]:
        client = await self._client(context)
        order = RunOrder.from_request(request)
        with audited_run(client, order, context.peer()) as audit:
            try:
                await self._node.ensure_local_agents()
            except RunError as error:
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
                return
            try:
                async for output in self._node.coordinator.execute(order):
                    if output.logs:
                        yield pb.RunEvent(logs=pb.LogRecords(records=output.logs))
                    if not (output.records or output.started_host_ids):
                        continue
                    # Records pass through as the agents sent them: never decoded here.
                    yield pb.RunEvent(
                        results=pb.ResultBatch(
                            run_id=order.run_id,
                            records=output.records,
                            started_host_ids=output.started_host_ids,
                        )
                    )
            except RunError as error:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
                return
            audit.finished()
            yield pb.RunEvent(finished=pb.RunFinished(run_id=order.run_id))

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
