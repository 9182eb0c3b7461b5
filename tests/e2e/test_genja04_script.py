"""A script written for Genja 0.4's Python API runs unchanged: its settings classes and keys
(`runner.retry`, `inventory.plugin: FileInventoryPlugin`), `from_settings`, `with_runner`,
hosts keyed by a mapping, results read like mappings, the names it imports from `genja`. It
runs as its own process on real agents (and `serial`), and never calls `close()`: the agents
must still be gone when it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = """
import json
import os

import genja as genja_lib
from genja import (
    CoreConfig,
    Genja,
    InventoryConfig,
    LoggingConfig,
    OptionsConfig,
    RunnerConfig,
    RunnerRetryConfig,
    Settings,
    SSHConfig,
    TaskDefinition,
    TaskFailureKind,
    TaskMessageLevel,
    TaskStatus,
)
from genja.task import (
    Host,
    RetryConfig,
    TaskFailureResult,
    TaskInfo,
    TaskMessage,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)


@task(name="validate_config")
class ValidateConfig:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext):
        return TaskSuccessResult(
            summary=f"validated {host.hostname}",
            messages=[TaskMessage(level=TaskMessageLevel.INFO, text="config matches")],
        )


@task(
    name="deploy_config",
    sub_tasks=[ValidateConfig],
    retry=RetryConfig(max_attempts=3),
    options={"backup_path": "/tmp/configs"},
)
class DeployConfig:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext):
        if context.current_attempt == 1:
            return TaskFailureResult(
                message="device busy", kind=TaskFailureKind.TIMEOUT, retryable=True
            )
        return TaskSuccessResult(
            changed=True,
            summary=f"deployed {host.hostname} after backup to {task.options['backup_path']}",
            metadata={"pid": os.getpid()},
        )


def report(label, results):
    host_id = results.passed_hosts[0]
    host = results[host_id]
    print(json.dumps({
        "label": label,
        "failed": results.failed_hosts,
        "host": host_id,
        "summary": host["summary"],
        "passed": host["status"] == TaskStatus.PASSED,
        "attempts": host["execution_metadata"]["attempts"],
        "pid": host["metadata"]["pid"],
        "validated": results.sub_task("validate_config")[host_id]["summary"],
    }))


# From a settings file, on the default runner.
genja = genja_lib.Genja.from_settings_file("settings.yaml")
report("file", genja.run_task(DeployConfig, run_options=genja_lib.TaskRunOptions(max_depth=1)))
report("serial", genja.with_runner("serial").run_task(DeployConfig, max_depth=1))

# Settings built in code, as 0.4 builds them.
settings = Settings(
    core=CoreConfig(raise_on_error=False),
    inventory=InventoryConfig(
        plugin="FileInventoryPlugin", options=OptionsConfig(hosts_file="hosts.yaml")
    ),
    ssh=SSHConfig(),
    runner=RunnerConfig(
        plugin="threaded",
        max_task_depth=1,
        max_connection_attempts=3,
        retry=RunnerRetryConfig(allow=True, max_attempts=2, delay_ms=10),
    ),
    logging=LoggingConfig(enabled=False, level="info"),
)
report("code", Genja.from_settings(settings).run_task(DeployConfig))

# Hosts keyed by a mapping, the key as their id.
inline = Genja.from_hosts({"router9": Host(hostname="127.0.0.9", platform="ios")}, settings)
print(json.dumps({"label": "ids", "ids": inline.host_ids()}))
report("inline", inline.with_runner("serial").run_task(DeployConfig, max_depth=1))

definition = TaskDefinition.from_python_class(DeployConfig)
print(json.dumps({"label": "definition", "name": definition.name}))
"""


@pytest.mark.timeout(300)
def test_a_genja_04_script_runs_unchanged(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(
        textwrap.dedent(
            """\
            inventory:
              plugin: FileInventoryPlugin
              options:
                hosts_file: hosts.yaml
            runner:
              worker_count: 1
              max_connection_attempts: 3
              retry:
                allow: true
                max_attempts: 2
                delay_ms: 10
            """
        )
    )
    (tmp_path / "hosts.yaml").write_text("router1:\n  hostname: 127.0.0.1\n  platform: ios\n")
    (tmp_path / "script.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENJA_")}
    done = subprocess.run(
        [sys.executable, "script.py"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = {line["label"]: line for line in map(json.loads, done.stdout.splitlines())}

    for label, host in (("file", "router1"), ("serial", "router1"), ("code", "router1")):
        line = lines[label]
        assert line["failed"] == [], line
        assert line["host"] == host
        assert line["summary"] == "deployed 127.0.0.1 after backup to /tmp/configs"
        assert line["passed"] is True
        assert line["attempts"] == 2  # the task's retryable failure, retried by runner.retry
        assert line["validated"] == "validated 127.0.0.1"
    assert lines["ids"]["ids"] == ["router9"]
    assert lines["inline"]["summary"] == "deployed 127.0.0.9 after backup to /tmp/configs"
    assert lines["definition"]["name"] == "deploy_config"

    # The settings file's run was on a real agent; the others in the script's own process.
    agent = lines["file"]["pid"]
    assert agent != lines["serial"]["pid"]
    assert lines["serial"]["pid"] == lines["code"]["pid"] == lines["inline"]["pid"]
    # The script never closed its Genja: the agent went away with it.
    deadline = time.monotonic() + 30
    while Path(f"/proc/{agent}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{agent}").exists(), f"agent {agent} outlived the script"
