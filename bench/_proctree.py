"""CPU time and memory of a process and all its descendants, read from /proc.

Linux only. CPU is utime + stime of every live process in the tree (threads included), so a
process that exits inside a measured window loses its CPU; the measured windows end before the
runners stop their agents, so nothing in the tree exits inside them.
"""

from __future__ import annotations

import os
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from every thread's children file."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
        except OSError:
            continue
        found.extend(int(part) for part in text.split())
    return found


def descendants(root: int) -> list[int]:
    """`root` and every process below it that is alive now."""
    seen = [root]
    index = 0
    while index < len(seen):
        seen.extend(child for child in _children(seen[index]) if child not in seen)
        index += 1
    return seen


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (all their threads)."""
    ticks = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / _CLOCK_TICKS


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pids: list[int]) -> float:
    """Resident memory now, summed over the processes, in MiB."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/statm").read_text().split()
        except OSError:
            continue
        total += int(fields[1]) * _PAGE_KB
    return total / 1024


def peak_rss_mb(pids: list[int]) -> float:
    """Each process's own high-water mark of resident memory (VmHWM), summed, in MiB.

    The processes may have peaked at different moments, so this is an upper bound on what they
    held at once; the sampled sum (`rss_mb` polled by the driver) is the lower bound.
    """
    return sum(_status_kb(pid, "VmHWM:") for pid in pids) / 1024
