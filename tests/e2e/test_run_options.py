"""Parameters at run time and a sub-task's view of its parent, end to end: on real agent
processes (task code sent by value), under `serial` and `threaded` in the client, through every
entry point, and against the test sshd for "deploy, then validate what was deployed"."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import genja
from genja.task import (
    Host,
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSkipResult,
    TaskStatus,
    TaskSuccessResult,
    task,
)
from tests.conftest import MakeGenja
from tests.servers.sshd import SSHServer

pytestmark = pytest.mark.e2e

# The agents cannot import this test module: send its task classes by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

RUNNERS = pytest.mark.parametrize("runner", ["agents", "serial"])
HOSTS = {"r1": {"platform": "ios"}, "r2": {"platform": "eos"}}


# ---------------------------------------------------------------- run-time options


@task(name="echo_options")
class EchoOptions:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return TaskSuccessResult(result=task.options)


@task(
    name="backup",
    options={"path": "/tmp/configs", "ssh": {"port": 22, "user": "backup"}},
    sub_tasks=[EchoOptions],
)
class Backup:
    """Declares options; a run may change them. An instance carries its own `keep`."""

    def __init__(self, keep: int = 1) -> None:
        self.keep = keep

    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> HostTaskResult:
        return TaskSuccessResult(
            summary=f"{host.id} to {task.options['path']}",
            result={"options": task.options, "keep": self.keep, "pid": os.getpid()},
        )


@RUNNERS
@pytest.mark.timeout(120)
def test_run_time_options_merge_over_the_declared_ones(make_genja: MakeGenja, runner: str) -> None:
    g = make_genja(HOSTS, runner=runner)
    results = g.run_task(Backup, options={"path": "/srv/backups", "ssh": {"port": 2222}})
    assert results.failed_hosts == [], results.to_json(pretty=True)
    for host_id in HOSTS:
        assert results[host_id]["summary"] == f"{host_id} to /srv/backups"
        assert results[host_id].result["options"] == {
            "path": "/srv/backups",
            "ssh": {"port": 2222, "user": "backup"},
        }
        # Sub-tasks keep their own declared options (none).
        assert results.sub_task("echo_options")[host_id].result is None
    # The declared options are unchanged for the next run.
    again = g.run_task(Backup, 0)
    assert again["r1"].result["options"]["path"] == "/tmp/configs"


@RUNNERS
@pytest.mark.timeout(120)
def test_a_task_instance_runs_with_its_constructor_arguments(
    make_genja: MakeGenja, runner: str
) -> None:
    g = make_genja(HOSTS, runner=runner)
    results = g.run_task(Backup(keep=7), 0, options={"path": "/x"})
    assert results.failed_hosts == [], results.to_json(pretty=True)
    assert {results[h].result["keep"] for h in HOSTS} == {7}
    assert {results[h].summary for h in HOSTS} == {"r1 to /x", "r2 to /x"}
    pids = {results[h].result["pid"] for h in HOSTS}
    if runner == "agents":
        assert os.getpid() not in pids  # it really ran in agent processes
    else:
        assert pids == {os.getpid()}


@pytest.mark.parametrize(
    "entry", ["run_task", "run_tasks", "run_task_async", "run_tasks_async", "events", "stream"]
)
@pytest.mark.timeout(120)
def test_every_entry_point_takes_options(make_genja: MakeGenja, entry: str) -> None:
    g = make_genja(HOSTS, workers=1)
    options = {"path": f"/{entry}"}

    async def events() -> genja.TaskResults:
        async for event in g.run_task_events(Backup, 0, options=options):
            if isinstance(event, genja.RunFinished):
                return event.results
        raise AssertionError("no RunFinished")

    def stream() -> genja.TaskResults:
        finished = [e for e in g.stream_task(Backup, 0, options=options)][-1]
        assert isinstance(finished, genja.RunFinished)
        return finished.results

    run = {
        "run_task": lambda: g.run_task(Backup, 0, options=options),
        "run_tasks": lambda: g.run_tasks([Backup, Backup(keep=2)], 0, options=options)[1],
        "run_task_async": lambda: asyncio.run(g.run_task_async(Backup, 0, options=options)),
        "run_tasks_async": lambda: asyncio.run(g.run_tasks_async([Backup], 0, options=options))[0],
        "events": lambda: asyncio.run(events()),
        "stream": stream,
    }[entry]
    results = run()
    assert results["r1"].summary == f"r1 to /{entry}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": Path("/x")}, "run-time options of task 'backup': key 'path' is a PosixPath"),
        ({"ssh": {"port": float("inf")}}, "key 'ssh.port' is inf, not a finite number"),
        ("path=/x", "must be a mapping (a JSON object), got str"),
    ],
)
def test_bad_options_fail_before_any_host_starts(
    make_genja: MakeGenja, options: Any, message: str
) -> None:
    g = make_genja(HOSTS, workers=1)
    with pytest.raises(genja.ConfigurationError, match="run-time options of task 'backup'") as e:
        g.run_task(Backup, options=options)
    assert message in str(e.value)
    with pytest.raises(genja.ConfigurationError):
        g.run_tasks([EchoOptions, Backup], options=options)
    assert g.runtime is None  # nothing started: no agent, no host


# ---------------------------------------------------------------- parent results


@task(name="grandchild")
class Grandchild:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        parent = context.parent_result
        assert parent is not None
        return TaskSuccessResult(summary=f"after {parent.get('summary')}")


@task(name="check_a", sub_tasks=[Grandchild])
class CheckA:
    """Reads its parent's result, then tampers with its copy."""

    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> HostTaskResult:
        parent = context.parent_result
        if parent is None:
            return TaskFailureResult(message="no parent result")
        if parent.status is TaskStatus.FAILED:
            return TaskSkipResult(reason="parent_failed", message=parent["message"])
        seen = dict(parent.result)
        parent.result["tampered"] = True  # a copy: nobody else sees this
        again = context.parent_result
        assert again is not None
        return TaskSuccessResult(
            summary=f"a saw {parent.summary}",
            result={"seen": seen, "again": again.result, "changed": parent.changed},
        )


