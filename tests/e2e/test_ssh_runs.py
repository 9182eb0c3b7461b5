"""Whole runs over real agent processes against real sshd, fakenos devices (netmiko, scrapli)."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import genja as genja_lib
from genja import ConfigurationError, Settings
from genja.task import (
    Host,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)
from tests.servers.fakenos_devices import FakeDevices, start_devices
from tests.servers.sshd import SSHServer

pytestmark = pytest.mark.e2e

# The agents cannot import this test module: send its task classes by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@task(name="show_version", connection_plugin_name="ssh")
class ShowVersion:
    """The issue's example, plus the connection's id to prove reuse."""

    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> TaskSuccessResult:
        connection = context.connection()
        out = await connection.execute_command(
            host.get("command", "show version"), check=host.get("check", False)
        )
        return TaskSuccessResult(
            result={"output": out, "connection": connection.id},
            summary=f"{host.hostname}: {len(out)} bytes",
        )


@task(name="connection_id", connection_plugin_name="ssh")
class ConnectionId:
    """A blocking task on the same connections."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        connection = context.connection()
        connection.execute_command(host.get("command", "show version"))
        return TaskSuccessResult(result={"connection": connection.id})


@task(name="device_version", connection_plugin_name="netmiko")
class DeviceVersion:
    """show version over netmiko, parsed with ntc-templates through the task context."""

    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> TaskSuccessResult:
        connection = context.connection()
        out = await connection.send_command("show version")
        rows = context.parse(out, command="show version")
        return TaskSuccessResult(result={"rows": rows, "connection": connection.id})


@task(name="scrapli_version", connection_plugin_name="scrapli")
class ScrapliVersion:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        connection = context.connection()
        response = connection.send_command("show version")
        return TaskSuccessResult(result={"output": response.result, "connection": connection.id})


@task(name="leaf_b", connection_plugin_name="ssh")
class LeafB:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        return TaskSuccessResult()


@task(name="leaf_a", connection_plugin_name="ssh")
class LeafA:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        return TaskSuccessResult()


@task(name="three_nodes", connection_plugin_name="ssh", sub_tasks=[LeafA, LeafB])
class ThreeNodes:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        return TaskSuccessResult()


