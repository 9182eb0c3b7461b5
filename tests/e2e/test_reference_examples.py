"""Every Python example of the Tasks reference, as written, run on real agent processes.

The task classes below are copied from the reference unchanged (only the processors example,
whose body the reference elides with `...`, gets a body). They live at module level so agents
import them by reference; tests/e2e/test_scripts.py covers classes sent by value from __main__.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

import genja as genja_lib
from genja.task import (
    Host,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSkipResult,
    TaskSuccessResult,
    task,
)
from tests.conftest import MakeGenja

pytestmark = pytest.mark.e2e


@task(name="collect_facts")
class CollectFacts:
    def start(
        self,
        task: TaskInfo,
        host: Host,
        context: TaskRuntimeContext,
    ) -> TaskSuccessResult:
        return TaskSuccessResult(
            summary=f"collected facts from {host.hostname}",
            metadata={
                "hostname": host.hostname,
                "platform": host.platform,
                "facts_collected": True,
            },
        )


@task(name="collect_facts_async")
class CollectFactsAsync:
    async def start_async(
        self,
        task: TaskInfo,
        host: Host,
        context: TaskRuntimeContext,
    ) -> TaskSuccessResult:
        connection = context.connection()
        show_version = None
        if connection is not None:
            show_version = await connection.execute_command("show version")
        return TaskSuccessResult(
            summary=f"collected facts from {host.hostname}",
            metadata={
                "hostname": host.hostname,
                "platform": host.platform,
                "show_version": show_version,
            },
        )


@task(name="print_task")
class PrintTask:
    def start(
        self,
        task: TaskInfo,
        host: Host,
        _context: TaskRuntimeContext,
    ) -> TaskSuccessResult:
        print(f"task={task.name} host={host.hostname}")
        return TaskSuccessResult()


@task(name="validate_config")
class ValidateConfig:
    def start(
        self,
        task: TaskInfo,
        host: Host,
        context: TaskRuntimeContext,
    ) -> TaskSuccessResult:
        return TaskSuccessResult(summary=f"validated {host.hostname}")


@task(name="deploy_config", sub_tasks=[ValidateConfig])
class DeployConfig:
    def start(
        self,
        task: TaskInfo,
        host: Host,
        context: TaskRuntimeContext,
    ) -> TaskSuccessResult:
        return TaskSuccessResult(summary=f"deployed {host.hostname}")


@task(
    name="backup_config",
    options={"backup_path": "/tmp/configs", "compress": True},
)
class BackupConfig:
    def start(
        self,
        task: TaskInfo,
        host: Host,
        context: TaskRuntimeContext,
    ) -> TaskSuccessResult:
        return TaskSuccessResult(
            summary=f"backup path is {task.options['backup_path']}",
        )


@task(name="backup_config", processors=["audit"])
class AuditedBackupConfig:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        return TaskSuccessResult(summary=f"backed up {host.hostname}")


class Audit:
    """A test-defined `audit` processor: stamps who ran what into each result's metadata."""

    def on_instance_finish(self, ctx: genja_lib.ProcessorContext, result: Any) -> Any:
        if isinstance(result, TaskSuccessResult):
            return TaskSuccessResult(
                summary=result.summary,
                metadata={**result.metadata, "audited_task": ctx.task_name, "host": ctx.host_id},
            )
        return None


HOSTS = {
    "router1": {"hostname": "10.0.0.1", "platform": "ios"},
    "router2": {"hostname": "10.0.0.2", "platform": "eos"},
}


def _without_execution_metadata(tree: dict[str, Any]) -> dict[str, Any]:
    """The tree as the reference shows it: what the runtime adds (`run_id`, and each host's
    `execution_metadata`) taken out, after checking it is there."""
    tree.pop("run_id", None)
    for host in tree["hosts"].values():
        timing = host.pop("execution_metadata")
        assert timing["duration"] >= 0
        assert timing["started_at"] <= timing["finished_at"]
    for sub in tree["sub_tasks"].values():
        _without_execution_metadata(sub)
    return tree


def test_collect_facts(make_genja: MakeGenja) -> None:
    results = make_genja(HOSTS).run_task(CollectFacts, max_depth=1)
    assert results.run_id is not None
    assert results.to_dict()["run_id"] == results.run_id
    assert _without_execution_metadata(results.to_dict()) == {
        "task_name": "collect_facts",
        "hosts": {
            "router1": {
                "status": "passed",
                "summary": "collected facts from 10.0.0.1",
                "metadata": {"hostname": "10.0.0.1", "platform": "ios", "facts_collected": True},
            },
            "router2": {
                "status": "passed",
                "summary": "collected facts from 10.0.0.2",
                "metadata": {"hostname": "10.0.0.2", "platform": "eos", "facts_collected": True},
            },
        },
        "sub_tasks": {},
    }


def test_collect_facts_async_without_a_connection(make_genja: MakeGenja) -> None:
    results = make_genja(HOSTS).run_task(CollectFactsAsync, max_depth=1)
    assert results["router1"] == TaskSuccessResult(
        summary="collected facts from 10.0.0.1",
        metadata={"hostname": "10.0.0.1", "platform": "ios", "show_version": None},
    )


def test_print_in_a_task_reaches_the_terminal(
    make_genja: MakeGenja, capfd: pytest.CaptureFixture[str]
) -> None:
    results = make_genja(HOSTS).run_task(PrintTask)
    assert results.host_summary().passed == 2
    out = capfd.readouterr().out
    assert "task=print_task host=10.0.0.1" in out
    assert "task=print_task host=10.0.0.2" in out


