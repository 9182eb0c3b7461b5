"""Dry runs end to end: on real agent processes and under `serial`, against the test sshd: the
dry-run entry points run on an open connection, a task without dry-run support fails its hosts,
and every result says it was a dry run (tree, JSON, JSONL, CLI)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle
import pytest

import genja
from genja import TaskRunOptions
from genja.task import (
    Host,
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)
from tests.conftest import MakeGenja
from tests.e2e._ssh_hosts import ssh_settings, sshd_host
from tests.servers.sshd import SSHServer

pytestmark = pytest.mark.e2e

# The agents cannot import this test module: send its task classes by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

RUNNERS = pytest.mark.parametrize("runner", ["agents", "serial"])


@task(name="audit_log")
class AuditLog:
    """No dry-run support: in a dry run its hosts fail and it is not called."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return TaskSuccessResult(summary="logged")


@task(
    name="set_motd",
    connection_plugin_name="ssh",
    supports_dry_run=True,
    sub_tasks=[AuditLog],
    options={"motd": "maintenance tonight"},
)
class SetMotd:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return TaskSuccessResult(
            changed=True, summary="motd set", metadata={"dry": context.dry_run}
        )

    def dry_run(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        kernel = context.connection().execute_command("uname -s").strip()  # read-only
        return TaskSuccessResult(
            changed=True,
            diff=f"+{task.options['motd']}",
            summary=f"would set the motd on {kernel}",
            metadata={"dry": context.dry_run},
        )


@task(name="set_motd_async", connection_plugin_name="ssh", supports_dry_run=True)
class SetMotdAsync:
    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> HostTaskResult:
        return TaskSuccessResult(changed=True, summary="motd set")

    async def dry_run_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> HostTaskResult:
        kernel = (await context.connection().execute_command("uname -s")).strip()
        return TaskSuccessResult(changed=True, summary=f"would set the motd on {kernel}")


def _dry(result: HostTaskResult) -> bool:
    assert result.execution_metadata is not None
    return result.execution_metadata.dry_run


@RUNNERS
@pytest.mark.timeout(300)
def test_a_dry_run_plans_on_an_open_connection_and_fails_tasks_without_support(
    make_genja: MakeGenja, runner: str, sshd: SSHServer, known_hosts: Path, tmp_path: Path
) -> None:
    jsonl = tmp_path / "dry.jsonl"
    g = make_genja(
        {"s1": sshd_host(sshd)},
        runner=runner,
        settings=ssh_settings(known_hosts),
        processors={"jsonl": genja.JsonlProcessor(jsonl)},
    )
    before = sshd.logins()
    results = g.run_task(SetMotd, run_options=TaskRunOptions(max_depth=1, dry_run=True))
    planned = results["s1"]
    assert planned == TaskSuccessResult(
        changed=True,
        diff="+maintenance tonight",
        summary="would set the motd on Linux",
        metadata={"dry": True},
    )
    assert sshd.logins() - before == 1  # the connection was opened for the dry run
    refused = results.sub_task("audit_log")["s1"]
    assert isinstance(refused, TaskFailureResult)
    assert refused.kind is TaskFailureKind.UNSUPPORTED
    assert "task 'audit_log' does not support dry-run" in refused.message
    assert results.failed_hosts == ["s1"]
    assert (_dry(planned), _dry(refused)) == (True, True)
    as_dict = results.to_dict()
    assert as_dict["hosts"]["s1"]["execution_metadata"]["dry_run"] is True
    assert as_dict["sub_tasks"]["audit_log"]["hosts"]["s1"]["execution_metadata"]["dry_run"]

    applied = g.run_task(SetMotd, max_depth=1)  # the same tree, for real
    assert applied["s1"] == TaskSuccessResult(
        changed=True, summary="motd set", metadata={"dry": False}
    )
    assert applied.sub_task("audit_log")["s1"] == TaskSuccessResult(summary="logged")
    assert not _dry(applied["s1"])
    assert applied.to_dict()["hosts"]["s1"]["execution_metadata"]["dry_run"] is False


@RUNNERS
@pytest.mark.timeout(300)
def test_an_async_task_plans_with_dry_run_async(
    make_genja: MakeGenja, runner: str, sshd: SSHServer, known_hosts: Path
) -> None:
    g = make_genja({"s1": sshd_host(sshd)}, runner=runner, settings=ssh_settings(known_hosts))
    result = g.run_task(SetMotdAsync, run_options=TaskRunOptions(dry_run=True))["s1"]
    assert result == TaskSuccessResult(changed=True, summary="would set the motd on Linux")
    assert _dry(result)


@task(name="plan_only", supports_dry_run=True, processors=["jsonl"])
class PlanOnly:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return TaskSuccessResult(summary="applied")

    def dry_run(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return TaskSuccessResult(summary="planned")


@RUNNERS
def test_run_options_reach_every_entry_point(
    make_genja: MakeGenja, runner: str, tmp_path: Path
) -> None:
    jsonl = tmp_path / "r.jsonl"
    g = make_genja(
        {"r1": {}, "r2": {}}, runner=runner, processors={"jsonl": genja.JsonlProcessor(jsonl)}
    )
    dry = TaskRunOptions(dry_run=True)

    def planned(results: genja.TaskResults) -> None:
        for host_id in ("r1", "r2"):
            assert results[host_id] == TaskSuccessResult(summary="planned")
            assert _dry(results[host_id])

    for results in g.run_tasks([PlanOnly, PlanOnly], run_options=dry):
        planned(results)
    planned(asyncio.run(g.run_task_async(PlanOnly, run_options=dry)))
    (async_many,) = asyncio.run(g.run_tasks_async([PlanOnly], run_options=dry))
    planned(async_many)
    finished = [
        e for e in g.stream_task(PlanOnly, run_options=dry) if isinstance(e, genja.RunFinished)
    ]
    planned(finished[0].results)

    async def events() -> list[genja.RunEvent]:
        return [event async for event in g.run_task_events(PlanOnly, run_options=dry)]

    nodes = [e for e in asyncio.run(events()) if isinstance(e, genja.NodeFinished)]
    assert {e.result.summary for e in nodes} == {"planned"}
    assert all(_dry(e.result) for e in nodes)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert {line["execution_metadata"]["dry_run"] for line in lines} == {True}
    assert g.run_task(PlanOnly)["r1"].summary == "applied"  # the options were per run


CLI_TASKS = """
from genja.task import TaskSuccessResult, task


@task(name="plan_cli", supports_dry_run=True)
class PlanCli:
    def start(self, task, host, context):
        return TaskSuccessResult(changed=True, summary="applied")

    def dry_run(self, task, host, context):
        return TaskSuccessResult(changed=True, summary=f"would change {host.id}")
"""


def test_the_cli_runs_a_dry_run(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(CLI_TASKS)
    (tmp_path / "hosts.yaml").write_text("r1: {}\n")
    (tmp_path / "settings.yaml").write_text(
        textwrap.dedent(
            """\
            inventory:
              options:
                hosts_file: hosts.yaml
            runner:
              worker_count: 1
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "genja", "run", "tasks.py:PlanCli", "--dry-run", "--json", "r.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    tree = json.loads((tmp_path / "r.json").read_text())
    host = tree["hosts"]["r1"]
    assert (host["summary"], host["execution_metadata"]["dry_run"]) == ("would change r1", True)
    assert "would change r1" in done.stdout
    assert done.stdout.rstrip().endswith("(dry run)")
