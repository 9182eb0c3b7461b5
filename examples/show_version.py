"""`make run`: `show version` over fakenos devices (netmiko) and an OpenSSH server (ssh),
through the agents.

Starts the targets on loopback (examples/_lab.py), runs `show version` on the devices (parsed
into rows with ntc-templates) and `uname -sr` on the server, runs a second task on the same open
connections, prints the result trees and the summaries, stops the targets.
"""

from __future__ import annotations

from _lab import open_lab  # examples/ is on sys.path when this file runs as a script

import genja as genja_lib
from genja.task import Host, ParseError, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task


@task(name="show_version", connection_plugin_name="netmiko")
class ShowVersion:
    """A device CLI through netmiko; the output parsed into rows by ntc-templates."""

    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> TaskSuccessResult:
        connection = context.connection()
        out = await connection.send_command("show version")
        try:
            rows = context.parse(out, command="show version")
        except ParseError:  # no template for this platform: keep the first line
            rows = [{"first_line": out.strip().splitlines()[0]}]
        return TaskSuccessResult(
            result=rows[0],
            summary=f"{host.hostname}: {len(out)} bytes",
            metadata={"connection": connection.id},
        )


@task(name="uname", connection_plugin_name="ssh")
class Uname:
    """A server over the ssh plugin: stdout, stderr and the exit status."""

    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> TaskSuccessResult:
        connection = context.connection()
        out = await connection.execute_command("uname -sr", check=True)
        return TaskSuccessResult(
            result={"kernel": out.strip(), "exit_status": out.exit_status},
            metadata={"connection": connection.id},
        )


@task(name="reuse_check", connection_plugin_name="netmiko")
class ReuseCheck:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        return TaskSuccessResult(metadata={"connection": context.connection().id})


def main() -> None:
    with open_lab() as lab:
        lab.start_devices(
            {"core-ios": "cisco_ios", "edge-eos": "arista_eos", "dc-nxos": "cisco_nxos"}
        )
        has_server = lab.start_sshd("linux-1")
        if not has_server:
            print("(sshd is not installed: running against the fakenos devices only)")
        settings = genja_lib.Settings.from_dict(
            {
                "ssh": {"known_hosts": str(lab.workdir / "known_hosts"), "connect_timeout": 10},
                "netmiko": {"conn_timeout": 10, "read_timeout": 30},
                "runner": {"worker_count": 2},
            }
        )
        with genja_lib.Genja.from_hosts(lab.hosts, settings) as genja:
            devices = genja.filter(lambda host: host.platform is not None)
            results = devices.run_task(ShowVersion)
            print(results.to_json(pretty=True))
            print(results.host_summary())
            if has_server:
                servers = genja.filter(lambda host: host.platform is None)
                print(servers.run_task(Uname).to_json(pretty=True))
            again = devices.run_task(ReuseCheck)
            reused = sum(
                again[h].metadata["connection"] == results[h].metadata["connection"]
                for h in results.passed_hosts
            )
            print(f"second task reused {reused} of {len(results.passed_hosts)} open connections")


if __name__ == "__main__":
    main()
