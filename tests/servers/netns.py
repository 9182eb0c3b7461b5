"""Two network namespaces for ProxyJump tests, made and removed by the tests.

    host (agents) --veth 10.239.1.1/30 -- 10.239.1.2 [bastion ns] 10.239.2.1 --veth--
        10.239.2.2 [device ns]

The host has a route to the bastion's link only. The device's subnet gets an `unreachable`
route on the host for the test's lifetime, so a direct attempt fails at once and nothing leaves
the machine.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

BASTION_LINK = ("10.239.1.1", "10.239.1.2")
DEVICE_LINK = ("10.239.2.1", "10.239.2.2")
DEVICE_SUBNET = "10.239.2.0/30"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"genja-probe-{os.getpid()}"
    result = _ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"`ip netns add` is not permitted: {result.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Namespaces:
    bastion: str
    device: str
    host_if: str

    @property
    def bastion_address(self) -> str:
        return BASTION_LINK[1]

    @property
    def device_address(self) -> str:
        return DEVICE_LINK[1]

    def remove(self) -> None:
        _ip("route", "del", "unreachable", DEVICE_SUBNET, check=False)
        _ip("link", "del", self.host_if, check=False)
        _ip("netns", "del", self.bastion, check=False)
        _ip("netns", "del", self.device, check=False)


def make_namespaces() -> Namespaces:
    tag = str(os.getpid() % 100000)
    spaces = Namespaces(f"gj-bastion-{tag}", f"gj-device-{tag}", f"gjh{tag}")
    spaces.remove()
    try:
        _ip("netns", "add", spaces.bastion)
        _ip("netns", "add", spaces.device)
        bastion_if, dev_a, dev_b = f"gjb{tag}", f"gjd{tag}", f"gje{tag}"
        _ip("link", "add", spaces.host_if, "type", "veth", "peer", "name", bastion_if)
        _ip("link", "set", bastion_if, "netns", spaces.bastion)
        _ip("addr", "add", f"{BASTION_LINK[0]}/30", "dev", spaces.host_if)
        _ip("link", "set", spaces.host_if, "up")
        inb = ("-n", spaces.bastion)
        ind = ("-n", spaces.device)
        _ip(*inb, "link", "set", "lo", "up")
        _ip(*inb, "addr", "add", f"{BASTION_LINK[1]}/30", "dev", bastion_if)
        _ip(*inb, "link", "set", bastion_if, "up")
        _ip(*inb, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b)
        _ip(*inb, "link", "set", dev_b, "netns", spaces.device)
        _ip(*inb, "addr", "add", f"{DEVICE_LINK[0]}/30", "dev", dev_a)
        _ip(*inb, "link", "set", dev_a, "up")
        _ip(*ind, "link", "set", "lo", "up")
        _ip(*ind, "addr", "add", f"{DEVICE_LINK[1]}/30", "dev", dev_b)
        _ip(*ind, "link", "set", dev_b, "up")
        _ip("route", "add", "unreachable", DEVICE_SUBNET)
    except BaseException:
        spaces.remove()
        raise
    return spaces
