"""Run fakenos devices until stdin closes: `python fakenos_main.py SPEC_JSON`.

SPEC: {"address": ..., "username": ..., "password": ..., "devices": {name: {"port": N,
"platform": "cisco_ios"}}}. Prints `ready` once the devices listen. A separate process, so the
devices' SSH threads do not share a GIL with the code under test.
"""

import json
import sys

from fakenos import FakeNOS


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
            name: {"port": device["port"], "platform": device["platform"]}
            for name, device in spec["devices"].items()
        },
    }
    net = FakeNOS(inventory)
    net.start()
    try:
        print("ready", flush=True)
        sys.stdin.read()
    finally:
        net.stop()


if __name__ == "__main__":
    main()
