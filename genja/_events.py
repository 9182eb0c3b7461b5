"""Events of a run, in the order they happen, for callers that want results as they arrive.

`Genja.run_task_events()` (async) and `Genja.stream_task()` (sync) yield them; `run_task()` is the
same stream with only its last event kept. One run yields, in this order:

- `RunStarted` once, after processors are resolved and before any host starts;
- per host, `HostStarted` before any of its `NodeFinished`, one `NodeFinished` per task node
  (results already passed through the task's processors), then `HostFinished`;
- `ProcessorFailed` whenever a processor hook raises (the run goes on);
- `RunFinished` last, with the whole result tree.

Events of different hosts interleave as the agents report them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from genja._result_tree import TaskResults
from genja.task._results import HostTaskResult, TaskStatus


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The run is about to start; `host_ids` are the selected hosts, in selection order.
    `run_id` names the run (the tree's `run_id`, the coordinator's logs, `genja attach`);
    `dry_run`: the tasks' dry-run entry points run."""

    task_name: str
    host_ids: tuple[str, ...]
    node_count: int
    run_id: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class HostStarted:
    """An agent began this host's task tree (or, for a host whose agent was lost before it
    began, the first news of the host arrived)."""

    host_id: str


@dataclass(frozen=True, slots=True)
class NodeFinished:
    """One host's result at one task node. `task_path` names the node from the root down."""

    host_id: str
    task_name: str
    task_path: tuple[str, ...]
    result: HostTaskResult

    @property
    def depth(self) -> int:
        return len(self.task_path) - 1


@dataclass(frozen=True, slots=True)
class HostFinished:
    """Every node of this host's tree has a result. `status` is the host's outcome over its
    tree: failed if it failed anywhere, otherwise what the root task said."""

    host_id: str
    status: TaskStatus


@dataclass(frozen=True, slots=True)
class ProcessorFailed:
    """A processor hook raised; the result it was given was kept. `host_id` is None for the
    task-level hooks. `error` is "ExceptionType: message"."""

    processor: str
    hook: str
    task_name: str
    host_id: str | None
    error: str


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run is over; `results` is the tree `run_task()` returns."""

    results: TaskResults


RunEvent: TypeAlias = (
    RunStarted | HostStarted | NodeFinished | HostFinished | ProcessorFailed | RunFinished
)
