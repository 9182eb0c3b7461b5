"""`make run`: `show version` over fakenos devices and an OpenSSH server, through the agents.

Starts the targets on loopback (examples/_lab.py), runs the issue's task once, runs a second
task on the same open connections, prints the result tree and the summaries, stops the targets.
"""

from __future__ import annotations

from _lab import open_lab  # examples/ is on sys.path when this file runs as a script

import genja as genja_lib
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task


@task(name="show_version", connection_plugin_name="ssh")
class ShowVersion:
    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> TaskSuccessResult:
        connection = context.connection()
        out = await connection.execute_command(host.get("command", "show version"))
        lines = out.strip().splitlines()
        return TaskSuccessResult(
            result={"first_line": lines[0] if lines else "", "lines": len(lines)},
            summary=f"{host.hostname}: {len(out)} bytes",
            metadata={"connection": connection.id, "mode": connection.mode},
        )


@task(name="reuse_check", connection_plugin_name="ssh")
class ReuseCheck:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        return TaskSuccessResult(metadata={"connection": context.connection().id})


def main() -> None:
    with open_lab() as lab:
        lab.start_devices(
            {"core-ios": "cisco_ios", "edge-eos": "arista_eos", "dc-nxos": "cisco_nxos"}
        )
        if not lab.start_sshd("linux-1"):
            print("(sshd is not installed: running against the fakenos devices only)")
        settings = genja_lib.Settings.from_dict(
            {
                "ssh": {"known_hosts": str(lab.workdir / "known_hosts"), "connect_timeout": 10},
                "runner": {"worker_count": 2},
            }
        )
        with genja_lib.Genja.from_hosts(lab.hosts, settings) as genja:
            results = genja.run_task(ShowVersion)
            print(results.to_json(pretty=True))
            print(results.host_summary())
            again = genja.run_task(ReuseCheck)
            reused = sum(
                again[h].metadata["connection"] == results[h].metadata["connection"]
                for h in results.passed_hosts
            )
            print(f"second task reused {reused} of {len(results.passed_hosts)} open connections")


if __name__ == "__main__":
    main()
