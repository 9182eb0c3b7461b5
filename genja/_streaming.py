"""Turning a runtime's batches into run events and a result tree, with processors applied.

No I/O: batches in, events out, so the hook order documented in `genja._processors` is tested
without agents. `Genja` drives one `RunAssembler` per run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from genja import _processors
from genja._events import (
    HostFinished,
    HostStarted,
    NodeFinished,
    ProcessorFailed,
    RunEvent,
    RunFinished,
    RunStarted,
)
from genja._plan import PlannedTask, ResultTreeBuilder, RunPlan, RuntimeBatch, TaskPath
from genja._processors import Chain, HookFailure, ProcessorContext
from genja._result_tree import TaskResults
from genja.task._results import HostTaskResult, TaskFailureResult, TaskStatus


class RunAssembler:
    def __init__(
        self,
        plan: RunPlan,
        host_ids: Sequence[str],
        processors: Mapping[str, Any],
        *,
        host_events: bool = True,
    ) -> None:
        """`processors` holds an instance for every name the plan's tasks select (see
        `ProcessorRegistry.instantiate`). With `host_events=False` (a caller that only wants
        the tree) and no processor to call, results go straight into the tree: no per-host
        event objects are made."""
        self._plan = plan
        self._host_ids = tuple(host_ids)
        self._known = set(self._host_ids)
        self._nodes = list(plan.nodes())
        self._order = [node.path for node in self._nodes]
        self._next: dict[TaskPath, TaskPath | None] = {
            path: (self._order[i + 1] if i + 1 < len(self._order) else None)
            for i, path in enumerate(self._order)
        }
        self._names = {node.path: _names(plan, node.path) for node in self._nodes}
        self._chains: dict[TaskPath, Chain] = {
            node.path: [(name, processors[name]) for name in node.definition.processors]
            for node in self._nodes
        }
        self._builder = ResultTreeBuilder(plan, self._host_ids)
        self._started: set[str] = set()
        self._instance_started: set[tuple[str, TaskPath]] = set()
        self._remaining: dict[str, int] = {}
        self._failed: set[str] = set()
        self._events: list[RunEvent] = []
        self._tree_only = not host_events and not any(self._chains.values())

    # ---------------------------------------------------------------- the three phases

    def begin(self) -> list[RunEvent]:
        self._events.append(RunStarted(self._plan.root.name, self._host_ids, len(self._nodes)))
        for node in self._nodes:
            _processors.call_simple(
                self._chains[node.path], "on_task_start", self._ctx(node.path, None), self._report
            )
        return self._take()

    def feed(self, batch: RuntimeBatch) -> list[RunEvent]:
        if self._tree_only:
            known, builder = self._known, self._builder
            for outcome in batch.outcomes:
                if outcome.host_id in known and not builder.has(outcome.host_id, outcome.path):
                    builder.record(outcome.host_id, outcome.path, outcome.result)
            return []
        for host_id in batch.started_host_ids:
            self._start_host(host_id)
        for outcome in batch.outcomes:
            if outcome.host_id not in self._known or self._builder.has(
                outcome.host_id, outcome.path
            ):
                continue
            self._start_host(outcome.host_id)
            self._finish_node(outcome.host_id, outcome.path, outcome.result)
        return self._take()

    def finish(self) -> list[RunEvent]:
        tree = self._finish_task(self._plan.root)
        self._events.append(RunFinished(tree))
        return self._take()

    # ---------------------------------------------------------------- steps

    def _start_host(self, host_id: str) -> None:
        if host_id not in self._known or host_id in self._started:
            return
        self._started.add(host_id)
        self._remaining[host_id] = len(self._order)
        self._events.append(HostStarted(host_id))
        self._start_instance(host_id, self._order[0])

    def _start_instance(self, host_id: str, path: TaskPath) -> None:
        key = (host_id, path)
        if key in self._instance_started:
            return
        self._instance_started.add(key)
        chain = self._chains[path]
        if chain:
            ctx = self._ctx(path, host_id)
            _processors.call_simple(chain, "on_instance_start", ctx, self._report)

    def _finish_node(self, host_id: str, path: TaskPath, result: HostTaskResult) -> None:
        self._start_instance(host_id, path)
        chain = self._chains[path]
        if chain:
            ctx = self._ctx(path, host_id)
            result = _processors.call_instance_finish(chain, ctx, result, self._report)
        self._builder.record(host_id, path, result)
        self._events.append(NodeFinished(host_id, self._names[path][-1], self._names[path], result))
        if isinstance(result, TaskFailureResult):
            self._failed.add(host_id)
        self._remaining[host_id] -= 1
        if self._remaining[host_id] == 0:
            self._events.append(HostFinished(host_id, self._host_status(host_id)))
            return
        following = self._next[path]
        if following is not None and not self._builder.has(host_id, following):
            self._start_instance(host_id, following)

    def _host_status(self, host_id: str) -> TaskStatus:
        if host_id in self._failed:
            return TaskStatus.FAILED
        return self._builder.result(host_id, ()).status

    def _finish_task(self, node: PlannedTask) -> TaskResults:
        """Children first, so a parent's on_task_finish sees its children's final trees."""
        children = {child.name: self._finish_task(child) for child in node.children}
        results = TaskResults(
            task_name=node.name,
            hosts=self._builder.node_results(node.path),
            sub_tasks=children,
        )
        chain = self._chains[node.path]
        if not chain:
            return results
        return _processors.call_task_finish(
            chain, self._ctx(node.path, None), results, self._report
        )

    # ---------------------------------------------------------------- helpers

    def _ctx(self, path: TaskPath, host_id: str | None) -> ProcessorContext:
        names = self._names[path]
        return ProcessorContext(
            task_name=names[-1],
            parent_task_name=names[-2] if len(names) > 1 else None,
            depth=len(path),
            host_id=host_id,
            is_sub_task=bool(path),
            task_path=names,
            host_count=len(self._host_ids),
        )

    def _report(self, failure: HookFailure) -> None:
        self._events.append(
            ProcessorFailed(
                failure.processor,
                failure.hook,
                failure.ctx.task_name,
                failure.ctx.host_id,
                failure.error,
            )
        )

    def _take(self) -> list[RunEvent]:
        events, self._events = self._events, []
        return events


def _names(plan: RunPlan, path: TaskPath) -> tuple[str, ...]:
    return tuple(plan.node(path[:i]).name for i in range(len(path) + 1))
