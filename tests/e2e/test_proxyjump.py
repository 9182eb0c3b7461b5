"""ProxyJump: a device in one namespace, reachable only through an sshd in another."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import genja as genja_lib
from genja import Settings
from genja.task import (
    Host,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)
from tests.servers.netns import Namespaces, make_namespaces, netns_unavailable
from tests.servers.sshd import SSHServer, sshd_available, start_sshd

pytestmark = pytest.mark.e2e
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@task(name="show_version", connection_plugin_name="ssh")
class ShowVersion:
    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> TaskSuccessResult:
        out = await context.connection().execute_command("echo behind; hostname -I")
        return TaskSuccessResult(result={"output": out})


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Namespaces, SSHServer, SSHServer]]:
    for reason in (sshd_available(), netns_unavailable()):
        if reason is not None:
            pytest.skip(reason)
    spaces = make_namespaces()
    bastion: SSHServer | None = None
    device: SSHServer | None = None
    try:
        bastion = start_sshd(address=spaces.bastion_address, port=22, netns=spaces.bastion)
        device = start_sshd(address=spaces.device_address, port=22, netns=spaces.device)
        yield spaces, bastion, device
    finally:
        if device is not None:
            device.stop()
        if bastion is not None:
            bastion.stop()
        spaces.remove()


def test_device_behind_a_bastion(
    lab: tuple[Namespaces, SSHServer, SSHServer], tmp_path: Path
) -> None:
    spaces, bastion, device = lab
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host bastion\n  HostName {spaces.bastion_address}\n  User {bastion.username}\n"
        f"  IdentityFile {bastion.key_file}\n\n"
        f"Host r-behind\n  HostName {spaces.device_address}\n  Port {device.port}\n"
        "  ProxyJump bastion\n"
    )
    common: dict[str, Any] = {"username": device.username, "password": device.password}
    hosts = {
        "r-behind": common,
        "r-behind-2": {**common, "hostname": "r-behind"},
        "r-direct": {**common, "hostname": spaces.device_address, "port": device.port},
        "r-bad-jump": {
            **common,
            "hostname": spaces.device_address,
            "port": device.port,
            "connection_options": {
                "ssh": {"extras": {"proxy_jump": f"nobody@{spaces.bastion_address}:22"}}
            },
        },
    }
    settings = Settings.from_dict(
        {
            "ssh": {
                "config_file": str(config),
                "known_hosts": str(tmp_path / "known_hosts"),
                "connect_timeout": 30,
            },
            "runner": {"worker_count": 1},
        }
    )
    with genja_lib.Genja.from_hosts(hosts, settings) as genja:
        results = genja.run_task(ShowVersion)
    for host_id in ("r-behind", "r-behind-2"):
        output = results[host_id].result["output"]
        assert output.startswith("behind\n"), results[host_id]
        assert spaces.device_address in output
    direct = results["r-direct"]
    assert isinstance(direct, TaskFailureResult)
    assert direct.kind is TaskFailureKind.CONNECTION
    assert "r-direct" in direct.message
    bad_jump = results["r-bad-jump"]
    assert isinstance(bad_jump, TaskFailureResult)
    assert bad_jump.kind is TaskFailureKind.AUTHENTICATION
    assert "via jump host nobody@" in bad_jump.message
    assert "'nobody'" in bad_jump.message
    # Two devices behind one bastion: one login to the bastion, shared.
    assert bastion.logins() == 1
