"""A run's task tree, pruned to its depth limit, and the assembly of its results.

Pure logic shared by the embedded and the remote coordinator paths: no I/O, no gRPC.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from genja._errors import TaskDefinitionError
from genja._result_tree import TaskResults
from genja.task._definition import TaskDefinition, definition_of
from genja.task._results import HostTaskResult

TaskPath = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """One node of the task tree as it will run. `target` is what travels to agents: the task
    class, or the task instance the user passed."""

    path: TaskPath
    definition: TaskDefinition
    target: object
    children: tuple[PlannedTask, ...]

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def depth(self) -> int:
        return len(self.path)

    def walk(self) -> Iterator[PlannedTask]:
        """This node and its descendants, parents first, in declared order (the run order)."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True, slots=True)
class RunPlan:
    root: PlannedTask
    max_depth: int

    def nodes(self) -> Iterator[PlannedTask]:
        return self.root.walk()

    def paths(self) -> list[TaskPath]:
        return [node.path for node in self.nodes()]

    def processor_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for node in self.nodes():
            seen.update(dict.fromkeys(node.definition.processors))
        return list(seen)

    def connection_plugin_names(self) -> list[str]:
        names = (node.definition.connection_plugin_name for node in self.nodes())
        return list(dict.fromkeys(name for name in names if name))

    def node(self, path: TaskPath) -> PlannedTask:
        node = self.root
        for index in path:
            node = node.children[index]
        return node


def plan_run(task: object, max_depth: int) -> RunPlan:
    """Plan `task` (a @task class or instance) with sub-tasks down to depth `max_depth`."""
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0:
        raise ValueError(f"max_depth must be a whole number >= 0, got {max_depth!r}")
    definition = definition_of(task)
    if not isinstance(task, type) and not isinstance(task, definition.task_class):
        raise TaskDefinitionError(f"cannot run {task!r}")
    return RunPlan(_plan_node(task, definition, (), max_depth), max_depth)


def _plan_node(
    target: object, definition: TaskDefinition, path: TaskPath, max_depth: int
) -> PlannedTask:
    children: tuple[PlannedTask, ...] = ()
    if len(path) < max_depth:
        children = tuple(
            _plan_node(sub, definition_of(sub), (*path, index), max_depth)
            for index, sub in enumerate(definition.sub_tasks)
        )
    return PlannedTask(path, definition, target, children)


class ResultTreeBuilder:
    """Collects (host, task path, result) triples in any order and builds the TaskResults tree
    with hosts in selection order."""

    def __init__(self, plan: RunPlan, host_ids: Sequence[str]) -> None:
        self._plan = plan
        self._host_order = list(host_ids)
        self._results: dict[TaskPath, dict[str, HostTaskResult]] = {p: {} for p in plan.paths()}

    def record(self, host_id: str, path: TaskPath, result: HostTaskResult) -> None:
        self._results[path][host_id] = result

    def has(self, host_id: str, path: TaskPath) -> bool:
        return host_id in self._results[path]

    def result(self, host_id: str, path: TaskPath) -> HostTaskResult:
        return self._results[path][host_id]

    def node_results(self, path: TaskPath) -> dict[str, HostTaskResult]:
        """The results recorded at one node, hosts in selection order."""
        recorded = self._results[path]
        return {h: recorded[h] for h in self._host_order if h in recorded}

    def missing(self, host_ids: Iterable[str]) -> Iterator[tuple[str, TaskPath]]:
        """(host, path) pairs among `host_ids` that have no result yet, in run order."""
        for host_id in host_ids:
            for path, results in self._results.items():
                if host_id not in results:
                    yield host_id, path

    def build(self) -> TaskResults:
        return self._build(self._plan.root)

    def _build(self, node: PlannedTask) -> TaskResults:
        recorded = self._results[node.path]
        hosts = {h: recorded[h] for h in self._host_order if h in recorded}
        return TaskResults(
            task_name=node.name,
            hosts=hosts,
            sub_tasks={child.name: self._build(child) for child in node.children},
        )


@dataclass(frozen=True, slots=True)
class NodeOutcome:
    """One host's result at one node of the task tree, as the runtime reports it."""

    host_id: str
    path: TaskPath
    result: HostTaskResult


@dataclass(frozen=True, slots=True)
class RuntimeBatch:
    """What a runtime reports at once: hosts an agent began working on, and node outcomes.

    A host's id appears in `started_host_ids` no later than the batch with its first outcome;
    a host whose agent was lost before it began may never appear there.
    """

    started_host_ids: tuple[str, ...] = ()
    outcomes: tuple[NodeOutcome, ...] = ()
