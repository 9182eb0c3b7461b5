"""A coordinator with its gRPC server and its local agent pool, on the running event loop.

The embedded runtime runs one inside the client process; `genja-coordinator serve` runs one as
a long-lived server that also takes runs from clients (CoordinatorService) and agents dialing
in from other machines (remote pools).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from genja._errors import RunError
from genja_rpc._agent_service import AgentServicer
from genja_rpc._channels import aio_server
from genja_rpc._coordinator import AgentSession, Coordinator
from genja_rpc._pb import pb_grpc
from genja_rpc._pool import LocalAgentPool

log = logging.getLogger("genja.coordinator")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    listen: tuple[str, ...]  # addresses to serve on: "unix:/path", "127.0.0.1:50051"
    agent_token: str
    workdir: Path
    local_agents: int
    local_agent_address: str  # the address local agents dial (one of `listen`)
    host_concurrency: int | None = None
    agent_start_timeout: float = 60.0
    client_token: str | None = None  # None: no CoordinatorService (embedded use)
    agent_log_level: str | None = None  # records at this level and up reach our logging
    server_credentials: grpc.ServerCredentials | None = None  # TLS for TCP listeners


class CoordinatorNode:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.coordinator = Coordinator(describe_exit=self._describe_exit)
        self.pool = LocalAgentPool(
            config.local_agent_address,
            config.agent_token,
            config.local_agents,
            config.workdir,
            host_concurrency=config.host_concurrency,
            on_exit=self.coordinator.process_exited,
            log_level=config.agent_log_level,
        )
        self._server: grpc.aio.Server | None = None
        self.ports: dict[str, int] = {}

    async def start(self, *, wait_for_agents: bool = True) -> None:
        """Serve, and start the local agents; without `wait_for_agents`, the first
        `ensure_local_agents` waits for them to connect instead."""
        server = self._server = aio_server()
        pb_grpc.add_AgentServiceServicer_to_server(
            AgentServicer(self.coordinator, self.config.agent_token), server
        )
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        services = ["genja.v1.AgentService"]
        if self.config.client_token is not None:
            from genja_rpc._coordinator_service import CoordinatorServicer

            pb_grpc.add_CoordinatorServiceServicer_to_server(
                CoordinatorServicer(self, self.config.client_token), server
            )
            services.append("genja.v1.CoordinatorService")
        for address in self.config.listen:
            credentials = self.config.server_credentials
            if credentials is not None and not address.startswith("unix:"):
                port = server.add_secure_port(address, credentials)
            else:
                port = server.add_insecure_port(address)
            if port == 0:
                raise RunError(f"cannot listen on {address}")
            self.ports[address] = port
        await server.start()
        for service in ["", *services]:
            await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        self.pool.start_missing()
        if wait_for_agents:
            await self.ensure_local_agents()

    async def ensure_local_agents(self) -> None:
        """Start local agents that are not running (first use, or after one died), and wait
        until every local agent is connected (at once when they are)."""
        self.pool.start_missing()
        await self.coordinator.wait_for_agents(
            set(self.pool.agent_ids), self.config.agent_start_timeout, self.pool.startup_failure
        )

    async def _describe_exit(self, session: AgentSession) -> str:
        if session.pool != "local":
            return (
                f"agent {session.agent_id} of pool {session.pool!r} (on {session.hostname}) "
                "disconnected before finishing this host"
            )
        return await self.pool.describe_exit(session)

    async def stop(self) -> None:
        await self.coordinator.shutdown_agents("the coordinator is stopping")
        await self.pool.stop()
        if self._server is not None:
            await self._server.stop(grace=1.0)

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()
