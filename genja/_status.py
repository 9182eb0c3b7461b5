"""What a coordinator server says about itself (`genja agents`): its pools, the agents
connected to it and what each is doing."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """One connected agent. The counts are what the agent answered when asked; None when it
    did not answer in time (busy, or stuck)."""

    agent_id: str
    pool: str
    hostname: str
    version: str  # genja's, on the agent
    protocol: int
    pid: int
    connected_since: datetime.datetime  # UTC
    concurrency: int  # hosts it works on at once
    hosts_in_flight: int | None
    open_connections: int | None
    runs: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "pool": self.pool,
            "hostname": self.hostname,
            "version": self.version,
            "protocol": self.protocol,
            "pid": self.pid,
            "connected_since": self.connected_since.isoformat(timespec="seconds"),
            "concurrency": self.concurrency,
            "answered": self.hosts_in_flight is not None,
            "hosts_in_flight": self.hosts_in_flight,
            "open_connections": self.open_connections,
            "runs": self.runs,
        }


@dataclass(frozen=True, slots=True)
class CoordinatorStatus:
    """A coordinator server at `address`: its genja version and protocol, the pools it knows
    (its local pool, the pools it has agent tokens for, and those of connected agents), its
    agents by pool and id, and how many runs it is carrying out."""

    address: str
    version: str
    protocol: int
    pools: tuple[str, ...]
    agents: tuple[AgentStatus, ...]
    runs: int

    def agents_of(self, pool: str) -> list[AgentStatus]:
        return [agent for agent in self.agents if agent.pool == pool]

    def to_dict(self) -> dict[str, Any]:
        return {
            "coordinator": self.address,
            "version": self.version,
            "protocol": self.protocol,
            "runs": self.runs,
            "pools": {
                pool: [agent.to_dict() for agent in self.agents_of(pool)] for pool in self.pools
            },
        }


@runtime_checkable
class StatusSource(Protocol):
    """A runtime that can say what its coordinator server is doing."""

    async def status(self) -> CoordinatorStatus: ...
