"""Turning a runtime's batches into run events and a result tree, with processors applied.

No I/O: batches in, events out, so the hook order documented in `genja._processors` is tested
without agents. `Genja` drives one `RunAssembler` per run.

When nobody watches the run as it goes (no processor, no event consumer), records go into the
`ResultStore` as they came and nothing is decoded: the tree `finish` returns reads them lazily.
Otherwise each record is decoded when it arrives, each node passes through its processors and
yields its events, and what the processors made of the results is what the tree holds.
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
from genja._plan import PlannedTask, RunPlan
from genja._processors import Chain, HookFailure, ProcessorContext
from genja._records import FAILED, DecodedRecord, HostRecord, failure_record, with_metadata
from genja._result_tree import NodeHosts, ResultStore, TaskResults
from genja._runtimes import RuntimeBatch
from genja.task._results import HostTaskResult, TaskFailureKind, TaskFailureResult, TaskStatus

_UNACCOUNTED = TaskFailureResult(
    message="the runtime ended the run without a result for this host and task",
    kind=TaskFailureKind.INTERNAL,
)


class RunAssembler:
    def __init__(
        self,
        plan: RunPlan,
        host_ids: Sequence[str],
        processors: Mapping[str, Any],
        *,
        host_events: bool = True,
        run_id: str | None = None,
    ) -> None:
        """`processors` holds an instance for every name the plan's tasks select (see
        `ProcessorRegistry.instantiate`). With `host_events=False` (a caller that only wants
        the tree) and no processor to call, records go straight into the store: no per-host
        event, no decoding."""
        self._plan = plan
        self._run_id = run_id
        self._host_ids = tuple(host_ids)
        self._known = set(self._host_ids)
        self._nodes = list(plan.nodes())
        self._index = {node.path: index for index, node in enumerate(self._nodes)}
        self._names = [_names(plan, node.path) for node in self._nodes]
        self._chains: list[Chain] = [
            [(name, processors[name]) for name in node.definition.processors]
            for node in self._nodes
        ]
        self._store = ResultStore(self._host_ids, len(self._nodes))
        self._started: set[str] = set()
        self._instance_started: set[tuple[str, int]] = set()
        self._failed: set[str] = set()
        self._events: list[RunEvent] = []
        self._tree_only = not host_events and not any(self._chains)

    @property
    def store(self) -> ResultStore:
        return self._store

    # ---------------------------------------------------------------- the three phases

    def begin(self) -> list[RunEvent]:
        self._events.append(
            RunStarted(
                self._plan.root.name,
                self._host_ids,
                len(self._nodes),
                self._run_id,
                self._plan.dry_run,
            )
        )
        for index in range(len(self._nodes)):
            _processors.call_simple(
                self._chains[index], "on_task_start", self._ctx(index, None), self._report
            )
        return self._take()

    def feed(self, batch: RuntimeBatch) -> list[RunEvent]:
        if self._tree_only:
            known, store = self._known, self._store
            for record in batch.records:
                if record.host_id in known:
                    store.add(record)
            return []
        for host_id in batch.started_host_ids:
            self._start_host(host_id)
        for record in batch.records:
            if record.host_id in self._known and self._store.accepts(record):
                self._take_record(record)
        return self._take()

    def finish(self, unfinished: TaskFailureResult | None = None) -> list[RunEvent]:
        """The tree; hosts the runtime left without results fail with `unfinished` (the run
        was stopped), or saying the runtime left them so."""
        for host_id in self._host_ids:
            if not self._store.is_done(host_id):
                covered = self._store.covered(host_id)
                failure = unfinished or _UNACCOUNTED
                record = failure_record(host_id, covered, len(self._nodes), failure)
                if self._tree_only:
                    self._store.add(record)
                else:
                    self._take_record(record)
        tree = self._finish_task(self._plan.root)
        self._events.append(RunFinished(tree))
        return self._take()

    # ---------------------------------------------------------------- steps

    def _take_record(self, record: HostRecord) -> None:
        host_id = record.host_id
        self._start_host(host_id)
        final: list[HostTaskResult] = []
        for offset, result in enumerate(record.results()):
            final.append(self._finish_node(host_id, record.first_node + offset, result))
        self._store.add(DecodedRecord(host_id, record.first_node, final, record.done))
        if self._store.is_done(host_id):
            self._events.append(HostFinished(host_id, self._host_status(host_id)))
        elif record.end_node < len(self._nodes):
            self._start_instance(host_id, record.end_node)

    def _start_host(self, host_id: str) -> None:
        if host_id not in self._known or host_id in self._started:
            return
        self._started.add(host_id)
        self._events.append(HostStarted(host_id))
        self._start_instance(host_id, 0)

    def _start_instance(self, host_id: str, index: int) -> None:
        key = (host_id, index)
        if key in self._instance_started:
            return
        self._instance_started.add(key)
        chain = self._chains[index]
        if chain:
            ctx = self._ctx(index, host_id)
            _processors.call_simple(chain, "on_instance_start", ctx, self._report)

    def _finish_node(self, host_id: str, index: int, result: HostTaskResult) -> HostTaskResult:
        """The node's result after its processors; the events of its end."""
        self._start_instance(host_id, index)
        chain = self._chains[index]
        if chain:
            replaced = _processors.call_instance_finish(
                chain, self._ctx(index, host_id), result, self._report
            )
            if replaced is not result and replaced.execution_metadata is None:
                replaced = with_metadata(replaced, result.execution_metadata)
            result = replaced
        names = self._names[index]
        self._events.append(NodeFinished(host_id, names[-1], names, result))
        if isinstance(result, TaskFailureResult):
            self._failed.add(host_id)
        return result

    def _host_status(self, host_id: str) -> TaskStatus:
        if host_id in self._failed or self._store.status(host_id, 0) == FAILED:
            return TaskStatus.FAILED
        return self._store.result(host_id, 0).status

    def _finish_task(self, node: PlannedTask) -> TaskResults:
        """Children first, so a parent's on_task_finish sees its children's final trees."""
        children = {child.name: self._finish_task(child) for child in node.children}
        index = self._index[node.path]
        results = TaskResults(
            task_name=node.name,
            hosts=NodeHosts(self._store, index),
            sub_tasks=children,
            run_id=self._run_id if index == 0 else None,
        )
        chain = self._chains[index]
        if not chain:
            return results
        return _processors.call_task_finish(chain, self._ctx(index, None), results, self._report)

    # ---------------------------------------------------------------- helpers

    def _ctx(self, index: int, host_id: str | None) -> ProcessorContext:
        names = self._names[index]
        return ProcessorContext(
            task_name=names[-1],
            parent_task_name=names[-2] if len(names) > 1 else None,
            depth=len(names) - 1,
            host_id=host_id,
            is_sub_task=len(names) > 1,
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


def _names(plan: RunPlan, path: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(plan.node(path[:i]).name for i in range(len(path) + 1))
