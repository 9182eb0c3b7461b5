"""Serve COUNT fake Cisco IOS devices on 127.0.0.1 ports BASE..BASE+COUNT-1 until terminated.

`python -m bench._fakenos_server COUNT BASE` prints "ready" once every device listens. It runs
in its own process so its CPU is not counted as the runners'; the driver starts several, so that
no one process (one GIL) answers for all the devices.
"""

from __future__ import annotations

import signal
import sys
import threading

from fakenos import FakeNOS
from fakenos.core.nos import Nos
from fakenos.plugins.servers import ssh_server_paramiko

# fakenos' shell pipes (TapIO) poll every 10 ms in two threads per open session: 200 idle
# sessions are 40,000 wake-ups a second, which held both cores of the reference machine at
# 100 % and was why the scenario had to shrink to 50 devices. The same pipe, but waiting on a
# condition: idle sessions cost nothing, and each runner meets the same devices.


class _WaitingTapIO(ssh_server_paramiko.TapIO):  # type: ignore[misc]
    def __init__(self, run_srv: threading.Event, initial_value: str = "", newline: str = "\n"):
        super().__init__(run_srv, initial_value, newline)
        self._ready = threading.Condition()

    def readline(self) -> str | None:
        with self._ready:
            while self.run_srv.is_set():
                if self.lines:
                    return str(self.lines.pop(-1))
                self._ready.wait(0.5)  # also notices run_srv cleared without a write
        return None

    def write(self, value: str) -> None:  # type: ignore[override]
        with self._ready:
            self.lines.insert(0, value)
            self._ready.notify()


ssh_server_paramiko.TapIO = _WaitingTapIO

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
    # fakenos loads the platform's YAML once per device (0.3 s of CPU each: a minute for 200
    # devices, with the machine's load far up while it lasts). The devices only answer `show`
    # commands here, so they can share one loaded platform.
    net.nos_plugins["cisco_ios"] = Nos(filename=net.nos_plugins["cisco_ios"])
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