@task(name="show_twice", connection_plugin_name="netmiko")
class ShowTwiceKillingTheDevice:
    """Kills the device (a fakenos process) between two commands of one task."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        connection = context.connection()
        first = connection.execute_command("show version")
        os.kill(host.get("device_pid"), signal.SIGKILL)
        connection.execute_command("show version", timeout=20)
        return TaskSuccessResult(result={"first": first})


@task(name="telnet_task", connection_plugin_name="telnet")
class NeedsTelnet:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        return TaskSuccessResult()


def _settings(known_hosts: Path, **ssh: Any) -> Settings:
    return Settings.from_dict(
        {
            # Generous: these machines are shared, and a loaded sshd is slow to say hello.
            "ssh": {"known_hosts": str(known_hosts), "connect_timeout": 30, **ssh},
            "runner": {"worker_count": 2, "options": {"task_timeout": 90}},
        }
    )


def _sshd_host(server: SSHServer, **fields: Any) -> dict[str, Any]:
    return {
        "hostname": "127.0.0.1",
        "port": server.port,
        "username": server.username,
        "password": server.password,
        "data": {"command": "uname -s"},
        **fields,
    }


def _device_host(devices: FakeDevices, name: str, **fields: Any) -> dict[str, Any]:
    secret = {"secret": devices.password}
    options = {"netmiko": {"extras": secret}, "scrapli": {"extras": {"auth_secondary": secret}}}
    options["scrapli"]["extras"] = {"auth_secondary": devices.password}
    return {**devices.fields(name), "connection_options": options, **fields}


@pytest.fixture
def fleet(sshd: SSHServer) -> dict[str, dict[str, Any]]:
    """100 hosts mapped onto one sshd."""
    return {f"srv{i:03}": _sshd_host(sshd) for i in range(100)}


def _ids(results: Any) -> dict[str, str]:
    return {host_id: results[host_id].result["connection"] for host_id in results.hosts}


@pytest.mark.timeout(600)
def test_show_version_over_100_hosts_then_reuse(
    fleet: dict[str, dict[str, Any]], sshd: SSHServer, known_hosts: Path
):
    before = sshd.logins()
    with genja_lib.Genja.from_hosts(fleet, _settings(known_hosts)) as genja:
        first = genja.run_task(ShowVersion)
        assert first.failed_hosts == [], {h: first[h] for h in first.failed_hosts}
        assert len(first.passed_hosts) == 100
        assert first["srv042"].result["output"] == "Linux\n"
        assert first["srv042"].summary == "127.0.0.1: 6 bytes"
        assert sshd.logins() - before == 100
        ids = _ids(first)
        assert len(set(ids.values())) == 100

        second = genja.run_task(ConnectionId)
        assert second.failed_hosts == [], {h: second[h] for h in second.failed_hosts}
        assert _ids(second) == ids  # every host reused its connection
        assert sshd.logins() - before == 100  # and sshd saw no new login

        genja.close_connections()
        third = genja.run_task(ConnectionId)
        assert third.failed_hosts == [], {h: third[h] for h in third.failed_hosts}
        assert not set(_ids(third).values()) & set(ids.values())
        assert sshd.logins() - before == 200


@pytest.mark.timeout(300)
def test_device_clis_through_netmiko_and_scrapli_reuse_their_sessions(
    devices: FakeDevices, known_hosts: Path
):
    hosts = {f"ios{i}": _device_host(devices, "r-ios") for i in range(4)}
    hosts.update({f"nxos{i}": _device_host(devices, "r-nxos") for i in range(4)})
    settings = Settings.from_dict(
        {
            "netmiko": {"conn_timeout": 30, "read_timeout": 60},
            "scrapli": {"transport": "asyncssh", "timeout_ops": 60},
            "runner": {"worker_count": 2, "options": {"task_timeout": 120}},
        }
    )
    with genja_lib.Genja.from_hosts(hosts, settings) as genja:
        first = genja.run_task(DeviceVersion)
        assert first.failed_hosts == [], {h: first[h] for h in first.failed_hosts}
        assert first["ios2"].result["rows"][0]["hostname"] == "r-ios"
        assert first["nxos1"].result["rows"][0]["os"]
        again = genja.run_task(DeviceVersion)
        assert _ids(again) == _ids(first)  # the same netmiko sessions
        scrapli = genja.run_task(ScrapliVersion)
        assert scrapli.failed_hosts == [], {h: scrapli[h] for h in scrapli.failed_hosts}
        assert "Cisco" in scrapli["ios0"].result["output"]
        assert _ids(genja.run_task(ScrapliVersion)) == _ids(scrapli)


@pytest.mark.parametrize("runner", ["agents", "threaded", "serial"])
def test_one_failed_login_per_host_per_run_and_one_log_line(
    sshd: SSHServer, silent_port: int, tmp_path: Path, runner: str
):
    """A 3-node tree on a host with a bad password costs one failed login (sshd's log counts
    them), the later nodes fail at once with the same kind and message; the log gets one line
    per failed host and no paramiko traceback. Agents and the in-process runners alike."""
    log_file = tmp_path / "genja.log"
    hosts = {
        "bad-pw": _sshd_host(sshd, password="wrong-secret-456"),
        "mute": _sshd_host(
            sshd, port=silent_port, connection_options={"ssh": {"extras": {"connect_timeout": 1}}}
        ),
    }
    settings = Settings.from_dict(
        {
            "ssh": {"known_hosts": str(tmp_path / "known_hosts"), "connect_timeout": 30},
            "runner": {"plugin": runner, "worker_count": 1},
            "logging": {"enabled": True, "level": "INFO", "log_file": str(log_file)},
        }
    )
    start = len(sshd.log_text())
    with genja_lib.Genja.from_hosts(hosts, settings) as genja:
        results = genja.run_task(ThreeNodes, max_depth=1)
        failed_logins = sshd.log_text()[start:].count("Failed password for")
        assert failed_logins == 1
        nodes = [results["bad-pw"], *(results.sub_task(n)["bad-pw"] for n in ("leaf_a", "leaf_b"))]
        assert {(n.kind, n.message) for n in nodes} == {
            (TaskFailureKind.AUTHENTICATION, nodes[0].message)
        }
        mute = [results["mute"], results.sub_task("leaf_b")["mute"]]
        assert all(n.kind is TaskFailureKind.TIMEOUT for n in mute)
        # A new run tries once more.
        genja.run_task(ThreeNodes, max_depth=1)
        assert sshd.log_text()[start:].count("Failed password for") == 2
    text = log_file.read_text()
    assert "Traceback" not in text
    assert "paramiko" not in text
    assert "wrong-secret-456" not in text
    assert (
        sum("bad-pw" in line and "authentication failed" in line for line in text.splitlines()) == 2
    )


def test_failures_are_classified_and_the_run_finishes(
    sshd: SSHServer, silent_port: int, known_hosts: Path
):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_port = closed.getsockname()[1]
        hosts = {
            "good": _sshd_host(sshd),
            "exit-3": _sshd_host(sshd, data={"command": "echo no >&2; exit 3", "check": True}),
            "bad-password": _sshd_host(sshd, password="wrong-secret-123"),
            "refused": _sshd_host(sshd, port=refused_port),
            # A per-host override of the connect timeout (the others keep the settings' 30 s).
            "silent": _sshd_host(
                sshd,
                port=silent_port,
                connection_options={"ssh": {"extras": {"connect_timeout": 2}}},
            ),
        }
        with genja_lib.Genja.from_hosts(hosts, _settings(known_hosts)) as genja:
            results = genja.run_task(ShowVersion)
    assert results.passed_hosts == ["good"]
    expected = {
        "bad-password": (TaskFailureKind.AUTHENTICATION, False, "authentication failed"),
        "refused": (TaskFailureKind.CONNECTION, True, "refused"),
        "silent": (TaskFailureKind.TIMEOUT, True, "no SSH banner within 2s"),
        "exit-3": (TaskFailureKind.COMMAND, False, "exited with status 3: no"),
    }
    for host_id, (kind, retryable, words) in expected.items():
        failure = results[host_id]
        assert isinstance(failure, TaskFailureResult)
        assert failure.kind is kind, failure
        assert failure.retryable is retryable
        assert host_id in failure.message
        assert words in failure.message
    everything = results.to_json()
    assert "wrong-secret-123" not in everything
    assert sshd.password not in everything


@pytest.fixture
def doomed(known_hosts: Path) -> Iterator[FakeDevices]:
    lab = start_devices({"r-doomed": "cisco_ios"})
    yield lab
    lab.stop()


def test_device_closing_the_session_mid_run(doomed: FakeDevices, known_hosts: Path):
    hosts = {"doomed": _device_host(doomed, "r-doomed", data={"device_pid": doomed.process.pid})}
    hosts["doomed"]["connection_options"] = {"netmiko": {"extras": {"read_timeout": 20}}}
    with genja_lib.Genja.from_hosts(hosts, _settings(known_hosts)) as genja:
        results = genja.run_task(ShowTwiceKillingTheDevice)
        failure = results["doomed"]
        assert isinstance(failure, TaskFailureResult)
        assert failure.kind is TaskFailureKind.CONNECTION
        assert "closed the session" in failure.message, failure
        # The next task finds the cached connection dead, logs in once more, and is refused.
        again = genja.run_task(DeviceVersion)
        failure = again["doomed"]
        assert isinstance(failure, TaskFailureResult)
        assert failure.kind is TaskFailureKind.CONNECTION
        assert "refused" in failure.message


def test_unknown_connection_plugin_fails_the_whole_run(known_hosts: Path):
    genja = genja_lib.Genja.from_hosts({"r1": {}}, _settings(known_hosts))
    with genja, pytest.raises(ConfigurationError, match=r"'telnet_task'.*'telnet'.*ssh"):
        genja.run_task(NeedsTelnet)


def test_login_cap_serialises_handshakes(sshd: SSHServer, known_hosts: Path):
    """With one agent capped at one login in progress, sshd sees each login accepted before
    the next connection arrives."""
    start = len(sshd.log_text())
    hosts = {f"capped{i}": _sshd_host(sshd) for i in range(8)}
    settings = Settings.from_dict(
        {
            "ssh": {"known_hosts": str(known_hosts)},
            "runner": {"worker_count": 1, "options": {"max_logins_per_agent": 1}},
        }
    )
    with genja_lib.Genja.from_hosts(hosts, settings) as genja:
        results = genja.run_task(ShowVersion)
    assert len(results.passed_hosts) == 8
    events = [
        "connect" if "Connection from" in line else "accept"
        for line in sshd.log_text()[start:].splitlines()
        if "Connection from" in line or "Accepted password" in line
    ]
    assert events == ["connect", "accept"] * 8
