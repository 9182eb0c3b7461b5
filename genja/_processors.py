"""Processors: lifecycle hooks that run in the client process as results arrive.

A processor is any object with some of these optional methods; each receives one frozen
`ProcessorContext`, so new context fields never break existing processors:

- `on_task_start(ctx)`: once per task node, before any host starts (`ctx.host_id` is None).
- `on_instance_start(ctx)`: once per (task node, host), when that host begins that node.
- `on_instance_finish(ctx, result)`: once per (task node, host) with its result; may return a
  replacement result (to add metadata, redact, decorate); `None` keeps the result.
- `on_task_finish(ctx, results)`: once per task node after every host finished, with that
  node's `TaskResults` (sub-tasks included); may return a replacement `TaskResults`.

The order is fixed:

1. `on_task_start` for every node of the tree, parents first, in declared order.
2. While the run goes, per host: `on_instance_start` for the root when the agent reports that
   the host started, then `on_instance_finish` for the root, then `on_instance_start` and
   `on_instance_finish` for each sub-task in run order (an agent runs a host's nodes back to
   back, so a node starts when the previous one finished). Hosts interleave.
3. `on_task_finish` for every node, children first (so a parent sees its children's final
   results), once every host is finished.

At each point, a task's processors run in the order the task lists them; a replacement made by
one is what the next one sees. A hook that raises is logged and reported with the processor's
name (a `ProcessorFailed` event, and a warning on the host's result when it has warnings); the
result it was given is kept and the run goes on.

Hooks run on the thread that consumes the run's events. Results queue up in the client while a
hook is slow: agents never wait for processors.

Where names come from (first match wins): names registered in code (`Genja(processors=...)`,
`Genja.register_processor`, then `genja.register_processor` made before the Genja was built), the
built-in processors (`audit`, `jsonl`, `progress`), then the `genja.processors` entry-point group
of installed distributions. A class is instantiated once per run (fresh state each run); any
other object is used as it is.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from genja._errors import ConfigurationError
from genja._result_tree import TaskResults
from genja.task._results import RESULT_TYPES, HostTaskResult, TaskSkipResult

log = logging.getLogger("genja.processors")

ENTRY_POINT_GROUP = "genja.processors"
HOOKS = ("on_task_start", "on_instance_start", "on_instance_finish", "on_task_finish")


@dataclass(frozen=True, slots=True)
class ProcessorContext:
    """Where a hook is called: the task node and, for instance hooks, the host.

    `task_path` names the node from the root down; `host_count` is the number of selected hosts
    in the run.
    """

    task_name: str
    parent_task_name: str | None
    depth: int
    host_id: str | None
    is_sub_task: bool
    task_path: tuple[str, ...] = ()
    host_count: int = 0


class Processor(Protocol):
    """The shape of a processor, for documentation: every hook is optional, so a processor
    implements only the ones it needs (see the module docstring for their order)."""


def _builtins() -> dict[str, Any]:
    from genja._builtin_processors import AuditProcessor, JsonlProcessor, ProgressProcessor

    return {"audit": AuditProcessor, "jsonl": JsonlProcessor, "progress": ProgressProcessor}


def _check(name: object, processor: object) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a processor name must be a non-empty string, got {name!r}")
    if not any(callable(getattr(processor, hook, None)) for hook in HOOKS):
        raise ConfigurationError(
            f"processor {name!r}: {processor!r} has none of the hooks {', '.join(HOOKS)}"
        )


class ProcessorRegistry:
    """Processors by name: what one `Genja` can select.

    Each `Genja` holds its own registry, a copy of the defaults taken when it is built, so
    registering on one never changes another.
    """

    def __init__(self, entries: Mapping[str, Any] | None = None) -> None:
        self._entries: dict[str, Any] = {}
        for name, processor in (entries or {}).items():
            self.register(name, processor)

    def register(self, name: str, processor: Any) -> None:
        """Make `processor` (a class, instantiated per run, or an instance) selectable by
        `name`; a name registered again is replaced."""
        _check(name, processor)
        self._entries[name] = processor

    def copy(self) -> ProcessorRegistry:
        clone = ProcessorRegistry()
        clone._entries = dict(self._entries)
        return clone

    def names(self) -> list[str]:
        """Every selectable name: registered in code, built in, or from installed packages."""
        return sorted({*self._entries, *_builtins(), *(ep.name for ep in _entry_points())})

    def lookup(self, name: str) -> Any | None:
        if name in self._entries:
            return self._entries[name]
        builtins = _builtins()
        if name in builtins:
            return builtins[name]
        for entry_point in _entry_points():
            if entry_point.name == name:
                return _load(entry_point)
        return None

    def instantiate(self, requested: Mapping[str, Iterable[str]]) -> dict[str, Any]:
        """One instance per processor name the tasks request. `requested` maps task names to
        processor names; an unknown name is a ConfigurationError naming the task, the
        processor and the names that exist."""
        instances: dict[str, Any] = {}
        for task_name, names in requested.items():
            for name in names:
                if name in instances:
                    continue
                value = self.lookup(name)
                if value is None:
                    known = self.names()
                    close = difflib.get_close_matches(name, known, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise ConfigurationError(
                        f"task {task_name!r} asks for processor {name!r}, which is not "
                        f"registered{hint} (known processors: {', '.join(known) or 'none'})"
                    )
                instances[name] = _instantiate(task_name, name, value)
        return instances


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    """Installed `genja.processors` entry points, read afresh so packages installed while the
    process runs are seen."""
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _load(entry_point: importlib.metadata.EntryPoint) -> Any:
    dist = entry_point.dist.name if entry_point.dist is not None else "an installed package"
    try:
        value = entry_point.load()
    except Exception as error:
        raise ConfigurationError(
            f"processor {entry_point.name!r} (entry point {entry_point.value!r} of {dist}) "
            f"cannot be loaded: {type(error).__name__}: {error}"
        ) from error
    _check(entry_point.name, value)
    return value


def _instantiate(task_name: str, name: str, value: Any) -> Any:
    if not isinstance(value, type):
        return value
    try:
        return value()
    except Exception as error:
        raise ConfigurationError(
            f"processor {name!r} (asked for by task {task_name!r}) could not be created: "
            f"{type(error).__name__}: {error}"
        ) from error


# The defaults that each new Genja copies; see `register_processor`.
_defaults = ProcessorRegistry()


def register_processor(name: str, processor: Any) -> None:
    """Make a processor selectable by name in every `Genja` built after this call.

    Genja objects copy these defaults when they are built, so a registration never changes a
    Genja that already exists; use `Genja.register_processor` or `Genja(processors=...)` to
    register on one Genja only.
    """
    _defaults.register(name, processor)


def default_registry() -> ProcessorRegistry:
    """A copy of the defaults registered with `register_processor`."""
    return _defaults.copy()


# ---------------------------------------------------------------- calling hooks


@dataclass(frozen=True, slots=True)
class HookFailure:
    processor: str
    hook: str
    ctx: ProcessorContext
    error: str


Chain = list[tuple[str, Any]]
Report = Callable[[HookFailure], None]


def _call(
    name: str, hook_name: str, hook: Any, ctx: ProcessorContext, report: Report, *args: Any
) -> Any:
    try:
        return hook(ctx, *args)
    except Exception as error:
        log.exception(
            "processor %r %s failed for task %r%s",
            name,
            hook_name,
            ctx.task_name,
            f" host {ctx.host_id!r}" if ctx.host_id is not None else "",
        )
        report(HookFailure(name, hook_name, ctx, f"{type(error).__name__}: {error}"))
        return None


def call_simple(chain: Chain, hook_name: str, ctx: ProcessorContext, report: Report) -> None:
    """A hook that returns nothing (`on_task_start`, `on_instance_start`)."""
    for name, processor in chain:
        hook = getattr(processor, hook_name, None)
        if hook is not None:
            _call(name, hook_name, hook, ctx, report)


def call_instance_finish(
    chain: Chain, ctx: ProcessorContext, result: HostTaskResult, report: Report
) -> HostTaskResult:
    for name, processor in chain:
        hook = getattr(processor, "on_instance_finish", None)
        if hook is None:
            continue
        failures: list[HookFailure] = []
        replacement = _call(name, "on_instance_finish", hook, ctx, failures.append, result)
        for failure in failures:
            report(failure)
            result = _with_warning(result, failure)
        if replacement is None:
            continue
        if not isinstance(replacement, RESULT_TYPES):
            failure = HookFailure(
                name,
                "on_instance_finish",
                ctx,
                f"returned {type(replacement).__name__}, not a task result; result kept",
            )
            log.error("processor %r on_instance_finish %s", name, failure.error)
            report(failure)
            result = _with_warning(result, failure)
            continue
        result = replacement
    return result


def call_task_finish(
    chain: Chain, ctx: ProcessorContext, results: TaskResults, report: Report
) -> TaskResults:
    for name, processor in chain:
        hook = getattr(processor, "on_task_finish", None)
        if hook is None:
            continue
        replacement = _call(name, "on_task_finish", hook, ctx, report, results)
        if replacement is None:
            continue
        if not isinstance(replacement, TaskResults):
            failure = HookFailure(
                name,
                "on_task_finish",
                ctx,
                f"returned {type(replacement).__name__}, not TaskResults; results kept",
            )
            log.error("processor %r on_task_finish %s", name, failure.error)
            report(failure)
            continue
        results = replacement
    return results


def _with_warning(result: HostTaskResult, failure: HookFailure) -> HostTaskResult:
    if isinstance(result, TaskSkipResult):
        return result
    warning = f"processor {failure.processor!r} {failure.hook} failed: {failure.error}"
    return dataclasses.replace(result, warnings=(*result.warnings, warning))
