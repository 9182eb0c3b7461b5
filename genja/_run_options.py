"""`TaskRunOptions`: how one run goes, as opposed to what the task declares (its `options`).

    genja.run_task(ConfigureInterface, run_options=TaskRunOptions(max_depth=1, dry_run=True))

A dry run calls each task's `dry_run` (or `dry_run_async`) instead of `start`: the task reports
what it would change (`changed`, `diff`, `summary`) and changes nothing. Its connection is
opened as usual (so inventory, credentials and reachability are checked; a login may still
leave traces on the device, such as an audit record). Idempotency checks and session
verification do not run in a dry run, and a task that does not declare
`supports_dry_run=True` is not called: its host fails with an `unsupported` failure. Every
result of a dry run says so in its execution metadata (`dry_run`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class TaskRunOptions:
    """`max_depth`: sub-tasks run down to this depth (None: settings `runner.max_task_depth`).
    `dry_run`: call the tasks' dry-run entry points instead of `start`."""

    max_depth: int | None = None
    dry_run: bool = False

    def __post_init__(self) -> None:
        depth = self.max_depth
        if isinstance(depth, TaskRunOptions):
            raise TypeError(
                "TaskRunOptions(max_depth=...) got a TaskRunOptions; pass the options object "
                "itself as run_options="
            )
        if depth is not None and (depth.__class__ is not int or depth < 0):
            raise ValueError(
                f"TaskRunOptions.max_depth must be a whole number >= 0 or None, got {depth!r}"
            )
        if not isinstance(self.dry_run, bool):
            raise TypeError(f"TaskRunOptions.dry_run must be True or False, got {self.dry_run!r}")

    def with_max_depth(self, max_depth: int | None) -> TaskRunOptions:
        return replace(self, max_depth=max_depth)

    def with_dry_run(self, dry_run: bool = True) -> TaskRunOptions:
        return replace(self, dry_run=dry_run)

    def to_dict(self) -> dict[str, Any]:
        return {"max_depth": self.max_depth, "dry_run": self.dry_run}


def resolve_run_options(
    max_depth: int | None, run_options: TaskRunOptions | None, default_depth: int
) -> tuple[int, bool]:
    """(max depth, dry run) of a run from what the caller gave: `max_depth=` (the reference's
    form) or `run_options=` (Genja 0.4's), not both; the settings' depth otherwise."""
    if isinstance(max_depth, TaskRunOptions):
        raise TypeError(
            "the second argument of run_task is max_depth; pass a TaskRunOptions as "
            "run_options=TaskRunOptions(...)"
        )
    if run_options is None:
        run_options = TaskRunOptions()
    elif not isinstance(run_options, TaskRunOptions):
        raise TypeError(
            f"run_options must be a genja.TaskRunOptions, got {type(run_options).__name__}"
        )
    if max_depth is not None and run_options.max_depth is not None:
        raise TypeError("give max_depth either as max_depth= or in run_options, not both")
    depth = max_depth if max_depth is not None else run_options.max_depth
    return (default_depth if depth is None else depth), run_options.dry_run
