"""OpenSSH's sshd on a loopback port, with a throwaway host key, config and test account.

It logs in the test process's throwaway account (tests/servers/accounts.py) with a random
password set the first time a server starts. The server only listens on 127.0.0.1 (or inside a
test namespace) and only lets that account in.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers._ports import free_port, wait_for_banner
from tests.servers.accounts import TEST_USER, set_password, throwaway_account

SSHD = "/usr/sbin/sshd"


def sshd_available() -> str | None:
    """Why sshd cannot run here, or None."""
    if not Path(SSHD).exists():
        return "sshd is not installed (apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "sshd tests need root (to create the test account)"
    return None


@functools.cache
def _account_password() -> str:
    """One random password per test process: every sshd started here shares the account."""
    password = secrets.token_urlsafe(18)
    set_password(throwaway_account(), password)
    return password


def make_key(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


@dataclass
class SSHServer:
    """One running sshd. `password` and `key_file` log in as `username`."""

    address: str
    port: int
    username: str
    password: str = field(repr=False)
    key_file: Path
    workdir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logins(self) -> int:
        """Accepted logins so far, from sshd's log."""
        return len(re.findall(r"Accepted (password|publickey) for", self.log_text()))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_sshd(
    address: str = "127.0.0.1",
    port: int | None = None,
    netns: str | None = None,
    authorized_keys: list[Path] | None = None,
) -> SSHServer:
    """Start sshd; on a random port, try another port if someone took the first one."""
    for attempt in range(3):
        try:
            return _start_sshd(address, port, netns, authorized_keys)
        except RuntimeError:
            if port is not None or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start_sshd(
    address: str,
    port: int | None,
    netns: str | None,
    authorized_keys: list[Path] | None,
) -> SSHServer:
    workdir = Path(tempfile.mkdtemp(prefix="genja-sshd-"))
    workdir.chmod(0o755)  # sshd reads authorized_keys as the test account
    password = _account_password()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    host_key = make_key(workdir / "host_ed25519")
    client_key = make_key(workdir / "client_ed25519")
    client_key.chmod(0o600)
    keys = [client_key.with_suffix(".pub"), *(authorized_keys or [])]
    authorized = workdir / "authorized_keys"
    authorized.write_text(
        "".join(
            k.with_suffix(".pub").read_text() if k.suffix != ".pub" else k.read_text() for k in keys
        )
    )
    authorized.chmod(0o644)
    port = port or free_port(address)
    config = workdir / "sshd_config"
    config.write_text(
        f"""ListenAddress {address}
Port {port}
HostKey {host_key}
PidFile {workdir / "sshd.pid"}
AuthorizedKeysFile {authorized}
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
UseDNS no
AllowUsers {TEST_USER}
PermitRootLogin no
AllowTcpForwarding yes
MaxStartups 500
MaxSessions 100
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""
    )
    log_path = workdir / "sshd.log"
    command = [SSHD, "-D", "-e", "-f", str(config)]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = SSHServer(address, port, TEST_USER, password, client_key, workdir, process, log_path)
    try:
        # sshd writes its pid file once it listens: a banner on the port before that could be
        # another program that took the port first.
        deadline = time.monotonic() + 30
        while not (workdir / "sshd.pid").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {server.log_text()[-2000:]}")
            time.sleep(0.05)
        if netns is None:
            wait_for_banner(address, port)
        else:
            _wait_in_netns(netns, address, port)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_in_netns(netns: str, address: str, port: int) -> None:
    probe = (
        "import socket,sys,time\n"
        "end=time.time()+30\n"
        "while time.time()<end:\n"
        "    try:\n"
        f"        s=socket.create_connection(({address!r},{port}),timeout=2)\n"
        "        if s.recv(64).startswith(b'SSH-'): sys.exit(0)\n"
        "    except OSError: pass\n"
        "    time.sleep(0.1)\n"
        "sys.exit(1)\n"
    )
    subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", probe], check=True, timeout=60
    )
