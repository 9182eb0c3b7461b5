"""Processors: lifecycle hooks that run in the client process as results arrive.

A processor is any object with some of these optional methods; each receives one frozen
`ProcessorContext`, so new context fields never break existing processors:

- `on_task_start(ctx)`: once per task node, before any host runs (ctx.host_id is None).
- `on_instance_finish(ctx, result)`: per (task node, host) result; may return a replacement.
- `on_task_finish(ctx, results)`: once per task node, with that node's `TaskResults`.

Tasks select processors by name (`@task(processors=["audit"])`); hooks run only for the tasks
that name them, in the order the names are listed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from genja._errors import ConfigurationError
from genja.task._results import RESULT_TYPES, HostTaskResult

log = logging.getLogger("genja.processors")


@dataclass(frozen=True, slots=True)
class ProcessorContext:
    task_name: str
    parent_task_name: str | None
    depth: int
    host_id: str | None
    is_sub_task: bool


class Processor(Protocol):
    """The shape of a processor; every method is optional."""


def instantiate(name: str, value: Any) -> Any:
    return value() if isinstance(value, type) else value


def resolve_processors(
    available: Mapping[str, Any], requested: Mapping[str, tuple[str, ...]]
) -> dict[str, Any]:
    """Instances for every processor name the tasks request; ConfigurationError naming the task
    and the processor for an unknown name. `requested` maps task names to processor names."""
    instances: dict[str, Any] = {}
    for task_name, names in requested.items():
        for name in names:
            if name in instances:
                continue
            if name not in available:
                known = ", ".join(sorted(available)) or "none registered"
                raise ConfigurationError(
                    f"task {task_name!r} asks for processor {name!r}, which is not registered "
                    f"(registered: {known})"
                )
            instances[name] = instantiate(name, available[name])
    return instances


def apply_instance_finish(
    processors: list[tuple[str, Any]], ctx: ProcessorContext, result: HostTaskResult
) -> HostTaskResult:
    for name, processor in processors:
        hook = getattr(processor, "on_instance_finish", None)
        if hook is None:
            continue
        try:
            replacement = hook(ctx, result)
        except Exception:
            log.exception(
                "processor %r on_instance_finish failed for task %r host %r; result kept",
                name,
                ctx.task_name,
                ctx.host_id,
            )
            continue
        if replacement is None:
            continue
        if not isinstance(replacement, RESULT_TYPES):
            log.error(
                "processor %r on_instance_finish returned %s, not a task result; result kept",
                name,
                type(replacement).__name__,
            )
            continue
        result = replacement
    return result
