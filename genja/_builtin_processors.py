"""The processors genja ships, selectable by name: `audit`, `jsonl` and `progress`."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import socket
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from genja._processors import ProcessorContext
from genja._result_tree import TaskResults, result_to_normalized
from genja.task._results import HostTaskResult, TaskFailureResult, TaskSuccessResult

JSONL_PATH_ENV = "GENJA_JSONL_PATH"
DEFAULT_JSONL_PATH = "genja-results.jsonl"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"


class AuditProcessor:
    """Who ran which task on which host, and when, recorded under the key `audit`.

    A passed result gets it in `metadata`; a failed result in `details` (when `details` is a
    mapping or empty); a skipped result has no field to carry it and is left as it is. Times are
    UTC, as seen by the client when the agent's report arrived.
    """

    def __init__(self, user: str | None = None) -> None:
        self._user = user if user is not None else _user()
        self._client = socket.gethostname()
        self._started: dict[tuple[tuple[str, ...], str | None], str] = {}

    def on_instance_start(self, ctx: ProcessorContext) -> None:
        self._started[(ctx.task_path, ctx.host_id)] = _now()

    def on_instance_finish(
        self, ctx: ProcessorContext, result: HostTaskResult
    ) -> HostTaskResult | None:
        from genja import __version__

        record = {
            "user": self._user,
            "client": self._client,
            "task": ctx.task_name,
            "task_path": list(ctx.task_path),
            "host": ctx.host_id,
            "started_at": self._started.pop((ctx.task_path, ctx.host_id), None),
            "finished_at": _now(),
            "genja_version": __version__,
        }
        if isinstance(result, TaskSuccessResult):
            return dataclasses.replace(result, metadata={**result.metadata, "audit": record})
        if isinstance(result, TaskFailureResult) and (
            result.details is None or isinstance(result.details, Mapping)
        ):
            return dataclasses.replace(result, details={**(result.details or {}), "audit": record})
        return None


class JsonlProcessor:
    """Appends one JSON line per (task node, host) result to a file, as each result arrives.

    The file is `path`, else `$GENJA_JSONL_PATH`, else `genja-results.jsonl` in the working
    folder. Each line holds `time`, `host`, `task`, `task_path`, `depth` and the result in the
    normalized shape (`status`, `summary`, ...). Lines are flushed one by one, so `tail -f`
    shows a run as it goes; the file closes when the root task finishes.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path or os.environ.get(JSONL_PATH_ENV) or DEFAULT_JSONL_PATH)
        self._file: IO[str] | None = None

    def on_instance_finish(self, ctx: ProcessorContext, result: HostTaskResult) -> None:
        self.write(ctx.host_id or "", ctx.task_path or (ctx.task_name,), result)

    def write(self, host_id: str, task_path: tuple[str, ...], result: HostTaskResult) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        line: dict[str, Any] = {
            "time": _now(),
            "host": host_id,
            "task": task_path[-1],
            "task_path": list(task_path),
            "depth": len(task_path) - 1,
        }
        line.update(result_to_normalized(result))
        self._file.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def on_task_finish(self, ctx: ProcessorContext, results: TaskResults) -> None:
        if ctx.depth == 0:
            self.close()

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


class ProgressProcessor:
    """One plain line per (task node, host) result on stderr (or `stream`), with a count:

        [3/10] collect_facts router3: passed: collected facts from 10.0.0.3

    Meant for scripts and logs; the `genja` command draws its own progress bar.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream
        self._done: dict[tuple[str, ...], int] = {}

    def on_instance_finish(self, ctx: ProcessorContext, result: HostTaskResult) -> None:
        path = ctx.task_path or (ctx.task_name,)
        done = self._done[path] = self._done.get(path, 0) + 1
        detail = (
            result.summary
            if isinstance(result, TaskSuccessResult)
            else getattr(result, "message", None)
        )
        if isinstance(result, TaskFailureResult):
            detail = f"{result.kind.value}: {result.message}"
        text = f"[{done}/{ctx.host_count}] {'/'.join(path)} {ctx.host_id}: {result.status.value}"
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(f"{text}: {detail}\n" if detail else f"{text}\n")
        stream.flush()
