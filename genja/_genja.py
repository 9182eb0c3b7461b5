"""`Genja`: the object users build from settings and run tasks with."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from genja import _processors
from genja._errors import EventLoopError
from genja._filter import (
    F,
    HasKey,
    HostFilter,
    InGroup,
    KeyMatches,
    all_of,
    as_filter,
    compile_regex,
)
from genja._host import Host
from genja._inventory import Inventory
from genja._logging import configure_logging
from genja._plan import NodeOutcome, ResultTreeBuilder, RunPlan, plan_run
from genja._result_tree import TaskResults
from genja._settings import Settings
from genja.task._results import HostTaskResult

log = logging.getLogger("genja")


class Runtime(Protocol):
    """What runs plans: the embedded coordinator or a client of a remote one (genja_rpc)."""

    def run(self, plan: RunPlan, hosts: Sequence[Host]) -> Any:
        """An async iterator of lists of NodeOutcome, ending when every host is finished."""

    def close(self) -> None: ...


class _RuntimeHolder:
    """Starts the runtime on first use; shared by a Genja and the filtered copies made from it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._runtime: Runtime | None = None

    def get(self) -> Runtime:
        if self._runtime is None:
            from genja_rpc import open_runtime

            self._runtime = open_runtime(self._settings)
        return self._runtime

    def close(self) -> None:
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()


