"""The sandbox deploy/'s commands run in (tests/deploy/_sandbox.py): skipped where this
machine cannot make one (not root, no setpriv or libseccomp)."""

from __future__ import annotations

import ctypes.util
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy._sandbox import Sandbox, install_commands, service_python
from tests.servers.accounts import accounts_available, throwaway_account


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    reason = accounts_available()
    if reason is not None:
        pytest.skip(reason)
    if ctypes.util.find_library("seccomp") is None:
        pytest.skip("libseccomp is not installed")
    python = service_python()
    if python is None:
        pytest.skip("no Python of this version that an unprivileged user may run")
    folder = Path(tempfile.mkdtemp(prefix="gjd-"))
    folder.chmod(0o755)
    try:
        bin_folder, env = install_commands(folder / "opt-genja-bin", python)
        yield Sandbox(folder, throwaway_account(), python, bin_folder, env)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
