"""Private folders for a coordinator's socket and its agents' logs, gone with their owner.

The embedded coordinator of a client and a `genja-coordinator serve` each keep a unix socket
and their agents' logs in a 0700 folder of the temp dir, removed when they close. A process
killed by SIGKILL (or by a SIGTERM it does not handle) cannot remove its own, so each name
records its owner, `genja-[KIND-]PID-START-XXXXXXXX` (START: the process's start time in clock
ticks after boot, from /proc, which tells the owner from a later process given the same pid),
and each new folder is made after removing the same user's folders whose owner has exited.

Pids are those of this pid namespace: processes in other namespaces sharing one temp dir
would see each other's folders as orphans, so such set-ups need a temp dir each (TMPDIR).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

_OWNED = re.compile(r"genja-(?:[a-z]+-)?(\d+)-(\d+)-[a-z0-9_]{8}\Z")
_PROC = Path("/proc")


def make_workdir(kind: str = "") -> Path:
    """A new private folder (mode 0700) in the temp dir, after removing orphaned ones."""
    remove_orphans()
    pid = os.getpid()
    prefix = f"genja-{kind}-" if kind else "genja-"
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{pid}-{_start_time(pid) or 0}-"))


def remove_orphans(folder: Path | None = None) -> list[Path]:
    """Remove this user's genja folders in `folder` (default: the temp dir) whose owner has
    exited; the ones removed."""
    removed: list[Path] = []
    uid = os.geteuid()
    try:
        entries = list(os.scandir(folder or tempfile.gettempdir()))
    except OSError:
        return removed
    for entry in entries:
        match = _OWNED.match(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if info.st_uid != uid or not stat.S_ISDIR(info.st_mode):
            continue
        if not _running(int(match[1]), int(match[2])):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def _start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks after boot); None if it is gone or a zombie."""
    try:
        text = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = text.rsplit(b")", 1)[-1].split()
    if len(fields) < 20 or fields[0] == b"Z":
        return None
    return int(fields[19])


def _running(pid: int, start: int) -> bool:
    if _PROC.joinpath("self", "stat").exists():
        current = _start_time(pid)
        return current is not None and start in (0, current)  # 0: no /proc when made
    try:  # no /proc: whether the pid exists at all is what can be known
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
