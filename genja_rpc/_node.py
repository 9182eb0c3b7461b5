"""A coordinator with its gRPC servers and its local agent pool, on the running event loop.

The embedded runtime runs one inside the client process; `genja-coordinator serve` runs one as
a long-lived server that also takes runs from clients (CoordinatorService) and agents dialing
in from other machines (remote pools).

Two servers, so that where a call came in is never in doubt: the private one listens on a unix
socket in the node's 0700 work folder and takes only the agents the node starts itself (the
`local` pool, with a token they get through their environment); the public one (serve only)
listens where the operator says and authenticates clients and remote agents (genja_rpc._auth).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from genja._errors import ConfigurationError, RunError
from genja._runner_defaults import DEFAULT_AGENT_MEMORY_LIMIT, DEFAULT_HEARTBEAT_TIMEOUT
from genja_rpc._agent_end import AgentEnd
from genja_rpc._agent_service import AgentServicer
from genja_rpc._auth import LOCAL_POOL, LocalAgentAuth, ServerAuth
from genja_rpc._channels import aio_server, unix_path
from genja_rpc._coordinator import AgentSession, Coordinator
from genja_rpc._nanny import Nanny
from genja_rpc._pb import pb_grpc
from genja_rpc._pool import LocalAgentPool
from genja_rpc._run_store import DEFAULT_KEEP_SECONDS, DEFAULT_MAX_BYTES, RunStore

log = logging.getLogger("genja.coordinator")


@dataclass(frozen=True, slots=True)
class PublicListeners:
    """What `genja-coordinator serve` offers beyond its own agents' socket."""

    addresses: tuple[str, ...]  # "unix:/path", "127.0.0.1:50051", "0.0.0.0:50051"
    auth: ServerAuth
    credentials: grpc.ServerCredentials | None = None  # TLS for the TCP addresses


@dataclass(frozen=True, slots=True)
class NodeConfig:
    workdir: Path  # private (0700): the local agents' socket and logs live here
    local_agents: int
    host_concurrency: int | None = None
    agent_start_timeout: float = 60.0
    agent_log_level: str | None = None  # records at this level and up reach our logging
    public: PublicListeners | None = None  # None: embedded use, no CoordinatorService
    agent_settings: Path | None = None  # the local agents' own settings file
    # How long finished runs stay attachable, and the bytes all kept runs may take (serve).
    keep_runs: float = DEFAULT_KEEP_SECONDS
    keep_runs_memory: int = DEFAULT_MAX_BYTES
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT  # silence that makes an agent frozen
    agent_memory_limit: int = DEFAULT_AGENT_MEMORY_LIMIT  # resident bytes; 0: no limit


