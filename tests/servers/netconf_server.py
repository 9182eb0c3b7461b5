"""A real NETCONF server (the `netconf` package's, see netconf_main.py) in a child process on
127.0.0.1, with a throwaway host key and password."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers._ports import wait_for_banner
from tests.servers.sshd import make_key

_MAIN = Path(__file__).with_name("netconf_main.py")


@dataclass
class NetconfServer:
    port: int
    username: str
    password: str = field(repr=False)
    process: subprocess.Popen[str]
    workdir: Path

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()  # the server's cue to stop
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_netconf() -> NetconfServer:
    workdir = Path(tempfile.mkdtemp(prefix="genja-netconf-"))
    password = secrets.token_urlsafe(12)
    spec = {"username": "netops", "password": password, "host_key": str(make_key(workdir / "k"))}
    process = subprocess.Popen(
        [sys.executable, str(_MAIN), json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    server = NetconfServer(int(line or 0), "netops", password, process, workdir)
    if not line.isdigit():
        server.stop()
        raise RuntimeError(f"the NETCONF server did not start (exit status {process.poll()})")
    try:
        wait_for_banner("127.0.0.1", server.port)
    except BaseException:
        server.stop()
        raise
    return server
