"""Free loopback ports and waiting for a listener."""

from __future__ import annotations

import socket
import time


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def wait_for_banner(
    address: str, port: int, timeout: float = 30.0, netns: str | None = None
) -> None:
    """Wait until `address:port` accepts a connection and sends an SSH banner."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if netns is not None:
                return  # checked by the caller from inside the namespace
            with socket.create_connection((address, port), timeout=2) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError as error:
            last = error
        time.sleep(0.1)
    raise RuntimeError(f"{address}:{port} did not start an SSH server in {timeout:g}s: {last}")
