"""Run fakenos devices until stdin closes: `python fakenos_main.py SPEC_JSON`.

SPEC: {"address": ..., "username": ..., "password": ..., "devices": {name: {"port": N,
"platform": "cisco_ios"}}}. Prints `ready` once the devices listen. A separate process, so the
devices' SSH threads do not share a GIL with the code under test.
"""

import json
import sys
from pathlib import Path

from fakenos import FakeNOS

# Platforms of our own (fakenos NOS files beside this one), by name.
_OWN_PLATFORMS = {"genja_ios": str(Path(__file__).with_name("genja_ios.yaml"))}


def main() -> None:
    spec = json.loads(sys.argv[1])
    inventory = {
        "default": {
            "username": spec["username"],
            "password": spec["password"],
            "server": {
                "plugin": "ParamikoSshServer",
                "configuration": {"address": spec.get("address", "127.0.0.1"), "timeout": 1},
            },
        },
        "hosts": {
            name: _host(device["port"], device["platform"])
            for name, device in spec["devices"].items()
        },
    }
    used = {device["platform"] for device in spec["devices"].values()}
    net = FakeNOS(
        inventory, plugins=[_OWN_PLATFORMS[p] for p in sorted(used & set(_OWN_PLATFORMS))]
    )
    net.start()
    try:
        print("ready", flush=True)
        sys.stdin.read()
    finally:
        net.stop()


def _host(port: int, platform: str) -> dict[str, object]:
    if platform in _OWN_PLATFORMS:
        return {"port": port, "nos": {"plugin": platform}}
    return {"port": port, "platform": platform}


if __name__ == "__main__":
    main()
