"""A throwaway lab on loopback for the examples: fakenos devices and (when installed) an OpenSSH
sshd, started on free 127.0.0.1 ports and stopped on exit. Nothing listens beyond loopback.

The sshd lets only the current user in, with a key made for this run (as root: key only, never a
password), and is gone when the `with` block ends.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakenos import FakeNOS

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_ssh(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing speaks SSH on 127.0.0.1:{port} after {timeout:g}s")


@dataclass
class Lab:
    """Inventory entries for what the lab started, and the folder it keeps its files in."""

    workdir: Path
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _stack: ExitStack = field(default_factory=ExitStack)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def start_devices(self, platforms: dict[str, str]) -> None:
        """One fakenos device per name -> platform, each on its own port."""
        password = secrets.token_urlsafe(12)
        ports = {name: _free_port() for name in platforms}
        inventory = {
            "default": {
                "username": "admin",
                "password": password,
                "server": {
                    "plugin": "ParamikoSshServer",
                    "configuration": {"address": "127.0.0.1", "timeout": 1},
                },
            },
            "hosts": {
                name: {"port": ports[name], "platform": platform}
                for name, platform in platforms.items()
            },
        }
        net = FakeNOS(inventory)
        net.start()
        self._stack.callback(net.stop)
        for name, platform in platforms.items():
            _wait_for_ssh(ports[name])
            self.hosts[name] = {
                "hostname": "127.0.0.1",
                "port": ports[name],
                "username": "admin",
                "password": password,
                "platform": platform,
                # The enable secret: netmiko enters enable mode at login.
                "connection_options": {"netmiko": {"extras": {"secret": password}}},
            }

    def start_sshd(self, name: str) -> bool:
        """An OpenSSH server for the current user; False when sshd is not installed."""
        if not Path(SSHD).exists():
            return False
        folder = self.workdir / "sshd"
        folder.mkdir(mode=0o755)
        for key in ("host", "client"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)],
                check=True,
            )
        shutil.copy(folder / "client.pub", folder / "authorized_keys")
        user = getpass.getuser()
        port = _free_port()
        (folder / "sshd_config").write_text(
            f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {folder / 'host'}\n"
            f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            f"StrictModes no\nAllowUsers {user}\nPermitRootLogin prohibit-password\n"
            "MaxStartups 100\n"
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = (folder / "sshd.log").open("wb")
        self._stack.callback(log.close)
        process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stdout=log, stderr=log
        )
        self._stack.callback(_stop, process)
        _wait_for_ssh(port)
        self.hosts[name] = {
            "hostname": "127.0.0.1",
            "port": port,
            "username": user,
            "connection_options": {"ssh": {"extras": {"key_file": str(folder / "client")}}},
        }
        return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _quiet_device_threads(args: threading.ExceptHookArgs) -> None:
    """fakenos serves each SSH session on a thread that lets a session's end escape as an
    exception (the lab's own readiness probes end that way): not worth a traceback."""
    import paramiko

    ended = isinstance(args.exc_value, paramiko.SSHException | EOFError | OSError)
    if ended and args.thread is not None and "connection_function" in args.thread.name:
        return
    _default_excepthook(args)


_default_excepthook = threading.excepthook


def open_lab() -> Lab:
    # The fake devices' SSH servers log every session that ends as an error: keep them quiet.
    for name in ("paramiko", "fakenos"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    threading.excepthook = _quiet_device_threads
    return Lab(Path(tempfile.mkdtemp(prefix="genja-lab-")))
