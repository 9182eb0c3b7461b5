"""fakenos devices in a child process, on loopback (or inside a test namespace)."""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.servers._ports import free_port, wait_for_banner

_MAIN = Path(__file__).with_name("fakenos_main.py")


@dataclass
class Device:
    name: str
    platform: str
    port: int


@dataclass
class FakeDevices:
    address: str
    username: str
    password: str = field(repr=False)
    devices: dict[str, Device]
    process: subprocess.Popen[str]

    def fields(self, name: str) -> dict[str, Any]:
        """Inventory fields of device `name` (its own CLI platforms log in as cisco_ios)."""
        device = self.devices[name]
        return {
            "hostname": self.address,
            "port": device.port,
            "username": self.username,
            "password": self.password,
            "platform": "cisco_ios" if device.platform == "genja_ios" else device.platform,
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                if self.process.stdin is not None:
                    self.process.stdin.close()
                self.process.wait(timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                self.process.kill()
                self.process.wait(timeout=10)
        self._close_pipes()

    def kill(self) -> None:
        """Drop every session at once, as a crashing device would."""
        self.process.kill()
        self.process.wait(timeout=10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(OSError):
                    pipe.close()


def start_devices(
    platforms: dict[str, str], address: str = "127.0.0.1", netns: str | None = None
) -> FakeDevices:
    """Start one fakenos device per name -> platform (e.g. {"r1": "cisco_ios"}). Skips the
    test where fakenos is not installed (it needs Python 3.11)."""
    import importlib.util

    if importlib.util.find_spec("fakenos") is None:
        import pytest

        pytest.skip("fakenos is not installed (it needs Python 3.11 or newer)")
    devices = {
        name: Device(name, platform, free_port() if netns is None else 6000 + index)
        for index, (name, platform) in enumerate(platforms.items())
    }
    password = secrets.token_urlsafe(12)
    spec = {
        "address": address,
        "username": "admin",
        "password": password,
        "devices": {d.name: {"port": d.port, "platform": d.platform} for d in devices.values()},
    }
    command = [sys.executable, str(_MAIN), json.dumps(spec)]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    running = FakeDevices(address, "admin", password, devices, process)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"fakenos did not start (exit status {process.poll()})")
        if netns is None:
            for device in devices.values():
                wait_for_banner(address, device.port)
    except BaseException:
        running.stop()
        raise
    return running
