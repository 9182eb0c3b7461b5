"""The AgentService servicer: authenticates agents and pumps their stream to the coordinator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from genja._errors import RunError
from genja_rpc._auth import AgentAuth, AuthError, credentials_of, refuse
from genja_rpc._coordinator import AgentSession, Coordinator, ProtocolMismatch
from genja_rpc._pb import pb, pb_grpc

log = logging.getLogger("genja.coordinator")


class AgentServicer(pb_grpc.AgentServiceServicer):  # type: ignore[misc]
    def __init__(self, coordinator: Coordinator, auth: AgentAuth) -> None:
        self._coordinator = coordinator
        self._auth = auth

    async def Connect(self, request_iterator: AsyncIterator[pb.AgentMessage], context: Any) -> None:
        try:
            grant = self._auth.agent_grant(*credentials_of(context))
        except AuthError as error:
            await refuse(context, error, "an agent")
        first = await context.read()
        if first is grpc.aio.EOF or first.WhichOneof("body") != "hello":
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "the first message must be hello"
            )
            return
        try:
            session = await self._coordinator.attach(grant.identify(first.hello), first.hello)
        except AuthError as error:
            await refuse(context, error, f"agent {first.hello.agent_id!r}")
        except ProtocolMismatch as error:
            log.error("refused an agent from %s: %s", context.peer(), error)
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
            return
        except RunError as error:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(error))
            return
        reader = asyncio.create_task(self._read(context, session))
        try:
            while True:
                message = await session.outbox.get()
                if message is None:
                    break
                await context.write(message)
        finally:
            reader.cancel()
            self._coordinator.detach(session)

    async def _read(self, context: Any, session: AgentSession) -> None:
        try:
            while True:
                message = await context.read()
                if message is grpc.aio.EOF:
                    break
                self._coordinator.on_agent_message(session, message)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("reading from agent %s failed", session.agent_id)
        finally:
            session.close()
