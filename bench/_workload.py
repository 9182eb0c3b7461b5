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
