"""Options given at run time (`run_task(task, options={...})`, the CLI's `-o` and
`--options-file`), merged over the options the root task declares.

Merging is key by key at every depth: a mapping given for a key whose declared value is a
mapping merges into it, any other value (a string, a number, a list, null) replaces the
declared one. So `-o ssh.port=2222` changes one key of a declared `ssh` mapping and keeps the
others. Only the root task's options change; its sub-tasks keep their own (a sub-task that
needs a run-time value reads it from `context.parent_result`).

Run-time options must be JSON values, as declared options are, because they travel to agents
as JSON; they are checked when the run is planned, before any host starts, and every runtime
gives the task the same value (a tuple arrives as a list, under every runner alike).

Pure logic: no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from genja._errors import ConfigurationError


def not_json(value: Any, path: str = "") -> tuple[str, str] | None:
    """Where `value` stops being a JSON value, and why: (the dotted path of the bad key, the
    reason), or None when all of it is JSON. Keys must be strings (JSON would turn `1` into
    `"1"` on agents and keep it under in-process runners); numbers must be finite."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"is {value!r}, not a finite number")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return (path, f"has the key {key!r}, which is not a string")
            found = not_json(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = not_json(item, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    return (path, f"is a {type(value).__name__}, not a JSON value")


def merge_options(declared: Any, given: Mapping[str, Any]) -> Any:
    """`given` over `declared`, key by key at every depth (see the module docstring)."""
    if not isinstance(declared, Mapping):
        return dict(given)
    merged = dict(declared)
    for key, value in given.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge_options(below, value)
        else:
            merged[key] = value
    return merged


def options_for_run(task_name: str, declared: Any, given: Any) -> Any:
    """The options task `task_name` runs with: `given` (a mapping of JSON values, or None)
    merged over `declared`. ConfigurationError naming the task and the key when `given` is
    not a mapping of JSON values."""
    if given is None:
        return declared
    where = f"run-time options of task {task_name!r}"
    if not isinstance(given, Mapping):
        raise ConfigurationError(
            f"{where} must be a mapping (a JSON object), got {type(given).__name__}"
        )
    problem = not_json(given)
    if problem is not None:
        path, reason = problem
        at = f"key {path!r}" if path else "the top level"
        raise ConfigurationError(f"{where}: {at} {reason}")
    if not given:
        return declared
    # Through JSON once: every runtime then hands the task the value agents decode.
    return json.loads(json.dumps(merge_options(declared, given)))
