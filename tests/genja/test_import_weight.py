"""`import genja` stays light: it loads no gRPC, SSH, rich or cloudpickle (its public names load
on first use, and those libraries when a run needs them). Pinned by module, in a fresh
interpreter; time is measured in bench/, not here."""

from __future__ import annotations

import subprocess
import sys

_HEAVY = ("grpc", "google.protobuf", "paramiko", "rich", "cloudpickle")


def test_import_genja_loads_no_rpc_ssh_or_console_library() -> None:
    code = "import sys, genja; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(result.stdout.split())
    assert "genja" in loaded
    assert sorted(name for name in _HEAVY if name in loaded) == []
