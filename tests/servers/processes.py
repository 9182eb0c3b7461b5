"""Stopping the processes a test started (coordinators, agents), and the token files they read."""

from __future__ import annotations

import signal
import subprocess
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
