"""Two network namespaces for ProxyJump tests, made and removed by the tests.

    host (agents) --veth 10.239.N.1/30 -- 10.239.N.2 [bastion ns] 10.238.N.1 --veth--
        10.238.N.2 [device ns]

N is picked per test process among values no other run on the machine has routes for, so two
test runs never share an address. The host has a route to the bastion's link only. The
device's subnet gets an `unreachable` route on the host for the test's lifetime, so a direct
attempt fails at once and nothing leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass


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
    link: int  # N in the addresses above

    @property
    def bastion_link(self) -> tuple[str, str]:
        return f"10.239.{self.link}.1", f"10.239.{self.link}.2"

    @property
    def device_link(self) -> tuple[str, str]:
        return f"10.238.{self.link}.1", f"10.238.{self.link}.2"

    @property
    def device_subnet(self) -> str:
        return f"10.238.{self.link}.0/30"

    @property
    def bastion_address(self) -> str:
        return self.bastion_link[1]

    @property
    def device_address(self) -> str:
        return self.device_link[1]

    def remove(self) -> None:
        _ip("route", "del", "unreachable", self.device_subnet, check=False)
        _ip("link", "del", self.host_if, check=False)
        _ip("netns", "del", self.bastion, check=False)
        _ip("netns", "del", self.device, check=False)


def _free_link() -> int:
    """A third octet no route on the host uses yet in either of our two ranges."""
    routes = _ip("route", "show", "table", "all").stdout
    start = os.getpid() % 250
    for offset in range(250):
        link = (start + offset) % 250
        if f"10.239.{link}." not in routes and f"10.238.{link}." not in routes:
            return link
    raise RuntimeError("no free 10.239.N.0/30 link for the test namespaces")


def make_namespaces() -> Namespaces:
    tag = str(os.getpid() % 100000)
    spaces = Namespaces(f"gj-bastion-{tag}", f"gj-device-{tag}", f"gjh{tag}", _free_link())
    spaces.remove()
    try:
        _ip("netns", "add", spaces.bastion)
        _ip("netns", "add", spaces.device)
        bastion_if, dev_a, dev_b = f"gjb{tag}", f"gjd{tag}", f"gje{tag}"
        _ip("link", "add", spaces.host_if, "type", "veth", "peer", "name", bastion_if)
        _ip("link", "set", bastion_if, "netns", spaces.bastion)
        _ip("addr", "add", f"{spaces.bastion_link[0]}/30", "dev", spaces.host_if)
        _ip("link", "set", spaces.host_if, "up")
        inb = ("-n", spaces.bastion)
        ind = ("-n", spaces.device)
        _ip(*inb, "link", "set", "lo", "up")
        _ip(*inb, "addr", "add", f"{spaces.bastion_link[1]}/30", "dev", bastion_if)
        _ip(*inb, "link", "set", bastion_if, "up")
        _ip(*inb, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b)
        _ip(*inb, "link", "set", dev_b, "netns", spaces.device)
        _ip(*inb, "addr", "add", f"{spaces.device_link[0]}/30", "dev", dev_a)
        _ip(*inb, "link", "set", dev_a, "up")
        _ip(*ind, "link", "set", "lo", "up")
        _ip(*ind, "addr", "add", f"{spaces.device_link[1]}/30", "dev", dev_b)
        _ip(*ind, "link", "set", dev_b, "up")
        _ip("route", "add", "unreachable", spaces.device_subnet)
    except BaseException:
        spaces.remove()
        raise
    return spaces
