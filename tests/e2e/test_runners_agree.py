"""The same runs under `agents`, `threaded` and `serial` give equal result trees: one pipeline,
three places to run it."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import genja
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
from tests.e2e import test_reference_examples as reference
from tests.servers.sshd import SSHServer

pytestmark = pytest.mark.e2e

cloudpickle.register_pickle_by_value(sys.modules[__name__])

RUNNERS = ("agents", "threaded", "serial")


def _plain(tree: dict[str, Any]) -> dict[str, Any]:
    """The tree without what differs from run to run (ids, timing), after checking each host
    result carries its timing."""
    tree.pop("run_id", None)
    for host in tree["hosts"].values():
        timing = host.pop("execution_metadata")
        assert timing["duration"] >= 0
    for sub in tree["sub_tasks"].values():
        _plain(sub)
    return tree


def _agree(make_genja: MakeGenja, task_class: type, hosts: Any, **kwargs: Any) -> dict[str, Any]:
    """The tree every runner gives (they must be equal)."""
    max_depth = kwargs.pop("max_depth", None)
    trees = {}
    for runner in RUNNERS:
        g = make_genja(hosts, runner=runner, **kwargs)
        trees[runner] = _plain(g.run_task(task_class, max_depth=max_depth).to_dict())
    assert trees["threaded"] == trees["agents"]
    assert trees["serial"] == trees["agents"]
    return trees["agents"]


HOSTS = {f"h{i}": {"platform": ("ios", "eos", "junos")[i % 3]} for i in range(9)}


@task(name="sync_leaf")
class SyncLeaf:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        if host.platform == "junos":
            return TaskSkipResult(reason="unsupported_platform", message=host.id)
        return TaskSuccessResult(summary=f"{task.name} {host.id}", metadata={"n": 1})


@task(name="async_leaf")
class AsyncLeaf:
    async def start_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        await asyncio.sleep(0)
        if host.id == "h4":
            raise ValueError(f"no route to {host.id}")
        return TaskSuccessResult(changed=True, diff=f"+{host.id}")


@task(name="misbehaves")
class Misbehaves:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        if host.id == "h1":
            return "not a result"
        if host.id == "h2":
            return TaskSuccessResult(result={1, 2})
        if host.id == "h5":
            return TaskFailureResult(message="bad", kind=TaskFailureKind.VALIDATION, details=[1])
        return TaskSuccessResult(result=[host.id])


@task(name="middle", sub_tasks=[SyncLeaf, AsyncLeaf], options={"level": 1})
class Middle:
    async def start_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult(summary=str(task.options["level"]))


@task(name="root", sub_tasks=[Middle, Misbehaves])
class Root:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult(summary=f"root {host.id}")


@pytest.mark.parametrize("max_depth", [0, 1, 2])
def test_a_mixed_tree_with_failures(make_genja: MakeGenja, max_depth: int) -> None:
    tree = _agree(make_genja, Root, HOSTS, max_depth=max_depth)
    assert len(tree["hosts"]) == 9
    if max_depth == 2:
        leaf = tree["sub_tasks"]["middle"]["sub_tasks"]["async_leaf"]["hosts"]["h4"]
        assert (leaf["status"], leaf["kind"]) == ("failed", "internal")
        assert "no route to h4" in leaf["message"]
        bad = tree["sub_tasks"]["misbehaves"]["hosts"]
        assert "returned str" in bad["h1"]["message"]
        assert "not JSON-serializable" in bad["h2"]["message"]


def test_the_reference_examples(make_genja: MakeGenja) -> None:
    _agree(make_genja, reference.DeployConfig, reference.HOSTS, max_depth=1)
    _agree(make_genja, reference.CollectFacts, reference.HOSTS)
    _agree(make_genja, reference.BackupConfig, reference.HOSTS)


@task(name="sleepy_sync")
class SleepySync:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        if host.id == "h0":
            time.sleep(3)  # abandoned at the timeout; short, so no thread outlives the tests
        return TaskSuccessResult()


@task(name="sleepy_async")
class SleepyAsync:
    async def start_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        if host.id == "h0":
            await asyncio.sleep(30)
        return TaskSuccessResult()


@pytest.mark.parametrize("task_class", [SleepySync, SleepyAsync])
def test_task_timeout(make_genja: MakeGenja, task_class: type) -> None:
    hosts = {"h0": {}, "h1": {}}
    tree = _agree(make_genja, task_class, hosts, task_timeout=0.5)
    stuck = tree["hosts"]["h0"]
    assert (stuck["kind"], stuck["retryable"]) == ("timeout", True)
    assert "within 0.5s" in stuck["message"]
    assert tree["hosts"]["h1"]["status"] == "passed"


@pytest.mark.parametrize("runner", RUNNERS)
def test_run_timeout_accounts_for_every_host(make_genja: MakeGenja, runner: str) -> None:
    hosts = {f"h{i}": {} for i in range(4)}
    g = make_genja(hosts, runner=runner, run_timeout=1, host_concurrency=1)
    started = time.monotonic()
    results = g.run_task(SleepyAsync)
    assert time.monotonic() - started < 20  # the run ends near its deadline, not after h0
    stuck = results["h0"]
    assert isinstance(stuck, TaskFailureResult)
    assert stuck.kind is TaskFailureKind.TIMEOUT
    assert "run_timeout" in stuck.message
    assert results.host_summary().total == 4


class Recorder:
    """Records its hooks per host, and stamps the results it sees."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def on_task_start(self, ctx: genja.ProcessorContext) -> None:
        self.calls.append(("task_start", ctx.task_name, None))

    def on_instance_start(self, ctx: genja.ProcessorContext) -> None:
        self.calls.append(("instance_start", ctx.task_name, ctx.host_id))

    def on_instance_finish(self, ctx: genja.ProcessorContext, result: Any) -> Any:
        self.calls.append(("instance_finish", ctx.task_name, ctx.host_id))
        if isinstance(result, TaskSuccessResult):
            return TaskSuccessResult(summary=f"stamped {ctx.task_name}")
        return None

    def on_task_finish(self, ctx: genja.ProcessorContext, results: Any) -> None:
        self.calls.append(("task_finish", ctx.task_name, None))


