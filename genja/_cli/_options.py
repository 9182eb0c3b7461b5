"""The run-time options of `genja run`: `--options-file FILE` (YAML or JSON), then each
`-o KEY=VALUE` over it, in the order given.

A VALUE is read as JSON when it parses (`3`, `true`, `null`, `[1, 2]`, `{"a": 1}`), else it
is the string as typed (`/backups`, `core-1`); quote a JSON-looking string to keep it a string
(`-o tag='"true"'`). A dotted KEY sets a nested value (`-o ssh.port=2222` is
`{"ssh": {"port": 2222}}`); a key that itself holds a dot can only come from a file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genja._errors import ConfigurationError
from genja._loader import load_document, locate_line
from genja._task_options import merge_options, not_json


def run_options(assignments: Sequence[str], options_file: str | None) -> dict[str, Any] | None:
    """The options `genja run` passes to the run, or None when none were given."""
    if options_file is None and not assignments:
        return None
    options = load_options_file(Path(options_file)) if options_file is not None else {}
    given: dict[str, Any] = {}
    for text in assignments:
        keys, value = parse_assignment(text)
        _set(given, keys, value, text)
    merged: dict[str, Any] = merge_options(options, given)
    return merged


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """`KEY=VALUE` as (the keys of the dotted KEY, the value)."""
    key, equals, raw = text.partition("=")
    keys = key.split(".")
    if not equals or not all(part.strip() for part in keys):
        raise ConfigurationError(
            f"-o {text!r}: expected KEY=VALUE (KEY may be dotted: ssh.port=2222)"
        )
    return [part.strip() for part in keys], _value(raw)


def _value(raw: str) -> Any:
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except ValueError:
        return raw


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON values: `-o mode=Infinity` is the string."""
    raise ValueError(name)


def _set(into: dict[str, Any], keys: list[str], value: Any, text: str) -> None:
    target = into
    for depth, key in enumerate(keys[:-1]):
        below = target.setdefault(key, {})
        if not isinstance(below, dict):
            taken = ".".join(keys[: depth + 1])
            raise ConfigurationError(
                f"-o {text!r}: {taken!r} is already set to {below!r}, which is not a mapping"
            )
        target = below
    target[keys[-1]] = value


def load_options_file(path: Path) -> dict[str, Any]:
    """A mapping of options from a YAML or JSON file (empty: none). Errors name the file and,
    where known, the line."""
    data = load_document(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{path}: the top level must be a mapping of option names to values, "
            f"got {type(data).__name__}"
        )
    problem = not_json(data)
    if problem is not None:
        key, reason = problem
        line = locate_line(path, key.split("[")[0].split("."))
        at = f" line {line}:" if line is not None else ""
        what = f"option {key!r}" if key else "the top level"
        raise ConfigurationError(f"{path}:{at} {what} {reason}")
    return data
