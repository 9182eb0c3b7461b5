"""An agent's state folder: what a local agent leaves for its supervisor in files, so that the
supervisor learns it even when the agent cannot talk (its event loop is blocked) or is dead.

The pool makes one private folder per agent process (`--state-dir`) and removes it once it has
read it. In it the agent keeps:

- a start journal per run, `started-<hash of the run id>` (the run id) beside its slot files
  `started-<hash>.<n>`: each host id (a JSON string) is written to a slot of a shared file
  mapping before the host's first task is called. Losing the agent, the coordinator fails the
  hosts it began and moves the others: a host that killed its agent at once (`os._exit`, a
  segfault) is in the journal even though no report about it left the process, since the
  kernel keeps a mapping's pages when its process dies. No lock and no system call per host.
- `blocked`, while its event loop is blocked: since when, and the host whose code holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import mmap
import os
import threading
from dataclasses import dataclass
from pathlib import Path

_JOURNAL_PREFIX = "started-"
# A journal slot: a host id as a JSON string, zero-padded; 16,384 of them to a file (1 MiB).
_SLOT = 64
_SLOTS_PER_CHUNK = 16384
_BLOCKED = "blocked"


class StartJournal:
    """The writing side, in the agent: one journal per run, opened at its RunStart, removed
    when the coordinator closes the run."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._runs: dict[str, RunJournal] = {}

    def open_run(self, run_id: str) -> RunJournal:
        journal = self._runs.get(run_id)
        if journal is None:
            journal = self._runs[run_id] = RunJournal(self._folder, run_id)
        return journal

    def started(self, run_id: str, host_id: str) -> None:
        """Callable from any thread; a run not open (or closed) is ignored."""
        journal = self._runs.get(run_id)
        if journal is not None:
            journal.started(host_id)

    def close_run(self, run_id: str) -> None:
        journal = self._runs.pop(run_id, None)
        if journal is not None:
            journal.close()


class RunJournal:
    """One run's start journal. `started` costs no lock and no system call: a counter (atomic
    under the GIL) gives each host its own slot in a shared file mapping, which the kernel keeps
    when the process dies. Files of `_SLOTS_PER_CHUNK` slots are added as the run grows (under
    a lock, once per 16,384 hosts). A host id too long for a slot goes to an appended file."""

    def __init__(self, folder: Path, run_id: str) -> None:
        self._stem = _journal_path(folder, run_id)
        self._next = itertools.count()
        self._chunks: list[mmap.mmap] = []
        self._lock = threading.Lock()  # adding chunks, the long-id file, closing
        self._long_fd: int | None = None
        self._closed = False
        fd = os.open(self._stem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, _line(run_id))
        finally:
            os.close(fd)

    def started(self, host_id: str) -> None:
        """Callable from any thread; after `close`, ignored."""
        entry = json.dumps(host_id).encode()
        if len(entry) > _SLOT:
            self._started_long(entry)
            return
        chunk, slot = divmod(next(self._next), _SLOTS_PER_CHUNK)
        if chunk >= len(self._chunks):
            self._add_chunks(chunk)
        offset = slot * _SLOT
        try:  # noqa: SIM105 (a suppress() context costs more than the write, per host)
            self._chunks[chunk][offset : offset + len(entry)] = entry
        except (ValueError, IndexError):  # closed meanwhile
            pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for chunk in self._chunks:
                chunk.close()
            self._chunks.clear()
            if self._long_fd is not None:
                os.close(self._long_fd)
                self._long_fd = None
        for path in (self._stem, *self._stem.parent.glob(self._stem.name + ".*")):
            with contextlib.suppress(OSError):
                path.unlink()

    def _add_chunks(self, upto: int) -> None:
        with self._lock:
            while not self._closed and len(self._chunks) <= upto:
                path = self._stem.with_name(f"{self._stem.name}.{len(self._chunks)}")
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                try:
                    os.ftruncate(fd, _SLOT * _SLOTS_PER_CHUNK)  # sparse until written
                    self._chunks.append(mmap.mmap(fd, _SLOT * _SLOTS_PER_CHUNK))
                finally:
                    os.close(fd)

    def _started_long(self, entry: bytes) -> None:
        with self._lock:
            if self._closed:
                return
            if self._long_fd is None:
                path = self._stem.with_name(f"{self._stem.name}.long")
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
                self._long_fd = os.open(path, flags, 0o600)
            with contextlib.suppress(OSError):  # a full disk costs precision, not the host
                os.write(self._long_fd, entry + b"\n")


def read_started(folder: Path) -> dict[str, set[str]]:
    """The supervisor's side: the hosts each run's journal says the agent began."""
    found: dict[str, set[str]] = {}
    for head in folder.glob(_JOURNAL_PREFIX + "*"):
        if "." in head.name:
            continue
        try:
            run_id = _parse(head.read_bytes().split(b"\n", 1)[0])
            hosts = found.setdefault(run_id, set()) if run_id else None
            if hosts is None:
                continue
            for part in folder.glob(head.name + ".*"):
                data = part.read_bytes()
                if part.suffix == ".long":
                    entries = data.splitlines()
                else:
                    entries = [
                        data[i : i + _SLOT].rstrip(b"\0") for i in range(0, len(data), _SLOT)
                    ]
                hosts.update(name for name in map(_parse, filter(None, entries)) if name)
        except OSError:
            continue
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
