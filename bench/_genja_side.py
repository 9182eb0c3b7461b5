"""The genja half of each scenario: task classes (agents import them from here) and sessions.

A session builds its inputs untimed (`setup`), then runs the scenario once per phase (`run`,
timed by the worker), then checks that every host passed (`verify`, untimed).
"""

from __future__ import annotations

import asyncio
import inspect
import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import genja
from bench import _workload
from genja.task import (
    Host,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)

_OUTPUT = _workload.command_output()


class SkipScenario(Exception):
    """The scenario cannot run here (a plugin or server is missing); reported, not failed."""


# ---------------------------------------------------------------- tasks


@task(name="noop")
class Noop:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        return TaskSuccessResult()


@task(name="parse")
class Parse:
    def start(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> TaskSuccessResult | TaskFailureResult:
        summary = _workload.parse(_OUTPUT)
        if summary["interfaces"] != _workload.EXPECTED_INTERFACES:
            return TaskFailureResult(message=f"parsed {summary['interfaces']} interfaces")
        return TaskSuccessResult(metadata=summary)


def _leaf(self: Any, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
    return TaskSuccessResult()


@task(name="check_a")
class CheckA:
    start = _leaf


@task(name="check_b")
class CheckB:
    start = _leaf


@task(name="check_c")
class CheckC:
    start = _leaf


_CHECKS = [CheckA, CheckB, CheckC]


@task(name="stage_a", sub_tasks=_CHECKS)
class StageA:
    start = _leaf


@task(name="stage_b", sub_tasks=_CHECKS)
class StageB:
    start = _leaf


@task(name="stage_c", sub_tasks=_CHECKS)
class StageC:
    start = _leaf


@task(name="deploy", sub_tasks=[StageA, StageB, StageC])
class Deploy:
    """The tree scenario's root: 3 stages below it, 3 checks below each stage (13 nodes)."""

    start = _leaf


TREE_NODES = 13


@task(name="ssh_parse", connection_plugin_name="ssh")
class SshParse:
    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> TaskSuccessResult | TaskFailureResult:
        connection = context.connection()
        command = str(host.data["command"])
        output = await _execute(connection, command)
        summary = _workload.parse(output)
        if summary["interfaces"] != _workload.EXPECTED_INTERFACES:
            return TaskFailureResult(message=f"parsed {summary['interfaces']} interfaces")
        return TaskSuccessResult(metadata=summary)


@task(name="ssh_textfsm", connection_plugin_name="ssh")
class SshTextfsm:
    """A blocking task, as most users write them: the command over the ssh plugin, its output
    parsed by ntc-templates through `context.parse` (the host's platform picks the template)."""

    def start(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> TaskSuccessResult | TaskFailureResult:
        output = context.connection().execute_command(str(host.data["command"]))
        rows = context.parse(output, command=_workload.TEXTFSM_COMMAND)
        if len(rows) != _workload.TEXTFSM_INTERFACES:
            return TaskFailureResult(message=f"parsed {len(rows)} interfaces")
        return TaskSuccessResult(metadata={"interfaces": len(rows)})


@task(name="show_version", connection_plugin_name="netmiko")
class ShowVersion:
    """Nornir's side runs nornir_netmiko's netmiko_send_command: the same library here."""

    def start(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> TaskSuccessResult | TaskFailureResult:
        output = str(context.connection().send_command("show version"))
        if "Cisco" not in output:
            return TaskFailureResult(message="unexpected show version output")
        return TaskSuccessResult(summary=output.splitlines()[0] if output else "")


async def _execute(connection: Any, command: str) -> str:
    """The ssh plugin's `execute_command`, whether it is a coroutine or a blocking call."""
    if inspect.iscoroutinefunction(connection.execute_command):
        result = await connection.execute_command(command)
    else:
        result = await asyncio.to_thread(connection.execute_command, command)
    if isinstance(result, bytes):
        return result.decode()
    return str(getattr(result, "stdout", getattr(result, "result", result)))


# ---------------------------------------------------------------- sessions


def plugin_available(name: str) -> bool:
    return any(point.name == name for point in entry_points(group="genja.connections"))


_CONNECTION_TASKS = {"ssh": SshParse, "ssh_textfsm": SshTextfsm, "fakenos": ShowVersion}


def runner_of(name: str) -> tuple[str, int | None]:
    """(runner plugin, N of `-cN`) of a bench runner name: `genja` is the agents at their
    defaults, `genja-threaded` / `genja-serial` the in-process runners, `genja-cN` the agents
    at `matched_concurrency(N)`."""
    suffix = name.removeprefix("genja").removeprefix("-")
    if suffix.startswith("c") and suffix[1:].isdigit():
        return "agents", int(suffix[1:])
    return suffix or "agents", None


def matched_concurrency(count: int) -> dict[str, int]:
    """Runner options for `genja-cN`: what `nornir-tN` does with its N worker threads, at
    most N hosts at work and N logins in flight, spread over the local agents."""
    agents = os.cpu_count() or 1
    return {
        "host_concurrency": max(1, -(-count // agents)),
        "max_logins": count,
        "max_logins_per_agent": 0,
    }


class GenjaSession:
    phases = ("cold", "warm")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.count = int(spec["hosts"])
        self.genja: genja.Genja | None = None
        self.task: type = Noop
        self.max_depth = 0
        self.nodes = 1

    def _hosts(self) -> dict[str, dict[str, Any]]:
        return {name: {"hostname": name} for name in _workload.host_names(self.count)}

    def setup(self) -> None:
        scenario = self.spec["scenario"]
        runner_plugin, concurrency = runner_of(str(self.spec["runner"]))
        settings: dict[str, Any] = {"runner": {}}
        hosts = self._hosts()
        if scenario == "noop":
            self.task = Noop
        elif scenario == "parse":
            self.task = Parse
        elif scenario == "tree":
            self.task, self.max_depth, self.nodes = Deploy, 2, TREE_NODES
        elif scenario in _CONNECTION_TASKS:
            self.task = _CONNECTION_TASKS[scenario]
            plugin = "netmiko" if scenario == "fakenos" else "ssh"
            if not plugin_available(plugin):
                raise SkipScenario(f"plugin not available (no {plugin!r} in genja.connections)")
            hosts, settings = _ssh_inputs(self.spec)
        else:
            raise ValueError(f"unknown scenario {scenario!r}")
        settings["runner"]["plugin"] = runner_plugin
        if concurrency is not None:
            settings["runner"]["options"] = matched_concurrency(concurrency)
        self.genja = genja.Genja(
            genja.Inventory.from_hosts(hosts), genja.Settings.from_dict(settings)
        )

    def run(self, phase: str) -> Any:
        assert self.genja is not None
        return self.genja.run_task(self.task, max_depth=self.max_depth)

    def split(self) -> dict[str, float] | None:
        """The cold run's time in the agents runtime: until the agents were up, until the
        first host came back, until the last (seconds from the run's start)."""
        timing = getattr(self.genja.runtime, "last_timing", None) if self.genja else None
        if timing is None:
            return None
        return {
            "agents_ready": timing.agents_ready,
            "first_result": timing.first_result,
            "finished": timing.finished,
        }

    def verify(self, results: Any) -> int:
        summary = results.host_summary()
        if summary.passed != self.count or summary.total != self.count:
            failed = results.failed_hosts[:3]
            detail = "; ".join(f"{h}: {results.host(h)}" for h in failed)
            raise AssertionError(f"genja: {summary} of {self.count} hosts: {detail}")
        nodes = results.task_summary().total
        if nodes.passed != self.count * self.nodes:
            raise AssertionError(f"genja: {nodes} node results, expected {self.count * self.nodes}")
        return summary.passed

    def close(self) -> None:
        if self.genja is not None:
            self.genja.close()


def _ssh_inputs(spec: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Hosts and settings for the ssh plugin: the targets the driver started for this run.
    The plugin always sets TCP_NODELAY; the throwaway key goes in the connection options."""
    target = spec["target"]
    ports: list[int] = target["ports"]
    command, platform = _workload.command_and_platform(spec)
    extras: dict[str, Any] = {}
    if target.get("key_file"):
        extras.update(key_file=target["key_file"], look_for_keys=False, allow_agent=False)
    hosts = {
        name: {
            "hostname": "127.0.0.1",
            "port": ports[i % len(ports)],
            "username": target["username"],
            "password": target.get("password"),
            "platform": platform,
            "data": {"command": command},
            "connection_options": {
                "ssh": {"extras": extras},
                # fakenos' IOS answers `show version` in enable mode (as on the Nornir side).
                "netmiko": {"extras": {"secret": target.get("password")}},
            },
        }
        for i, name in enumerate(_workload.host_names(int(spec["hosts"])))
    }
    # Throwaway local sshd keys: check nothing and write nothing to ~/.ssh/known_hosts, as the
    # Nornir side's paramiko AutoAddPolicy does.
    # Timeouts above netmiko's defaults (10 s): this shared machine is sometimes very busy.
    settings: dict[str, Any] = {
        "runner": {},
        "ssh": {"host_key_policy": "accept-any"},
        "netmiko": {"read_timeout": 120, "conn_timeout": 60},
    }
    if target.get("ssh_config"):
        settings["ssh"]["config_file"] = target["ssh_config"]
    return hosts, settings


class GenjaInventorySession:
    phases = ("load",)

    def __init__(self, spec: dict[str, Any]) -> None:
        self.count = int(spec["hosts"])
        self.files = [Path(p) for p in spec["files"]]

    def setup(self) -> None:
        pass

    def run(self, phase: str) -> Any:
        return genja.Inventory.from_files(*self.files)

    def verify(self, inventory: Any) -> int:
        if len(inventory.hosts) != self.count:
            raise AssertionError(f"genja: loaded {len(inventory.hosts)} of {self.count} hosts")
        host = inventory.hosts[_workload.host_names(1)[0]]
        if host.platform != "ios" or host.data.get("site") != "s000" or host.port != 22:
            raise AssertionError(f"genja: inheritance not resolved for {host.id}: {host}")
        return len(inventory.hosts)

    def close(self) -> None:
        pass