class Genja:
    """An inventory selection plus the machinery to run tasks over it.

    The agent processes start on the first run and stay up (holding their connections) until
    `close()`, the end of a `with` block, or interpreter exit.
    """

    def __init__(
        self,
        inventory: Inventory | None = None,
        settings: Settings | None = None,
        *,
        processors: Mapping[str, Any] | None = None,
    ) -> None:
        self._inventory = inventory if inventory is not None else Inventory()
        self._settings = settings if settings is not None else Settings()
        self._processors: dict[str, Any] = dict(processors or {})
        self._selection: Mapping[str, Host] = self._inventory.hosts
        self._holder = _RuntimeHolder(self._settings)
        configure_logging(self._settings)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_settings_file(cls, path: str | Path, **kwargs: Any) -> Genja:
        settings = Settings.from_file(path)
        configure_logging(settings)  # before loading, so the inventory's records are kept
        return cls(Inventory.from_settings(settings), settings, **kwargs)

    @classmethod
    def from_hosts(
        cls,
        hosts: Mapping[str, Mapping[str, Any] | Host] | Iterable[Host],
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> Genja:
        """A Genja over an in-memory inventory: Host objects, or host ids mapped to fields."""
        return cls(Inventory.from_hosts(hosts), settings, **kwargs)

    def _with_selection(self, selection: Mapping[str, Host]) -> Genja:
        clone = object.__new__(Genja)
        clone.__dict__.update(self.__dict__)
        clone._selection = selection
        return clone

    # ---------------------------------------------------------------- views

    @property
    def inventory(self) -> Inventory:
        return self._inventory

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def hosts(self) -> Mapping[str, Host]:
        """The selected hosts, by id."""
        return self._selection

    def host_ids(self) -> list[str]:
        return list(self._selection)

    # ---------------------------------------------------------------- filtering
    # Each returns a new Genja over fewer hosts, sharing this one's agents; this one is unchanged.

    def filter(self, *filters: HostFilter | Callable[[Host], bool], **lookups: Any) -> Genja:
        """Hosts matching every filter given: `F` objects (combined with `&`, `|`, `~`), any
        `host -> bool` callable, and keyword lookups as `F` reads them. `filter_func=` is taken
        as a callable, as Nornir's `filter` does."""
        checks = [as_filter(item) for item in filters]
        function = lookups.pop("filter_func", None)
        if function is not None:
            checks.append(as_filter(function))
        if lookups:
            checks.append(F(**lookups))
        return self._narrow(all_of(checks))

    def filter_by_key(self, key: str) -> Genja:
        """Hosts that have `key`: a plain key is looked for among the host's fields and at any
        depth of `data`; a dotted path (`data.site.name`) names one place."""
        return self._narrow(HasKey(key))

    def filter_by_key_value(self, key: str, regex: str) -> Genja:
        """Hosts where a value at `key` (found as `filter_by_key` finds it) matches `regex`
        (searched, not anchored). A bad regex is a ConfigurationError."""
        where = f"filter_by_key_value({key!r}, {regex!r})"
        return self._narrow(KeyMatches(key, compile_regex(regex, where)))

    def filter_by_group(self, group: str, *, inherited: bool = True) -> Genja:
        """Members of `group`, directly or (by default) through group parents."""
        return self._narrow(InGroup(group, inherited))

    def _narrow(self, check: HostFilter) -> Genja:
        return self._with_selection(
            {host_id: host for host_id, host in self._selection.items() if check(host)}
        )

    def register_processor(self, name: str, processor: Any) -> None:
        """Make a processor (a class, instantiated per run, or an instance) available by name."""
        self._processors[name] = processor

    # ---------------------------------------------------------------- running

    def run_task(self, task: object, max_depth: int | None = None) -> TaskResults:
        """Run `task` (a @task class or instance) over the selected hosts and wait for it."""
        _require_no_running_loop("run_task", "run_task_async")
        return asyncio.run(self.run_task_async(task, max_depth))

    def run_tasks(self, tasks: Iterable[object], max_depth: int | None = None) -> list[TaskResults]:
        """Run several root tasks one after the other; their trees, in order."""
        _require_no_running_loop("run_tasks", "run_tasks_async")
        return asyncio.run(self.run_tasks_async(tasks, max_depth))

    async def run_tasks_async(
        self, tasks: Iterable[object], max_depth: int | None = None
    ) -> list[TaskResults]:
        plans = [self._plan(task, max_depth) for task in tasks]
        return [await self._execute(plan) for plan in plans]

    async def run_task_async(self, task: object, max_depth: int | None = None) -> TaskResults:
        return await self._execute(self._plan(task, max_depth))

    def _plan(self, task: object, max_depth: int | None) -> RunPlan:
        depth = self._settings.runner.max_task_depth if max_depth is None else max_depth
        return plan_run(task, depth)

    async def _execute(self, plan: RunPlan) -> TaskResults:
        processors = _processors.resolve_processors(
            self._processors, {node.name: node.definition.processors for node in plan.nodes()}
        )
        hooks = {
            node.path: [(name, processors[name]) for name in node.definition.processors]
            for node in plan.nodes()
        }
        for node in plan.nodes():
            for _, processor in hooks[node.path]:
                hook = getattr(processor, "on_task_start", None)
                if hook is not None:
                    hook(_context(plan, node.path, None))
        hosts = list(self._selection.values())
        builder = ResultTreeBuilder(plan, [host.id for host in hosts])
        if hosts:
            async for batch in self._holder.get().run(plan, hosts):
                for outcome in batch:
                    builder.record(
                        outcome.host_id, outcome.path, self._decorate(plan, hooks, outcome)
                    )
        tree = builder.build()
        for node in plan.nodes():
            for _, processor in hooks[node.path]:
                hook = getattr(processor, "on_task_finish", None)
                if hook is not None:
                    hook(_context(plan, node.path, None), tree.sub_task(*_names(plan, node.path)))
        return tree

    def _decorate(
        self,
        plan: RunPlan,
        hooks: Mapping[tuple[int, ...], list[tuple[str, Any]]],
        outcome: NodeOutcome,
    ) -> HostTaskResult:
        chain = hooks[outcome.path]
        if not chain:
            return outcome.result
        ctx = _context(plan, outcome.path, outcome.host_id)
        return _processors.apply_instance_finish(chain, ctx, outcome.result)

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Stop the agents and close every connection they hold. Safe to call twice."""
        self._holder.close()

    def __enter__(self) -> Genja:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Genja(hosts={len(self._selection)} of {len(self._inventory.hosts)})"


def _names(plan: RunPlan, path: tuple[int, ...]) -> list[str]:
    return [plan.node(path[:i]).name for i in range(1, len(path) + 1)]


def _context(
    plan: RunPlan, path: tuple[int, ...], host_id: str | None
) -> _processors.ProcessorContext:
    node = plan.node(path)
    parent = plan.node(path[:-1]).name if path else None
    return _processors.ProcessorContext(
        task_name=node.name,
        parent_task_name=parent,
        depth=len(path),
        host_id=host_id,
        is_sub_task=bool(path),
    )


def _require_no_running_loop(name: str, async_name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise EventLoopError(
        f"Genja.{name}() was called from inside a running event loop; "
        f"use 'await genja.{async_name}(...)' there instead"
    )
