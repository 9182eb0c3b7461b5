"""CoordinatorService: clients send a run, the coordinator streams its host records back; and
clients ask the agents to close their connections."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from genja._errors import RunError
from genja_rpc._channels import CLIENT_TOKEN_METADATA, token_matches
from genja_rpc._coordinator import RunOrder
from genja_rpc._pb import pb, pb_grpc

if TYPE_CHECKING:
    from genja_rpc._node import CoordinatorNode

log = logging.getLogger("genja.coordinator")


class CoordinatorServicer(pb_grpc.CoordinatorServiceServicer):  # type: ignore[misc]
    def __init__(self, node: CoordinatorNode, token: str) -> None:
        self._node = node
        self._token = token

    async def _authenticated(self, context: Any) -> bool:
        if not self._token or token_matches(
            context.invocation_metadata(), CLIENT_TOKEN_METADATA, self._token
        ):
            return True
        log.warning("refused a client with a missing or wrong token from %s", context.peer())
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong client token")
        return False

    async def Run(self, request: pb.RunRequest, context: Any) -> AsyncIterator[pb.RunEvent]:
        if not await self._authenticated(context):
            return
        order = RunOrder.from_request(request)
        log.info(
            "run %s of task %r over %d hosts from %s",
            order.run_id, request.root.name, len(request.hosts), context.peer(),
        )  # fmt: skip
        try:
            await self._node.ensure_local_agents()
        except RunError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
            return
        try:
            async for output in self._node.coordinator.execute(order):
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
        yield pb.RunEvent(finished=pb.RunFinished(run_id=order.run_id))

    async def CloseConnections(
        self, request: pb.CloseConnectionsRequest, context: Any
    ) -> pb.CloseConnectionsReply:
        if not await self._authenticated(context):
            return pb.CloseConnectionsReply()
        agents = self._node.coordinator.close_connections(
            f"a client at {context.peer()} asked", list(request.host_ids)
        )
        return pb.CloseConnectionsReply(agents=agents)