def test_result_type_examples() -> None:
    passed = TaskSuccessResult(summary="ok")
    failed = TaskFailureResult(
        message="connection failed",
        kind=TaskFailureKind.CONNECTION,
        retryable=True,
    )
    skipped = TaskSkipResult(
        reason="unsupported_platform",
        message="host platform is not supported",
    )
    assert (passed.status.value, failed.status.value, skipped.status.value) == (
        "passed",
        "failed",
        "skipped",
    )
    assert failed.kind.value == "connection"


def test_sub_tasks_example(make_genja: MakeGenja) -> None:
    results = make_genja(HOSTS).run_task(DeployConfig, max_depth=1)
    assert results["router1"].summary == "deployed 10.0.0.1"  # type: ignore[union-attr]
    validate = results.sub_task("validate_config")
    assert validate["router2"].summary == "validated 10.0.0.2"  # type: ignore[union-attr]
    assert results.task_summary().total.passed == 4
    only_root = make_genja(HOSTS).run_task(DeployConfig, max_depth=0)
    assert only_root.sub_tasks == {}


def test_options_example(make_genja: MakeGenja) -> None:
    results = make_genja(HOSTS).run_task(BackupConfig)
    assert results["router1"].summary == "backup path is /tmp/configs"  # type: ignore[union-attr]


def test_processors_example_with_a_test_audit_processor(make_genja: MakeGenja) -> None:
    results = make_genja(HOSTS, processors={"audit": Audit}).run_task(AuditedBackupConfig)
    assert results["router2"].metadata == {  # type: ignore[union-attr]
        "audited_task": "backup_config",
        "host": "router2",
    }


@task(name="backup_config", processors=["audti"])
class MistypedBackupConfig:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        return TaskSuccessResult()


def test_unknown_processor_fails_before_any_host_runs(make_genja: MakeGenja) -> None:
    with pytest.raises(genja_lib.ConfigurationError, match=r"'backup_config'.*'audti'"):
        make_genja(HOSTS).run_task(MistypedBackupConfig)


def test_the_reference_audit_example_runs_with_the_built_in_processor(
    make_genja: MakeGenja,
) -> None:
    results = make_genja(HOSTS).run_task(AuditedBackupConfig)
    metadata = results["router1"].metadata  # type: ignore[union-attr]
    assert results.host_summary().passed == 2
    assert metadata["audit"]["task"] == "backup_config"
    assert metadata["audit"]["host"] == "router1"


def test_run_and_inspect_from_a_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "settings.yaml").write_text(
        "inventory:\n  options:\n    hosts_file: hosts.yaml\nrunner:\n  worker_count: 2\n"
    )
    (tmp_path / "hosts.yaml").write_text(
        "router1:\n  hostname: 10.0.0.1\n  platform: ios\n"
        "router2:\n  hostname: 10.0.0.2\n  platform: eos\n"
    )
    monkeypatch.chdir(tmp_path)

    genja = genja_lib.Genja.from_settings_file("settings.yaml")
    try:
        results = genja.run_task(CollectFacts, max_depth=1)
        print(results.to_json(pretty=True))
        print(results.host_summary())
        for host_id in results.failed_hosts:
            print(f"failed host: {host_id}")
        print(results.to_json(raw=True, pretty=True))
        raw = results.to_dict(raw=True)
        data = results.to_dict()
    finally:
        genja.close()

    out = capsys.readouterr().out
    assert "passed=2 failed=0 skipped=0" in out
    assert "failed host" not in out
    first_json = out[: out.index("passed=2")]
    assert json.loads(first_json) == data
    assert raw["hosts"]["router1"]["Passed"]["summary"] == "collected facts from 10.0.0.1"
    assert data["hosts"]["router1"]["status"] == "passed"


async def test_async_entry_points_compose_with_gather_and_wait_for(make_genja: MakeGenja) -> None:
    genja = make_genja(HOSTS)
    facts, deployed = await asyncio.gather(
        genja.run_task_async(CollectFacts, max_depth=1),
        genja.run_task_async(DeployConfig, max_depth=1),
    )
    assert facts.host_summary().passed == 2
    assert deployed.sub_task("validate_config").host_summary().passed == 2
    trees = await asyncio.wait_for(genja.run_tasks_async([BackupConfig, CollectFacts]), 60)
    assert [tree.task_name for tree in trees] == ["backup_config", "collect_facts"]


def test_run_tasks_returns_trees_in_order(make_genja: MakeGenja) -> None:
    trees = make_genja(HOSTS).run_tasks([DeployConfig, CollectFacts, BackupConfig], max_depth=1)
    assert [t.task_name for t in trees] == ["deploy_config", "collect_facts", "backup_config"]
    assert all(t.host_summary().passed == 2 for t in trees)


async def test_sync_entry_point_inside_a_running_loop_says_what_to_use(
    make_genja: MakeGenja,
) -> None:
    genja = make_genja(HOSTS)
    with pytest.raises(genja_lib.EventLoopError, match=r"await genja\.run_task_async"):
        genja.run_task(CollectFacts)
    with pytest.raises(genja_lib.EventLoopError, match="run_tasks_async"):
        genja.run_tasks([CollectFacts])


def test_tasks_ran_in_agent_processes_not_here(make_genja: MakeGenja) -> None:
    @task(name="whoami")
    class WhoAmI:
        def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
            return TaskSuccessResult(metadata={"pid": os.getpid()})

    genja = make_genja(200, workers=3)
    results = genja.run_task(WhoAmI)
    pids = {r.metadata["pid"] for r in results.hosts.values()}  # type: ignore[union-attr]
    assert os.getpid() not in pids
    assert len(pids) == 3
    from tests.conftest import agent_pids

    assert pids == set(agent_pids(genja).values())
