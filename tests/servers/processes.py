"""Processes a test starts (coordinators, agents, clients): stopping them, the token files they
read, and a TMPDIR they may leave things in."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it lingers; its pipes closed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def write_secret(path: Path, text: str, mode: int = 0o600) -> Path:
    """A token file; coordinators, agents and clients refuse one open to group or others."""
    path.write_text(text)
    path.chmod(mode)
    return path


@contextlib.contextmanager
def scratch_tmpdir() -> Iterator[Path]:
    """A short folder to give a process as TMPDIR, removed afterwards: a client or coordinator
    the test kills cannot remove the work folder it made there (unix socket paths must stay
    short, so not under pytest's tmp_path)."""
    folder = Path(tempfile.mkdtemp(prefix="gjtmp-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