class CoordinatorNode:
    def __init__(
        self, config: NodeConfig, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """`loop` is the loop the node will run on, when the local agents are to be started
        before it runs (see `LocalAgentPool`)."""
        self.config = config
        self.coordinator = Coordinator(
            describe_exit=self._describe_exit,
            heartbeat_timeout=config.heartbeat_timeout,
            replacement_timeout=config.agent_start_timeout,
            on_attach=self._attached,
            on_health=self._on_health,
        )
        self.local_address = f"unix:{config.workdir / 'agents.sock'}"
        self._local_token = secrets.token_urlsafe(32)
        self.pool = LocalAgentPool(
            self.local_address,
            self._local_token,
            config.local_agents,
            config.workdir,
            host_concurrency=config.host_concurrency,
            on_exit=self.coordinator.process_exited,
            log_level=config.agent_log_level,
            memory_limit=config.agent_memory_limit,
            settings_file=config.agent_settings,
            loop=loop,
        )
        self.nanny = Nanny(self.coordinator, self.pool, config.heartbeat_timeout)
        self._servers: list[grpc.aio.Server] = []
        self.runs: RunStore | None = None  # a server's clients' runs (public listeners only)
        self._health = health.aio.HealthServicer()  # public server only
        self.ports: dict[str, int] = {}  # public address -> bound port

    async def start(self, *, wait_for_agents: bool = True) -> None:
        """Serve, and start the local agents; without `wait_for_agents`, the first
        `ensure_local_agents` waits for them to connect instead."""
        private = aio_server()
        pb_grpc.add_AgentServiceServicer_to_server(
            AgentServicer(self.coordinator, LocalAgentAuth(self._local_token)), private
        )
        if private.add_insecure_port(self.local_address) == 0:
            raise RunError(f"cannot listen on {self.local_address}")
        self._servers.append(private)
        if self.config.public is not None:
            self._servers.append(self._public_server(self.config.public))
        for server in self._servers:
            await server.start()
        for service in ("", "genja.v1.AgentService", "genja.v1.CoordinatorService"):
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self.nanny.start()
        self.pool.start_missing()
        if wait_for_agents:
            await self.ensure_local_agents()

    def _public_server(self, public: PublicListeners) -> grpc.aio.Server:
        from genja_rpc._coordinator_service import CoordinatorServicer, add_to_server

        server = aio_server()
        pb_grpc.add_AgentServiceServicer_to_server(
            AgentServicer(self.coordinator, public.auth), server
        )
        self.runs = RunStore(
            self.coordinator.execute,
            keep_seconds=self.config.keep_runs,
            max_bytes=self.config.keep_runs_memory,
        )
        add_to_server(CoordinatorServicer(self, public.auth, self.runs), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for address in public.addresses:
            path = unix_path(address)
            if path is None:
                check_listen_address(address)
            try:
                if path is not None:
                    port = _add_owner_only_socket(server, address, path)
                elif public.credentials is not None:
                    port = server.add_secure_port(address, public.credentials)
                else:
                    port = server.add_insecure_port(address)
            except RuntimeError:  # grpc's "failed to bind" (it logged the reason itself)
                port = 0
            if port == 0:
                raise ConfigurationError(f"cannot listen on {address}")
            self.ports[address] = port
        return server

    async def ensure_local_agents(self) -> None:
        """Start local agents that are not running (first use, or after one died), and wait
        until every local agent is connected (at once when they are); an agent being
        replaced counts only once its replacement is."""
        self.pool.start_missing()
        await self.coordinator.wait_for_agents(
            set(self.pool.agent_ids),
            self.config.agent_start_timeout,
            self.pool.startup_failure,
            ready=lambda s: s.pool != LOCAL_POOL or self.pool.is_current(s.agent_id, s.pid),
        )

    def _attached(self, session: AgentSession) -> None:
        if session.pool == LOCAL_POOL:
            self.pool.connected(session.agent_id, session.pid)

    def _on_health(self, session: AgentSession) -> None:
        self.nanny.on_health(session)

    async def _describe_exit(self, session: AgentSession) -> AgentEnd:
        if session.pool != LOCAL_POOL:
            where = f"agent {session.agent_id} of pool {session.pool!r} (on {session.hostname})"
            return AgentEnd(where, session.ended_by or "disconnected")
        return await self.pool.describe_exit(session)

    async def stop(self) -> None:
        await self.nanny.stop()
        reason = "the coordinator is stopping"
        if self.runs is not None:
            await self.runs.close(reason)
        told = await self.coordinator.shutdown_agents(reason)
        await self.pool.stop(told)
        for server in self._servers:
            await server.stop(grace=1.0)

    async def wait_for_termination(self) -> None:
        for server in self._servers:
            await server.wait_for_termination()


def check_listen_address(address: str) -> None:
    """Bind HOST:PORT once here, so that a bad address is a ConfigurationError with the
    system's reason: grpc only says that binding failed, after logging why on stderr in C++."""
    host, _, port_text = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigurationError(
            f"cannot listen on {address!r}: expected HOST:PORT (127.0.0.1:50051, [::1]:0, "
            "0.0.0.0:50051) or unix:/path"
        )
    try:
        found = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_STREAM)
    except OSError as error:
        raise ConfigurationError(f"cannot listen on {address}: {error.strerror}") from None
    for family, kind, protocol, _, where in found:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does
            try:
                probe.bind(where)
            except OSError as error:
                raise ConfigurationError(f"cannot listen on {address}: {error.strerror}") from None


def _add_owner_only_socket(server: grpc.aio.Server, address: str, path: str) -> int:
    """Bind a unix socket only its owner (and root) may connect to: created under a umask
    that leaves no moment when others could, then made 0600 to say so plainly."""
    previous = os.umask(0o177)
    try:
        port: int = server.add_insecure_port(address)
    finally:
        os.umask(previous)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    return port
