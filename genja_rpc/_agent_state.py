"""An agent's state folder: what a local agent leaves for its supervisor in files, so that the
supervisor learns it even when the agent cannot talk (its event loop is blocked) or is dead.

The pool makes one private folder per agent process (`--state-dir`) and removes it once it has
read it. In it the agent keeps:

- a start journal per run, `started-<hash of the run id>`: the run id, then one host id per line
  (JSON strings), appended before the host's first task is called. Losing the agent, the
  coordinator fails the hosts it began and moves the others: a host that killed its agent at
  once (`os._exit`, a segfault) is in the journal even though no report about it left the
  process. One `write` per line: no buffer to lose, ~2 µs a host.
- `blocked`, while its event loop is blocked: since when, and the host whose code holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

_JOURNAL_PREFIX = "started-"
_BLOCKED = "blocked"


class StartJournal:
    """The writing side, in the agent: one file per run, opened at its RunStart, removed when
    the coordinator closes the run."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._files: dict[str, int] = {}
        # Held while writing too: a descriptor closed under a writer could be reused by the
        # next file opened, which would then get the line.
        self._lock = threading.Lock()

    def open_run(self, run_id: str) -> None:
        with self._lock:
            if run_id in self._files:
                return
            path = _journal_path(self._folder, run_id)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            os.write(fd, _line(run_id))
            self._files[run_id] = fd

    def started(self, run_id: str, host_id: str) -> None:
        """Callable from any thread."""
        line = _line(host_id)
        with self._lock:
            fd = self._files.get(run_id)
            if fd is not None:
                with contextlib.suppress(OSError):  # a full disk costs precision, not the host
                    os.write(fd, line)

    def close_run(self, run_id: str) -> None:
        with self._lock:
            fd = self._files.pop(run_id, None)
            if fd is not None:
                os.close(fd)
        if fd is not None:
            with contextlib.suppress(OSError):
                _journal_path(self._folder, run_id).unlink()


def read_started(folder: Path) -> dict[str, set[str]]:
    """The supervisor's side: the hosts each run's journal says the agent began."""
    found: dict[str, set[str]] = {}
    for path in folder.glob(_JOURNAL_PREFIX + "*"):
        try:
            lines = path.read_bytes().splitlines()
        except OSError:
            continue
        names = [_parse(line) for line in lines]
        if names and names[0]:
            found.setdefault(names[0], set()).update(n for n in names[1:] if n)
    return found


@dataclass(frozen=True, slots=True)
class Blocked:
    """The agent's event loop is blocked since `since` (Unix time), in the code of a task for
    host `host_id` ("" when no task's code was on the loop's stack)."""

    since: float
    host_id: str = ""


def write_blocked(folder: Path, blocked: Blocked) -> None:
    temporary = folder / f".{_BLOCKED}.tmp"
    temporary.write_text(json.dumps({"since": blocked.since, "host_id": blocked.host_id}))
    temporary.replace(folder / _BLOCKED)  # whole, for a reader at any moment


def clear_blocked(folder: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (folder / _BLOCKED).unlink()


def read_blocked(folder: Path) -> Blocked | None:
    try:
        data = json.loads((folder / _BLOCKED).read_text())
        return Blocked(float(data["since"]), str(data["host_id"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _journal_path(folder: Path, run_id: str) -> Path:
    # Run ids come from clients: hashed, never used as a path.
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:32]
    return folder / f"{_JOURNAL_PREFIX}{digest}"


def _line(name: str) -> bytes:
    return json.dumps(name).encode() + b"\n"


def _parse(line: bytes) -> str:
    try:
        name = json.loads(line)
    except ValueError:  # a line cut short when the agent died
        return ""
    return name if isinstance(name, str) else ""
