"""The Nornir half of each scenario: task functions, a paramiko connection plugin, sessions."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.configuration import Config
from nornir.core.inventory import (
    ConnectionOptions,
    Defaults,
    Groups,
    Host,
    Hosts,
    Inventory,
)
from nornir.core.plugins.connections import ConnectionPluginRegister
from nornir.core.task import MultiResult, Result, Task
from nornir.plugins.runners import SerialRunner, ThreadedRunner

from bench import _workload

_OUTPUT = _workload.command_output()
TREE_NODES = 13
_PARAMIKO = "bench_paramiko"


def noop(task: Task) -> Result:
    return Result(host=task.host)


def parse(task: Task) -> Result:
    summary = _workload.parse(_OUTPUT)
    failed = summary["interfaces"] != _workload.EXPECTED_INTERFACES
    return Result(host=task.host, result=summary, failed=failed)


def _check(task: Task) -> Result:
    return Result(host=task.host)


def _stage(task: Task) -> Result:
    for name in ("check_a", "check_b", "check_c"):
        task.run(task=_check, name=name)
    return Result(host=task.host)


def deploy(task: Task) -> Result:
    """Root of the tree scenario: 3 stages, 3 checks each; 13 results per host."""
    for name in ("stage_a", "stage_b", "stage_c"):
        task.run(task=_stage, name=name)
    return Result(host=task.host)


class ParamikoConnection:
    """A paramiko SSHClient per host, kept open by Nornir's connection cache, TCP_NODELAY on."""

    def open(  # noqa: PLR0917 (Nornir's ConnectionPlugin signature)
        self,
        hostname: str | None,
        username: str | None,
        password: str | None,
        port: int | None,
        platform: str | None,
        extras: dict[str, Any] | None = None,
        configuration: Config | None = None,
    ) -> None:
        import paramiko  # here: a user's no-op script would not import it

        extras = extras or {}
        sock = socket.create_connection((hostname or "127.0.0.1", port or 22), timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # throwaway local sshd
        client.connect(
            hostname or "127.0.0.1",
            port=port or 22,
            username=username,
            key_filename=extras.get("key_filename"),
            look_for_keys=False,
            allow_agent=False,
            sock=sock,
            timeout=60,
            banner_timeout=60,
            auth_timeout=60,
        )
        self.connection = client

    def close(self) -> None:
        self.connection.close()


def ssh_parse(task: Task) -> Result:
    client = task.host.get_connection(_PARAMIKO, task.nornir.config)
    _, stdout, _ = client.exec_command(task.host["command"], timeout=60)
    output = stdout.read().decode()
    summary = _workload.parse(output)
    failed = summary["interfaces"] != _workload.EXPECTED_INTERFACES
    return Result(host=task.host, result=summary, failed=failed)


def ssh_textfsm(task: Task) -> Result:
    client = task.host.get_connection(_PARAMIKO, task.nornir.config)
    _, stdout, _ = client.exec_command(task.host["command"], timeout=60)
    rows = _workload.textfsm_parse(stdout.read().decode())
    failed = len(rows) != _workload.TEXTFSM_INTERFACES
    return Result(host=task.host, result={"interfaces": len(rows)}, failed=failed)


def show_version(task: Task) -> Result:
    from nornir_netmiko.tasks import netmiko_send_command

    result = task.run(task=netmiko_send_command, command_string="show version", enable=True)
    output = str(result[0].result)
    return Result(host=task.host, result=output, failed="Cisco" not in output)


def _runner(name: str) -> Any:
    if name == "nornir-serial":
        return SerialRunner()
    return ThreadedRunner(num_workers=int(name.removeprefix("nornir-t")))


class NornirSession:
    phases = ("cold", "warm")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.count = int(spec["hosts"])
        self.nornir: Nornir | None = None
        self.task: Any = noop
        self.nodes = 1

    def setup(self) -> None:
        scenario = self.spec["scenario"]
        defaults = Defaults()
        names = _workload.host_names(self.count)
        hosts = Hosts({name: Host(name=name, hostname=name, defaults=defaults) for name in names})
        if scenario == "noop":
            self.task = noop
        elif scenario == "parse":
            self.task = parse
        elif scenario == "tree":
            self.task, self.nodes = deploy, TREE_NODES
        elif scenario in ("ssh", "ssh_textfsm"):
            ConnectionPluginRegister.register(_PARAMIKO, ParamikoConnection)  # type: ignore[arg-type]
            hosts = self._ssh_hosts(names, defaults)
            self.task = ssh_parse if scenario == "ssh" else ssh_textfsm
        elif scenario == "fakenos":
            ConnectionPluginRegister.auto_register()  # what InitNornir does: finds netmiko
            hosts = self._ssh_hosts(names, defaults)
            self.task, self.nodes = show_version, 2
        else:
            raise ValueError(f"unknown scenario {scenario!r}")
        inventory = Inventory(hosts=hosts, groups=Groups(), defaults=defaults)
        self.nornir = Nornir(inventory=inventory, runner=_runner(self.spec["runner"]))

    def _ssh_hosts(self, names: list[str], defaults: Defaults) -> Hosts:
        target = self.spec["target"]
        ports = target["ports"]
        command, platform = _workload.command_and_platform(self.spec)
        options = {
            _PARAMIKO: ConnectionOptions(extras={"key_filename": target.get("key_file")}),
            # fakenos' IOS answers `show version` only in enable mode.
            "netmiko": ConnectionOptions(extras={"secret": target.get("password")}),
        }
        return Hosts(
            {
                name: Host(
                    name=name,
                    hostname="127.0.0.1",
                    port=ports[i % len(ports)],
                    username=target["username"],
                    password=target.get("password"),
                    platform=platform,
                    data={"command": command},
                    connection_options=options,
                    defaults=defaults,
                )
                for i, name in enumerate(names)
            }
        )

    def run(self, phase: str) -> Any:
        assert self.nornir is not None
        return self.nornir.run(task=self.task)

    def verify(self, results: Any) -> int:
        passed = sum(1 for multi in results.values() if not multi.failed)
        if len(results) != self.count or passed != self.count:
            failed = [h for h, m in results.items() if m.failed][:3]
            detail = "; ".join(f"{h}: {_failure(results[h])}" for h in failed)
            raise AssertionError(f"nornir: {passed} of {self.count} hosts passed: {detail}")
        for multi in results.values():
            if _count(multi) != self.nodes:
                raise AssertionError(
                    f"nornir: {_count(multi)} results for a host, expected {self.nodes}"
                )
        return passed

    def close(self) -> None:
        if self.nornir is not None:
            self.nornir.close_connections()


def _failure(results: Any) -> str:
    """The innermost failed result's error, in one line."""
    failed = [r for r in results if r.failed] or list(results)
    last = failed[-1]
    if isinstance(last, MultiResult):
        return _failure(last)
    error = last.exception
    text = f"{type(error).__name__}: {error}" if error is not None else str(last.result)
    return " ".join(text.split())[:300]


def _count(results: Any) -> int:
    """Results in a MultiResult, sub-tasks' own MultiResults counted through."""
    return sum(_count(item) if isinstance(item, MultiResult) else 1 for item in results)


class NornirInventorySession:
    phases = ("load",)

    def __init__(self, spec: dict[str, Any]) -> None:
        self.count = int(spec["hosts"])
        self.files = [str(Path(p)) for p in spec["files"]]

    def setup(self) -> None:
        pass

    def run(self, phase: str) -> Any:
        hosts_file, groups_file, defaults_file = self.files
        return InitNornir(
            runner={"plugin": "threaded", "options": {"num_workers": 20}},
            inventory={
                "plugin": "SimpleInventory",
                "options": {
                    "host_file": hosts_file,
                    "group_file": groups_file,
                    "defaults_file": defaults_file,
                },
            },
            logging={"enabled": False},
        )

    def verify(self, nornir: Any) -> int:
        hosts = nornir.inventory.hosts
        if len(hosts) != self.count:
            raise AssertionError(f"nornir: loaded {len(hosts)} of {self.count} hosts")
        host = hosts[_workload.host_names(1)[0]]
        if host.platform != "ios" or host["site"] != "s000" or host.port != 22:
            raise AssertionError(f"nornir: inheritance not resolved for {host.name}")
        return len(hosts)

    def close(self) -> None:
        pass
