"""`Genja`: the object users build from settings and run tasks with."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
)
from pathlib import Path
from types import TracebackType
from typing import Any

from genja._connection_plugins import check_connection_plugins
from genja._errors import ConfigurationError, EventLoopError, RunError
from genja._events import RunEvent, RunFinished
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
from genja._plan import RunPlan, plan_run
from genja._processors import ProcessorRegistry, default_registry
from genja._result_tree import TaskResults
from genja._run_options import TaskRunOptions, resolve_run_options
from genja._run_stream import BatchesUntilStopped, RunStream, StopSwitch
from genja._runtimes import (
    AttachSource,
    RunJob,
    Runtime,
    RuntimeBatch,
    check_runner,
    load_runner,
)
from genja._settings import RunnerOptions, Settings
from genja._streaming import RunAssembler

log = logging.getLogger("genja")


class _RuntimeHolder:
    """The runtime of a Genja and of the filtered copies made from it: the one given, or the
    one its runner makes on first use."""

    def __init__(self, settings: Settings, runtime: Runtime | None = None) -> None:
        self._settings = settings
        self._runtime = runtime

    @property
    def started(self) -> Runtime | None:
        return self._runtime

    def get(self) -> Runtime:
        if self._runtime is None:
            self._runtime = load_runner(self._settings.runner.plugin)(self._settings)
        return self._runtime

    async def close_connections(self, host_ids: Collection[str] | None) -> None:
        if self._runtime is not None:
            await self._runtime.close_connections(host_ids)

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
        runtime: Runtime | None = None,
    ) -> None:
        """`processors` maps names to processor classes (instantiated once per run) or
        instances, on top of the built-ins, the installed `genja.processors` entry points and
        the names given to `genja.register_processor` before this call.

        `runtime` runs the tasks instead of the one `runner.plugin` names (see
        `genja._runtimes.Runtime`); this Genja then closes it on `close()`."""
        self._inventory = inventory if inventory is not None else Inventory()
        self._settings = settings if settings is not None else Settings()
        self._processors: ProcessorRegistry = default_registry()
        for name, processor in (processors or {}).items():
            self._processors.register(name, processor)
        self._selection: Mapping[str, Host] = self._inventory.hosts
        self._holder = _RuntimeHolder(self._settings, runtime)
        configure_logging(self._settings)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_settings_file(cls, path: str | Path, **kwargs: Any) -> Genja:
        """Settings and inventory from files. The runner starts (agent processes begin to
        come up) while the inventory loads, so the first run waits less for them."""
        settings = Settings.from_file(path)
        return cls.from_settings(settings, **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Genja:
        """A Genja over the inventory `settings` name, its runner started while it loads.
        Settings built in code are validated first, as Genja 0.4's `from_settings` does."""
        settings.validate()
        configure_logging(settings)  # before loading, so the inventory's records are kept
        runtime = kwargs.pop("runtime", None) or load_runner(settings.runner.plugin)(settings)
        try:
            inventory = Inventory.from_settings(settings)
        except BaseException:
            runtime.close()
            raise
        return cls(inventory, settings, runtime=runtime, **kwargs)

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

    def with_runner(self, name: str, **options: Any) -> Genja:
        """This selection on another runner (`agents`, `threaded`, `serial`, or any installed
        in `genja.runners`), with `options` over this Genja's `runner.options`; as Nornir's
        `with_runner`. The new Genja has runtimes of its own (close it too); this one is
        unchanged."""
        check_runner(name)
        current = self._settings.runner.options
        merged = {f.name: getattr(current, f.name) for f in dataclasses.fields(current)}
        runner = dataclasses.replace(
            self._settings.runner,
            plugin=name,
            options=RunnerOptions.from_dict({**merged, **options}),
        )
        settings = dataclasses.replace(self._settings, runner=runner)
        clone = self._with_selection(self._selection)
        clone._settings = settings
        clone._holder = _RuntimeHolder(settings)
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
        """Make a processor (a class, instantiated per run, or an instance) available by name
        to this Genja (and the filtered copies made from it)."""
        self._processors.register(name, processor)

    def processor_names(self) -> list[str]:
        """Every processor name tasks can select here: registered, built in or installed."""
        return self._processors.names()

    # ---------------------------------------------------------------- running

    def run_task(
        self,
        task: object,
        max_depth: int | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        run_options: TaskRunOptions | None = None,
    ) -> TaskResults:
        """Run `task` (a @task class or instance) over the selected hosts and wait for it.

        `options` are merged over the task's declared options for this run (key by key at
        every depth; see `genja._task_options`): JSON values, checked before any host
        starts. A task instance runs with its own attributes too: `run_task(Backup(path=
        "/x"))` sends the instance, constructor arguments included, to the agents.
        `run_options` (Genja 0.4's form) may give the depth and ask for a dry run."""
        _require_no_running_loop("run_task", "run_task_async")
        return asyncio.run(
            self.run_task_async(task, max_depth, options=options, run_options=run_options)
        )

    def run_tasks(
        self,
        tasks: Iterable[object],
        max_depth: int | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        run_options: TaskRunOptions | None = None,
    ) -> list[TaskResults]:
        """Run several root tasks one after the other; their trees, in order. `options` go to
        each root task (every task's are checked before the first one starts)."""
        _require_no_running_loop("run_tasks", "run_tasks_async")
        return asyncio.run(
            self.run_tasks_async(tasks, max_depth, options=options, run_options=run_options)
        )

    async def run_tasks_async(
        self,
        tasks: Iterable[object],
        max_depth: int | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        run_options: TaskRunOptions | None = None,
    ) -> list[TaskResults]:
        plans = [self._plan(task, max_depth, options, run_options) for task in tasks]
        return [await self._execute(plan) for plan in plans]

    async def run_task_async(
        self,
        task: object,
        max_depth: int | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        run_options: TaskRunOptions | None = None,
    ) -> TaskResults:
        return await self._execute(self._plan(task, max_depth, options, run_options))

    def run_task_events(
        self,
        task: object,
        max_depth: int | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        run_options: TaskRunOptions | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Run `task` and yield its events as they happen (see `genja._events` for the order),
        ending with `RunFinished` and the result tree. Processors are resolved (and an unknown
        name raises ConfigurationError) before any host starts. Leaving the loop early
        cancels the hosts that have not finished."""
        return self._events(self._plan(task, max_depth, options, run_options))

    def stream_task(
        self,
        task: object,
        max_depth: int | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        run_options: TaskRunOptions | None = None,
    ) -> RunStream:
        """`run_task_events` for synchronous callers: an iterator of the same events, whose
        `stop()` ends the run early and still yields its tree (see `RunStream`)."""
        _require_no_running_loop("stream_task", "run_task_events")
        switch = StopSwitch()
        plan = self._plan(task, max_depth, options, run_options)
        return RunStream(_iterate(self._events(plan, stop=switch)), switch)

    def _plan(
        self,
        task: object,
        max_depth: int | None,
        options: Mapping[str, Any] | None,
        run_options: TaskRunOptions | None,
    ) -> RunPlan:
        depth, dry_run = resolve_run_options(
            max_depth, run_options, self._settings.runner.max_task_depth
        )
        plan = plan_run(task, depth, options, dry_run=dry_run)
        check_connection_plugins(plan, self._settings)
        return plan

    @property
    def runtime(self) -> Runtime | None:
        """The runtime this Genja runs on, once it exists (after the first run, or given)."""
        return self._holder.started

    async def _execute(self, plan: RunPlan) -> TaskResults:
        return await _tree(self._events(plan, host_events=False), f"run of task {plan.root.name!r}")

    async def _events(
        self, plan: RunPlan, *, host_events: bool = True, stop: StopSwitch | None = None
    ) -> AsyncGenerator[RunEvent, None]:
        """The one path every run takes: the sync, async and streaming entry points wrap it.
        `host_events=False` leaves out the per-host events nobody will read (processors still
        see every hook). Once `stop` trips, the runtime is left and unfinished hosts fail."""
        processors = self._processors.instantiate(
            {node.name: node.definition.processors for node in plan.nodes()}
        )
        hosts = list(self._selection.values())
        run_id = uuid.uuid4().hex
        assembler = RunAssembler(
            plan,
            [host.id for host in hosts],
            processors,
            host_events=host_events,
            run_id=run_id,
        )
        stream = host_events or bool(processors)
        job = RunJob(run_id, plan, hosts, stream=stream)
        opened = (lambda: self._holder.get().run(job)) if hosts else None
        async for event in _assembled(assembler, opened, stop):
            yield event

    # ---------------------------------------------------------------- attaching

    def attach(self, run_id: str) -> TaskResults:
        """Wait for the run `run_id` and return its whole tree: a run this client's identity
        started on the coordinator server of `runner.options.coordinator` (from a client
        that was killed, or lost its network), running or finished not long ago (the
        server's `--keep-runs`). The results received before are replayed, so the tree is
        complete. No processors run: they ran, if at all, in the client that started it.

        ConfigurationError when the server does not know the run (unknown, or kept no
        longer), when another client started it, or without a coordinator server."""
        _require_no_running_loop("attach", "attach_async")
        return asyncio.run(self.attach_async(run_id))

    async def attach_async(self, run_id: str) -> TaskResults:
        return await _tree(self._attached(run_id, host_events=False), f"run {run_id!r}")

    def attach_events(self, run_id: str) -> AsyncIterator[RunEvent]:
        """`attach` as `run_task_events` streams a run: `RunStarted`, the events of what was
        done before (replayed) and of the rest as it happens, then `RunFinished` with the
        tree. Leaving the loop early detaches: the run goes on."""
        return self._attached(run_id)

    def stream_attach(self, run_id: str) -> RunStream:
        """`attach_events` for synchronous callers; `stop()` detaches (the run goes on) and
        still yields the tree, its unfinished hosts failed saying so."""
        _require_no_running_loop("stream_attach", "attach_events")
        switch = StopSwitch("the client detached from the run (it goes on at the coordinator)")
        return RunStream(_iterate(self._attached(run_id, stop=switch)), switch)

    async def _attached(
        self, run_id: str, *, host_events: bool = True, stop: StopSwitch | None = None
    ) -> AsyncGenerator[RunEvent, None]:
        runtime = self._holder.get()
        if not isinstance(runtime, AttachSource):
            raise ConfigurationError(
                "attaching to a run needs a coordinator server (runner.options.coordinator): "
                "the runs of an embedded coordinator end with their client"
            )
        async with runtime.attach(run_id) as attached:
            assembler = RunAssembler(
                attached.plan, attached.host_ids, {}, host_events=host_events, run_id=run_id
            )
            async for event in _assembled(assembler, lambda: attached.batches, stop):
                yield event

    # ---------------------------------------------------------------- lifecycle

    def close_connections(self, host_ids: Collection[str] | None = None) -> None:
        """Close the connections held for the selected hosts (or for `host_ids`), keeping
        the agents up: the next task on them logs in anew (after a password change, or to
        free device sessions). A filtered Genja closes only its own hosts' connections."""
        _require_no_running_loop("close_connections", "close_connections_async")
        asyncio.run(self.close_connections_async(host_ids))

    async def close_connections_async(self, host_ids: Collection[str] | None = None) -> None:
        if host_ids is None and len(self._selection) != len(self._inventory.hosts):
            host_ids = list(self._selection)
        await self._holder.close_connections(host_ids)

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


async def _tree(events: AsyncGenerator[RunEvent, None], what: str) -> TaskResults:
    """The tree a run's events end with."""
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, RunFinished):
                return event.results
    raise RunError(f"the {what} ended without its results")


async def _assembled(
    assembler: RunAssembler,
    opened: Callable[[], AsyncGenerator[RuntimeBatch, None]] | None,
    stop: StopSwitch | None,
) -> AsyncGenerator[RunEvent, None]:
    """A run's events: the assembler's, fed the batches `opened` yields (None: no host).
    Once `stop` trips, the batches are left and unfinished hosts fail."""
    for event in assembler.begin():
        yield event
    if opened is not None:
        async with contextlib.aclosing(opened()) as batches:
            if stop is None:
                async for batch in batches:
                    for event in assembler.feed(batch):
                        yield event
            else:
                async with BatchesUntilStopped(batches, stop) as until:
                    while (received := await until.next()) is not None:
                        for event in assembler.feed(received):
                            yield event
    unfinished = stop.failure() if stop is not None and stop.reason is not None else None
    for event in assembler.finish(unfinished):
        yield event


def _iterate(events: AsyncGenerator[RunEvent, None]) -> Iterator[RunEvent]:
    """Drive an async iterator from synchronous code on a private event loop. Between two
    `next()` calls the loop is idle; the runtime keeps queueing batches meanwhile.

    However the consumer stops (break, exception, Ctrl-C while waiting for the next event), the
    step in flight is cancelled and the iterator closed, which cancels the run's unfinished
    hosts."""
    loop = asyncio.new_event_loop()
    step: asyncio.Task[RunEvent | None] | None = None
    try:
        while True:
            step = loop.create_task(_next(events))
            event = loop.run_until_complete(step)
            step = None
            if event is None:
                return
            yield event
    finally:
        try:
            if step is not None and not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(step)
            loop.run_until_complete(events.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


async def _next(events: AsyncGenerator[RunEvent, None]) -> RunEvent | None:
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


def _require_no_running_loop(name: str, async_name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise EventLoopError(
        f"Genja.{name}() was called from inside a running event loop; "
        f"use 'await genja.{async_name}(...)' there instead"
    )
