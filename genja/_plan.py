"""A run's task tree, pruned to its depth limit: what every runtime runs.

Pure logic: no I/O, no gRPC.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from genja._errors import TaskDefinitionError
from genja._task_options import options_for_run
from genja.task._definition import TaskDefinition, TaskInfo, definition_of

TaskPath = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """One node of the task tree as it will run. `target` is what travels to agents: the task
    class, or the task instance the user passed (its constructor arguments with it).
    `options` are the options the node runs with: the declared ones, with the run-time
    options merged over them for the root."""

    path: TaskPath
    definition: TaskDefinition
    target: object
    options: Any
    children: tuple[PlannedTask, ...]

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def depth(self) -> int:
        return len(self.path)

    def info(self) -> TaskInfo:
        """The TaskInfo the node's entry point receives."""
        info = TaskInfo.from_definition(self.definition)
        if self.options is self.definition.options:
            return info
        return dataclasses.replace(info, options=self.options)

    def walk(self) -> Iterator[PlannedTask]:
        """This node and its descendants, parents first, in declared order (the run order)."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True, slots=True)
class RunPlan:
    """`dry_run`: the run calls the tasks' dry-run entry points (see `TaskRunOptions`)."""

    root: PlannedTask
    max_depth: int
    dry_run: bool = False

    def nodes(self) -> Iterator[PlannedTask]:
        """Every node in run order: the order hosts run them in, which numbers them (a node's
        index in this order is how records name it)."""
        return self.root.walk()

    @property
    def node_count(self) -> int:
        return sum(1 for _ in self.root.walk())

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


def plan_run(
    task: object,
    max_depth: int,
    options: Mapping[str, Any] | None = None,
    *,
    dry_run: bool = False,
) -> RunPlan:
    """Plan `task` (a @task class or instance) with sub-tasks down to depth `max_depth`, the
    run-time `options` merged over the root's (see `genja._task_options`)."""
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0:
        raise ValueError(f"max_depth must be a whole number >= 0, got {max_depth!r}")
    definition = definition_of(task)
    if not isinstance(task, type) and not isinstance(task, definition.task_class):
        raise TaskDefinitionError(f"cannot run {task!r}")
    root_options = options_for_run(definition.name, definition.options, options)
    return RunPlan(_plan_node(task, definition, (), max_depth, root_options), max_depth, dry_run)


def _plan_node(
    target: object, definition: TaskDefinition, path: TaskPath, max_depth: int, options: Any
) -> PlannedTask:
    children: list[PlannedTask] = []
    if len(path) < max_depth:
        for index, sub in enumerate(definition.sub_tasks):
            declared = definition_of(sub)
            children.append(_plan_node(sub, declared, (*path, index), max_depth, declared.options))
    return PlannedTask(path, definition, target, options, tuple(children))