@task(name="check_b")
class CheckB:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        parent = context.parent_result
        assert parent is not None
        return TaskSuccessResult(
            summary=f"b saw {parent.get('summary')}", result=parent.get("result")
        )


@task(name="root", sub_tasks=[CheckA, CheckB])
class Root:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        assert context.parent_result is None
        if host.id == "r2":
            return TaskFailureResult(message="r2 refused", kind=TaskFailureKind.COMMAND)
        return TaskSuccessResult(summary=f"root on {host.id}", result={"version": 3}, changed=True)


@pytest.mark.parametrize("runner", ["agents", "serial", "threaded"])
@pytest.mark.timeout(120)
def test_each_sub_task_sees_its_own_parents_result(make_genja: MakeGenja, runner: str) -> None:
    g = make_genja(HOSTS, runner=runner)
    results = g.run_task(Root, 2)
    a, b = results.sub_task("check_a"), results.sub_task("check_b")
    grandchild = results.sub_task("check_a", "grandchild")

    assert a["r1"].summary == "a saw root on r1"
    assert a["r1"].result == {"seen": {"version": 3}, "again": {"version": 3}, "changed": True}
    assert grandchild["r1"].summary == "after a saw root on r1"  # its parent, not the root
    assert b["r1"].summary == "b saw root on r1"  # the root's, not its sibling's
    assert b["r1"].result == {"version": 3}  # untouched by check_a's tampering
    assert results["r1"].result == {"version": 3}

    # A failed parent's result is there too; the sub-task decides what to do with it.
    assert isinstance(a["r2"], TaskSkipResult)
    assert a["r2"].message == "r2 refused"
    assert grandchild["r2"].summary == "after None"
    assert b["r2"].summary == "b saw None"


# ---------------------------------------------------------------- deploy, then validate


@task(name="validate", connection_plugin_name="ssh")
class ValidateDeployed:
    """Reads back the file its parent wrote, compares it with what the parent says it wrote,
    and removes it."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        deployed = context.parent_result
        if deployed is None or not deployed.status.passed:
            return TaskSkipResult(reason="nothing_deployed")
        path = shlex.quote(deployed.result["path"])
        found = context.connection().execute_command(f"cat {path} && rm -f {path}", check=True)
        if found.strip() != deployed.result["config"]:
            return TaskFailureResult(
                message=f"{path} holds {found!r}", kind=TaskFailureKind.VALIDATION
            )
        return TaskSuccessResult(summary=f"validated {deployed.result['path']}")


@task(name="deploy", connection_plugin_name="ssh", sub_tasks=[ValidateDeployed])
class Deploy:
    """Writes `options.config` to a new file on the device; says where."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        config = task.options["config"]
        path = context.connection().execute_command(
            "f=$(mktemp /tmp/genja-deploy-XXXXXX) && "
            f'printf \'%s\\n\' {shlex.quote(config)} > "$f" && echo "$f"',
            check=True,
        )
        return TaskSuccessResult(changed=True, result={"path": path.strip(), "config": config})


@RUNNERS
@pytest.mark.timeout(300)
def test_deploy_then_validate_what_was_deployed(
    make_genja: MakeGenja, runner: str, sshd: SSHServer, known_hosts: Path
) -> None:
    host = {
        "hostname": "127.0.0.1",
        "port": sshd.port,
        "username": sshd.username,
        "password": sshd.password,
    }
    g = make_genja(
        {"s1": host},
        runner=runner,
        settings={"ssh": {"known_hosts": str(known_hosts), "connect_timeout": 30}},
    )
    config = f"hostname edge-{runner} ; banner 'it works'"
    results = g.run_task(Deploy, options={"config": config})
    path = results["s1"].result["path"] if results["s1"].status.passed else None
    try:
        assert results.failed_hosts == [], results.to_json(pretty=True)
        assert results.sub_task("validate")["s1"].summary == f"validated {path}"
        assert path is not None
        assert not Path(path).exists()  # the validation read it back and removed it
    finally:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
