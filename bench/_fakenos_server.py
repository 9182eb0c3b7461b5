"""Serve COUNT fake Cisco IOS devices on 127.0.0.1 ports BASE..BASE+COUNT-1 until terminated.

`python -m bench._fakenos_server COUNT BASE` prints "ready" once every device listens. It runs
in its own process so its CPU is not counted as the runners'.
"""

from __future__ import annotations

import signal
import sys
import threading

from fakenos import FakeNOS

USERNAME = "bench"
PASSWORD = "bench"  # a fake device's login, on loopback only, for the length of one run


def main(argv: list[str]) -> int:
    count, base = int(argv[0]), int(argv[1])
    inventory = {
        "default": {
            "username": USERNAME,
            "password": PASSWORD,
            "server": {
                "plugin": "ParamikoSshServer",
                "configuration": {"address": "127.0.0.1", "timeout": 1},
            },
            "shell": {"plugin": "CMDShell", "configuration": {}},
            "nos": {"plugin": "cisco_ios", "configuration": {}},
        },
        "hosts": {
            "dev": {"replicas": count, "port": [base, base + count - 1], "platform": "cisco_ios"}
        },
    }
    net = FakeNOS(inventory=inventory)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    net.start()
    print("ready", flush=True)
    try:
        stop.wait()
    finally:
        net.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
