"""CoordinatorService: clients send a run, the coordinator streams its results back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from genja._errors import RunError
from genja_rpc._channels import CLIENT_TOKEN_METADATA, token_matches
from genja_rpc._convert import outcome_to_proto
from genja_rpc._pb import pb, pb_grpc

if TYPE_CHECKING:
    from genja_rpc._node import CoordinatorNode

log = logging.getLogger("genja.coordinator")


class CoordinatorServicer(pb_grpc.CoordinatorServiceServicer):  # type: ignore[misc]
    def __init__(self, node: CoordinatorNode, token: str) -> None:
        self._node = node
        self._token = token

    async def Run(self, request: pb.RunRequest, context: Any) -> AsyncIterator[pb.RunEvent]:
        if self._token and not token_matches(
            context.invocation_metadata(), CLIENT_TOKEN_METADATA, self._token
        ):
            log.warning("refused a client with a missing or wrong token from %s", context.peer())
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong client token")
            return
        log.info(
            "run of task %r over %d hosts from %s", request.root.name, len(request.hosts),
            context.peer(),
        )  # fmt: skip
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
        yield pb.RunEvent(finished=pb.RunFinished())
