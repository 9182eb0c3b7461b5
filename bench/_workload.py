"""What the tasks of both runners do, and the inputs they do it on, shared so both do the same.

Nothing here imports genja or Nornir: agents import this module to run the genja tasks, and the
Nornir side imports it in its own process.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

# One line of a `show interfaces`-like table; 200 of them make the output to parse.
_LINE = (
    "GigabitEthernet{slot}/0/{port:<3} {state:<10} vlan{vlan:<5} a-full a-1000 "
    "in {inp:>12} pkts out {out:>12} pkts errs {errs:>4} crc {crc:>3} mtu 1500 desc uplink-{port}"
)
_PATTERN = re.compile(
    r"^(?P<name>\S+)\s+(?P<state>connected|notconnect|disabled)\s+vlan(?P<vlan>\d+)\s+"
    r"(?P<duplex>\S+)\s+(?P<speed>\S+)\s+in\s+(?P<inp>\d+)\s+pkts\s+out\s+(?P<out>\d+)\s+pkts\s+"
    r"errs\s+(?P<errs>\d+)\s+crc\s+(?P<crc>\d+)\s+mtu\s+(?P<mtu>\d+)\s+desc\s+(?P<desc>\S+)\s*$"
)
# Passes over the output per parse: one is 1.5-2 ms of CPU on the reference machine (recorded in the
# results as parse_ms, measured on the machine the benchmark runs on).
PARSE_ROUNDS = 1
OUTPUT_LINES = 200


def command_output(lines: int = OUTPUT_LINES) -> str:
    states = ("connected", "notconnect", "disabled")
    return "\n".join(
        _LINE.format(
            slot=1 + i // 48,
            port=i % 48,
            state=states[i % 3],
            vlan=100 + i % 7,
            inp=i * 7919,
            out=i * 104729,
            errs=i % 13,
            crc=i % 5,
        )
        for i in range(lines)
    )


def parse(output: str, rounds: int = PARSE_ROUNDS) -> dict[str, int]:
    """Parse every line into typed fields and summarise: the CPU-bound part of a task."""
    summary: dict[str, int] = {}
    for _ in range(rounds):
        rows = []
        for line in output.splitlines():
            match = _PATTERN.match(line)
            if match is None:
                continue
            row: dict[str, Any] = match.groupdict()
            for key in ("vlan", "inp", "out", "errs", "crc", "mtu"):
                row[key] = int(row[key])
            rows.append(row)
        summary = {
            "interfaces": len(rows),
            "connected": sum(1 for r in rows if r["state"] == "connected"),
            "errors": sum(r["errs"] + r["crc"] for r in rows),
        }
    return summary


EXPECTED_INTERFACES = OUTPUT_LINES

# `show interfaces` of a Cisco IOS device, for the ssh_textfsm scenario: ntc-templates' TextFSM
# template for it parses these 8 interfaces in about 5 ms of CPU on the reference machine
# (results record it as textfsm_ms, measured where the benchmark runs).
TEXTFSM_PLATFORM = "cisco_ios"
TEXTFSM_COMMAND = "show interfaces"
TEXTFSM_INTERFACES = 8
_IOS_INTERFACE = """\
GigabitEthernet1/0/{i} is {state}, line protocol is {protocol}
  Hardware is iGbE, address is 5254.00{i:02x}.{n:04x} (bia 5254.00{i:02x}.{n:04x})
  Description: uplink-{i}
  Internet address is 10.0.{i}.1/24
  MTU 1500 bytes, BW 1000000 Kbit/sec, DLY 10 usec,
     reliability 255/255, txload 1/255, rxload 1/255
  Encapsulation ARPA, loopback not set
  Keepalive set (10 sec)
  Full Duplex, 1000Mbps, link type is auto, media type is RJ45
  output flow-control is unsupported, input flow-control is unsupported
  ARP type: ARPA, ARP Timeout 04:00:00
  Last input 00:00:0{i}, output 00:00:0{i}, output hang never
  Last clearing of "show interface" counters never
  Input queue: 0/375/0/0 (size/max/drops/flushes); Total output drops: 0
  Queueing strategy: fifo
  Output queue: 0/40 (size/max)
  5 minute input rate {rate} bits/sec, {i} packets/sec
  5 minute output rate {rate} bits/sec, {i} packets/sec
     {packets} packets input, {octets} bytes, 0 no buffer
     Received {i} broadcasts (0 IP multicasts)
     0 runts, 0 giants, 0 throttles
     {errors} input errors, {crc} CRC, 0 frame, 0 overrun, 0 ignored
     0 watchdog, 0 multicast, 0 pause input
     {packets} packets output, {octets} bytes, 0 underruns
     Output 0 broadcasts (0 IP multicasts)
     0 output errors, 0 collisions, 1 interface resets
     0 unknown protocol drops
     0 babbles, 0 late collision, 0 deferred
     0 lost carrier, 0 no carrier, 0 pause output
     0 output buffer failures, 0 output buffers swapped out"""


def ios_interfaces_output(count: int = TEXTFSM_INTERFACES) -> str:
    return "\n".join(
        _IOS_INTERFACE.format(
            i=i,
            n=i * 257,
            state="up" if i % 3 else "administratively down",
            protocol="up" if i % 3 else "down",
            rate=i * 1000,
            packets=i * 7919,
            octets=i * 791900,
            errors=i % 13,
            crc=i % 5,
        )
        for i in range(count)
    )


def command_and_platform(spec: dict[str, Any]) -> tuple[str, str | None]:
    """The command a connection scenario's hosts run and their platform, from the target the
    driver started (the same for both runners)."""
    target = spec["target"]
    if spec["scenario"] == "ssh_textfsm":
        return str(target.get("textfsm_command", "")), TEXTFSM_PLATFORM
    return str(target.get("command", "")), target.get("platform")


def textfsm_parse(output: str) -> list[dict[str, Any]]:
    """What a Nornir user calls: ntc-templates' own parse_output (genja's tasks call
    `context.parse`, which calls the same)."""
    from ntc_templates.parse import parse_output

    rows: list[dict[str, Any]] = parse_output(
        platform=TEXTFSM_PLATFORM, command=TEXTFSM_COMMAND, data=output
    )
    return rows


def host_names(count: int) -> list[str]:
    return [f"dev{i:06d}" for i in range(count)]


def write_inventory(folder: Path, count: int, groups: int = 20) -> tuple[Path, Path, Path]:
    """hosts.yaml, groups.yaml and defaults.yaml that both Nornir and genja read the same way.

    Each host belongs to a site group, and each site group to a region group, so loading
    resolves two levels of inheritance. Hostnames are documentation names: never contacted.
    """
    folder.mkdir(parents=True, exist_ok=True)
    hosts_file, groups_file, defaults_file = (
        folder / "hosts.yaml",
        folder / "groups.yaml",
        folder / "defaults.yaml",
    )
    if hosts_file.exists() and groups_file.exists() and defaults_file.exists():
        return hosts_file, groups_file, defaults_file
    group_map: dict[str, Any] = {
        f"region{r}": {
            "platform": "ios",
            "username": "netops",
            "data": {"region": f"r{r}", "ntp": ["ntp1", "ntp2"]},
        }
        for r in range(4)
    }
    for g in range(groups):
        group_map[f"site{g:03d}"] = {
            "groups": [f"region{g % 4}"],
            "port": 22,
            "data": {"site": f"s{g:03d}", "snmp_community": "public-ro"},
        }
    hosts = {
        name: {
            "hostname": f"{name}.example.net",
            "groups": [f"site{i % groups:03d}"],
            "data": {"role": ("edge", "core", "access")[i % 3], "rack": i % 40, "asset": i},
        }
        for i, name in enumerate(host_names(count))
    }
    # Only `data` in defaults: genja's from_files reads the defaults file as a map of mappings
    # (a flat `username: x` there is rejected), so scalar defaults live in the region groups.
    defaults = {"data": {"domain": "example.net", "timezone": "UTC"}}
    tmp = folder / "tmp"
    tmp.mkdir(exist_ok=True)
    for path, document in (
        (groups_file, group_map),
        (defaults_file, defaults),
        (hosts_file, hosts),
    ):
        staged = tmp / path.name
        staged.write_text(yaml.dump(document, sort_keys=False, Dumper=_dumper()))
        staged.replace(path)
    tmp.rmdir()
    return hosts_file, groups_file, defaults_file


def _dumper() -> Any:
    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)