@task(name="watched_leaf", processors=["rec"])
class WatchedLeaf:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult()


@task(name="watched", processors=["rec"], sub_tasks=[WatchedLeaf, AsyncLeaf])
class Watched:
    async def start_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult()


def test_processors_see_the_same_hooks_and_shape_the_same_tree(make_genja: MakeGenja) -> None:
    seen: dict[str, list[tuple[str, str, str | None]]] = {}
    trees = {}
    hosts = {f"h{i}": {} for i in range(6)}
    for runner in RUNNERS:
        recorder = Recorder()
        g = make_genja(hosts, runner=runner, processors={"rec": recorder})
        trees[runner] = _plain(g.run_task(Watched, max_depth=1).to_dict())
        seen[runner] = recorder.calls
    assert trees["threaded"] == trees["serial"] == trees["agents"]
    assert trees["agents"]["hosts"]["h3"]["summary"] == "stamped watched"
    assert trees["agents"]["sub_tasks"]["async_leaf"]["hosts"]["h4"]["status"] == "failed"

    def per_host(calls: list[tuple[str, str, str | None]]) -> dict[str | None, list[Any]]:
        grouped: dict[str | None, list[Any]] = {}
        for hook, name, host in calls:
            grouped.setdefault(host, []).append((hook, name))
        return grouped

    assert per_host(seen["threaded"]) == per_host(seen["agents"])
    assert per_host(seen["serial"]) == per_host(seen["agents"])


@task(name="uname", connection_plugin_name="ssh")
class Uname:
    async def start_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        out = await context.connection().execute_command("uname -s")
        return TaskSuccessResult(result=out)


@task(name="uname_sync", connection_plugin_name="ssh")
class UnameSync:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult(result=context.connection().execute_command("uname -s"))


def test_connections_to_a_real_sshd(
    make_genja: MakeGenja, sshd: SSHServer, known_hosts: Path
) -> None:
    common = {"hostname": "127.0.0.1", "port": sshd.port, "username": sshd.username}
    hosts = {
        **{f"srv{i}": {**common, "password": sshd.password} for i in range(4)},
        "bad-password": {**common, "password": "wrong-secret-456"},
    }
    ssh = {"ssh": {"known_hosts": str(known_hosts), "connect_timeout": 30}}
    for task_class in (Uname, UnameSync):
        tree = _agree(make_genja, task_class, hosts, settings=ssh)
        assert tree["hosts"]["srv2"] == {"status": "passed", "result": "Linux\n"}
        failure = tree["hosts"]["bad-password"]
        assert (failure["kind"], failure["retryable"]) == ("authentication", False)
        assert "wrong-secret-456" not in str(tree)
    for runner in RUNNERS:  # each keeps its connections from one run to the next
        g = make_genja(hosts, runner=runner, settings=ssh)
        g.filter(filter_func=lambda h: h.id.startswith("srv")).run_task(Uname)
        before = sshd.logins()
        again = g.filter(filter_func=lambda h: h.id.startswith("srv")).run_task(UnameSync)
        assert again.host_summary().passed == 4
        assert sshd.logins() == before, runner
