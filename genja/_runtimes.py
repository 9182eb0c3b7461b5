"""Runtimes: what runs a plan's task tree over hosts and reports host records back.

`Genja` holds one runtime: the one given as `Genja(runtime=...)`, or else the one the runner
named by `runner.plugin` makes. Runners are found by name in the `genja.runners` entry-point
group; each names a factory `factory(settings) -> Runtime`. genja ships three:

- `agents` (the default): a coordinator inside the client with local agent processes, or a
  `genja-coordinator serve` when `runner.options.coordinator` is set;
- `threaded`: hosts run on a thread pool in the client process, no agents;
- `serial`: hosts run one after the other on the caller's thread (a breakpoint in `start`
  stops there), for debugging and tiny runs.

All three run the same host pipeline (`agent._pipeline`), so they agree on depth, order,
timeouts, connections, failure kinds and results; processors always run in the client, on the
records any runtime reports.

The contract of `Runtime.run`: every host of the job ends with records covering every node of
the plan, in run order, the last one marked `done`, whatever happened to the host (a lost
agent, a deadline, a cancelled run). A host may be reported started (`started_host_ids`) before
its first record. `RunAssembler` still fails, with a message that says so, any host a runtime
leaves unaccounted for.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from genja._errors import ConfigurationError
from genja._host import Host
from genja._plan import RunPlan
from genja._records import HostRecord

if TYPE_CHECKING:
    from genja._settings import Settings

RUNNERS_GROUP = "genja.runners"
DEFAULT_RUNNER = "agents"


@dataclass(frozen=True, slots=True)
class RunJob:
    """One run, as `Genja` hands it to its runtime.

    `stream` asks for each node's record as soon as the node finishes (processors or an event
    consumer are watching); otherwise a host's whole tree may come as one record."""

    run_id: str
    plan: RunPlan
    hosts: Sequence[Host]
    stream: bool = False


@dataclass(frozen=True, slots=True)
class RuntimeBatch:
    """What a runtime reports at once: hosts that began, and host records."""

    started_host_ids: tuple[str, ...] = ()
    records: tuple[HostRecord, ...] = ()


class Runtime(Protocol):
    def run(self, job: RunJob) -> AsyncGenerator[RuntimeBatch, None]:
        """Batches until every host of the job is done. Closing the iterator early cancels the
        hosts that have not started."""
        ...

    async def close_connections(self, host_ids: Collection[str] | None = None) -> None:
        """Close the connections held for these hosts (all hosts: None); later tasks log in
        anew."""
        ...

    def close(self) -> None:
        """Release everything (agent processes, threads, connections). Safe to call twice."""
        ...


@dataclass(frozen=True, slots=True)
class AttachedRun:
    """A run met again after its client went away (`Genja.attach`): its task tree as the
    coordinator ran it (no processors: they ran, if at all, in the client that started it), its
    hosts, and its batches from its first (every record, replayed) to its last, on the
    `Runtime.run` contract."""

    run_id: str
    plan: RunPlan
    host_ids: tuple[str, ...]
    batches: AsyncGenerator[RuntimeBatch, None]


@runtime_checkable
class AttachSource(Protocol):
    """A runtime whose runs outlive their client (a coordinator server's)."""

    def attach(self, run_id: str) -> AbstractAsyncContextManager[AttachedRun]:
        """The run `run_id`, started by this client's identity, while the block lasts (it
        holds the connection; leaving it detaches, the run goes on); ConfigurationError when
        the coordinator does not know the run (or no longer keeps it) or refuses this
        client."""
        ...


RuntimeFactory = Callable[["Settings"], Runtime]


@functools.cache
def installed_runners() -> tuple[str, ...]:
    """Runner names in the `genja.runners` entry-point group, sorted."""
    return tuple(sorted({point.name for point in entry_points(group=RUNNERS_GROUP)}))


def check_runner(name: str) -> None:
    """ConfigurationError naming the installed runners when `name` is not one of them."""
    known = installed_runners()
    if name not in known:
        raise ConfigurationError(
            f"unknown runner {name!r}; installed runners: {', '.join(known) or 'none'} "
            f"(runners register in the {RUNNERS_GROUP!r} entry-point group)"
        )


def load_runner(name: str) -> RuntimeFactory:
    check_runner(name)
    (point,) = [p for p in entry_points(group=RUNNERS_GROUP) if p.name == name][:1]
    factory: RuntimeFactory = point.load()
    return factory
