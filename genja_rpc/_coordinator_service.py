"""CoordinatorService: clients send a run, the coordinator streams its results back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from genja._errors import RunError
from genja_rpc._audit import audited_run
from genja_rpc._auth import AuthError, ServerAuth, credentials_of, refuse
from genja_rpc._convert import outcome_to_proto
from genja_rpc._pb import pb, pb_grpc

if TYPE_CHECKING:
    from genja_rpc._node import CoordinatorNode

log = logging.getLogger("genja.coordinator")


class CoordinatorServicer(pb_grpc.CoordinatorServiceServicer):  # type: ignore[misc]
    def __init__(self, node: CoordinatorNode, auth: ServerAuth) -> None:
        self._node = node
        self._auth = auth

    async def Run(self, request: pb.RunRequest, context: Any) -> AsyncIterator[pb.RunEvent]:
        try:
            client = self._auth.client_identity(*credentials_of(context))
        except AuthError as error:
            await refuse(context, error, "a client")
        with audited_run(client, request, context.peer()) as audit:
            try:
                await self._node.ensure_local_agents()
            except RunError as error:
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
                return
            async for batch in self._node.coordinator.execute(request):
                yield pb.RunEvent(
                    results=pb.ResultBatch(
                        results=[outcome_to_proto(outcome) for outcome in batch.outcomes],
                        started_host_ids=batch.started_host_ids,
                    )
                )
            audit.finished()
            yield pb.RunEvent(finished=pb.RunFinished())
