"""Private folders name their owner; a new one removes those whose owner has exited, telling a
reused pid from the owner by its start time. Real processes (a live one, an exited one, a
zombie) stand for the owners."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from genja_rpc._workdir import _start_time, make_workdir, remove_orphans

# Above the largest pid_max Linux allows (2**22): never a live process.
NO_SUCH_PID = 2**22 + 7


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def waiting_child() -> Iterator[subprocess.Popen[bytes]]:
    """A process that exits when its stdin closes (and stays a zombie until reaped)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    yield child
    if child.stdin is not None:
        child.stdin.close()
    child.wait(timeout=30)


def _folder(base: Path, name: str) -> Path:
    path = base / name
    path.mkdir()
    (path / "coordinator.sock").touch()
    return path


def test_a_workdir_names_its_owner_and_is_private(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    made = make_workdir("coordinator")
    assert made.parent == tmp_path
    assert made.name.startswith(f"genja-coordinator-{os.getpid()}-{_start_time(os.getpid())}-")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert remove_orphans(tmp_path) == [], "a live owner's folder stays"


def test_folders_of_exited_owners_go_and_others_stay(
    tmp_path: Path, waiting_child: subprocess.Popen[bytes]
) -> None:
    me, started = os.getpid(), _start_time(os.getpid())
    mine = _folder(tmp_path, f"genja-{me}-{started}-abcdefgh")
    reused = _folder(tmp_path, f"genja-{me}-{started + 1}-abcdefgh")  # an earlier owner's pid

    dead = _folder(tmp_path, f"genja-coordinator-{NO_SUCH_PID}-5-abcdefgh")

    zombie_pid = waiting_child.pid
    zombie_start = _start_time(zombie_pid)
    zombie = _folder(tmp_path, f"genja-{zombie_pid}-{zombie_start}-abcdefgh")
    assert waiting_child.stdin is not None
    waiting_child.stdin.close()
    deadline = time.monotonic() + 30
    while _state(zombie_pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.02)

    others = [
        _folder(tmp_path, "genja-abcdefgh"),  # an older genja's: no owner recorded
        _folder(tmp_path, "genja-sshd-abcdefgh"),
        _folder(tmp_path, f"genja-{NO_SUCH_PID}-5-abcd"),  # not a name genja makes
    ]
    plain_file = tmp_path / f"genja-{NO_SUCH_PID + 8}-5-abcdefgh"
    plain_file.touch()
    link = tmp_path / f"genja-{NO_SUCH_PID + 9}-5-abcdefgh"
    link.symlink_to(others[0])
    if os.geteuid() == 0:
        foreign = _folder(tmp_path, f"genja-{NO_SUCH_PID + 10}-5-abcdefgh")
        os.chown(foreign, 65534, 65534)
        others.append(foreign)

    removed = remove_orphans(tmp_path)

    assert sorted(removed) == sorted([reused, dead, zombie])
    for path in (reused, dead, zombie):
        assert not path.exists()
    for path in [mine, *others, plain_file, link]:
        assert path.exists() or path.is_symlink()
