"""The SSH servers scenario 5 talks to, started by the benchmark itself on 127.0.0.1.

- `ssh`, `ssh_textfsm`: a few OpenSSH sshd instances with a throwaway host key and client key
  made in bench/.cache/ssh (never reused outside the benchmark), each on a free loopback port.
- `fakenos`: fake Cisco IOS devices, one port each, `FAKENOS_DEVICES_PER_PROCESS` to a process
  (one process for 200 devices was one GIL answering 200 sessions: the runners timed out).

Both are children of the driver, not of the measured workers, so their CPU is not counted as
the runners'. They stop when the driver leaves the `Targets` block.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from bench import _workload

SSHD = "/usr/sbin/sshd"
SSHD_INSTANCES = 4
FAKENOS_DEVICES_PER_PROCESS = 25


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def consecutive_free_ports(count: int) -> int:
    """A base port with `count` free ports after it (probed by binding each)."""
    for base in range(20000, 60000, 1000):
        probes = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probes.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in probes:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def wait_for_banner(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


class Targets:
    def __init__(self, cache: Path, log: Any) -> None:
        self.cache = cache
        self.log = log
        self._sshd: list[subprocess.Popen[bytes]] = []
        self._ssh_target: dict[str, Any] | None = None
        self._ssh_skip: str | None = None
        self._fakenos: list[subprocess.Popen[bytes]] = []
        self._fakenos_target: tuple[int, dict[str, Any]] | None = None

    def __enter__(self) -> Targets:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def get(self, scenario: str, hosts: int) -> tuple[dict[str, Any], str | None]:
        """The target description the workers get, or a reason the scenario is skipped."""
        if scenario in ("ssh", "ssh_textfsm"):
            return self._ssh()
        return self._fakenos_devices(hosts)

    # ---------------------------------------------------------------- OpenSSH

    def _ssh(self) -> tuple[dict[str, Any], str | None]:
        if self._ssh_target is None and self._ssh_skip is None:
            try:
                self._ssh_target = self._start_sshd()
            except Exception as error:
                self._ssh_skip = f"sshd not available: {error}"
                self.log(f"  ssh: skipped: {self._ssh_skip}")
        return self._ssh_target or {}, self._ssh_skip

    def _start_sshd(self) -> dict[str, Any]:
        if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
            raise RuntimeError(f"{SSHD} or ssh-keygen not found")
        folder = self.cache / "ssh"
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("host_key", "client_key"):
            if not (folder / name).exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)],
                    check=True,
                )
        (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
        output = folder / "show_interfaces.txt"
        output.write_text(_workload.command_output() + "\n")
        ios_output = folder / "show_interfaces_ios.txt"
        ios_output.write_text(_workload.ios_interfaces_output() + "\n")
        (folder / "ssh_config").write_text(
            f"Host 127.0.0.1\n  IdentityFile {folder / 'client_key'}\n"
            "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        ports = free_ports(SSHD_INSTANCES)
        # Files by instance number, not port: each run rewrites the same few.
        for number, port in enumerate(ports):
            config = folder / f"sshd_config_{number}"
            config.write_text(
                "\n".join(
                    [
                        f"Port {port}",
                        "ListenAddress 127.0.0.1",
                        f"HostKey {folder / 'host_key'}",
                        f"PidFile {folder / f'sshd_{number}.pid'}",
                        f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                        "PubkeyAuthentication yes",
                        "PasswordAuthentication no",
                        "KbdInteractiveAuthentication no",
                        "PermitRootLogin prohibit-password",
                        "UsePAM no",
                        "StrictModes no",
                        "UseDNS no",
                        "MaxStartups 2000",
                        "MaxSessions 50",
                        "LoginGraceTime 120",
                        "PrintMotd no",
                        "LogLevel ERROR",
                        # bash sources ~/.bashrc when sshd runs it (here: pyenv init, 0.4 s
                        # of process spawns per command); a shell level above 1 skips that.
                        "SetEnv SHLVL=1",
                        "",
                    ]
                )
            )
            log_file = (folder / f"sshd_{number}.log").open("ab")
            self._sshd.append(
                subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=log_file,
                )
            )
            log_file.close()
        for port, process in zip(ports, self._sshd, strict=True):
            if not wait_for_banner(port, 15):
                code = process.poll()
                raise RuntimeError(f"sshd on 127.0.0.1:{port} did not answer (exit {code})")
        self.log(f"  ssh: {len(ports)} sshd instances on 127.0.0.1 ports {ports}")
        return {
            "ports": ports,
            "username": getpass.getuser(),
            "key_file": str(folder / "client_key"),
            "ssh_config": str(folder / "ssh_config"),
            "command": f"cat {output}",
            "textfsm_command": f"cat {ios_output}",
        }

    # ---------------------------------------------------------------- fakenos

    def _fakenos_devices(self, count: int) -> tuple[dict[str, Any], str | None]:
        if self._fakenos_target is not None and self._fakenos_target[0] == count:
            return self._fakenos_target[1], None
        self._stop_fakenos()
        try:
            import fakenos  # noqa: F401
        except ImportError:
            return {}, "fakenos not installed (pip install -e '.[bench]')"
        base = consecutive_free_ports(count)
        started = time.monotonic()
        firsts = range(0, count, FAKENOS_DEVICES_PER_PROCESS)
        for first in firsts:
            size = min(FAKENOS_DEVICES_PER_PROCESS, count - first)
            self._fakenos.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench._fakenos_server", str(size), str(base + first)],
                    cwd=self.cache.parent.parent,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            )
        for process in self._fakenos:
            assert process.stdout is not None
            if process.stdout.readline().strip() != b"ready":
                self._stop_fakenos()
                return {}, "fakenos did not start"
        # Each process's last device: it listens once the process printed "ready".
        lasts = [min(first + FAKENOS_DEVICES_PER_PROCESS, count) - 1 for first in firsts]
        if not all(wait_for_banner(base + last, 30) for last in lasts):
            self._stop_fakenos()
            return {}, "fakenos did not answer"
        self.log(
            f"  fakenos: {count} devices on 127.0.0.1:{base}-{base + count - 1} in "
            f"{len(self._fakenos)} processes (started in {time.monotonic() - started:.0f} s)"
        )
        from bench._fakenos_server import PASSWORD, USERNAME

        target = {
            "ports": list(range(base, base + count)),
            "username": USERNAME,
            "password": PASSWORD,
            "platform": "cisco_ios",
        }
        self._fakenos_target = (count, target)
        return target, None

    def _stop_fakenos(self) -> None:
        processes, self._fakenos, self._fakenos_target = self._fakenos, [], None
        for process in processes:
            process.kill()  # its own stop() joins every device's thread one by one: minutes
        for process in processes:
            process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def close(self) -> None:
        self._stop_fakenos()
        for process in self._sshd:
            process.terminate()
        for process in self._sshd:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._sshd.clear()
