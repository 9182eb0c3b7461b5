"""How an agent ended, in the words each run gives its hosts' failures; and why its supervisor
replaced it. No I/O here."""

from __future__ import annotations

from collections.abc import Collection, Container, Mapping, Sequence
from dataclasses import dataclass, field

from genja.task._results import TaskFailureKind
from genja_rpc._scheduler import Failure


@dataclass(frozen=True, slots=True)
class Replacement:
    """Why the supervisor replaced an agent, in `AgentEnd` terms; `drain`: let the hosts it
    is running finish first (it can still run them)."""

    how: str
    cause: str = ""
    culprits: Sequence[str] | None = None
    drain: bool = False


@dataclass(frozen=True, slots=True)
class AgentEnd:
    """How an agent's session ended, as each run words its hosts' failures.

    `where` names the agent ("agent local-1 (pid 42)"); `how` follows it ("was killed by
    SIGKILL", "stopped answering 10 s ago and was replaced"). `cause` says why its supervisor
    replaced it; "{hosts}" in it stands for the hosts it names: `culprits`, or, when None, the
    hosts the run had running on it. A run names only hosts of its own: a coordinator server
    runs many clients' runs on the same agents.

    `started` holds, by run id, hosts the agent's journal says it began, beyond those it
    reported; `replaced`, that a new agent with the same id is starting to take its place."""

    where: str
    how: str
    cause: str = ""
    culprits: Sequence[str] | None = None
    started: Mapping[str, Collection[str]] = field(default_factory=dict)
    replaced: bool = False

    def running_failure(self, running: Sequence[str], own: Container[str]) -> Failure:
        """The failure of the hosts a run had `running` on the agent; `own`: the run's hosts."""
        message = f"{self.where} {self.how} while running this host"
        if self.cause:
            named = running if self.culprits is None else [h for h in self.culprits if h in own]
            message += ": " + self.cause.format(hosts=name_hosts(named))
        return Failure(message, TaskFailureKind.INTERNAL)

    def queued_failure(self) -> Failure:
        return Failure(
            f"{self.where} {self.how} before starting this host", TaskFailureKind.INTERNAL
        )


def name_hosts(host_ids: Sequence[str], shown: int = 5) -> str:
    """ "host a", "hosts a, b, c and 4 more", or "a host of another run"."""
    if not host_ids:
        return "a host of another run"
    names = ", ".join(host_ids[:shown])
    more = len(host_ids) - shown
    return (
        f"host{'s' if len(host_ids) > 1 else ''} {names}{f' and {more} more' if more > 0 else ''}"
    )
