"""Retries end to end: on real agent processes (and under `serial`, in the client), against
the test sshd where a connection is involved; what was retried shows in the execution metadata,
the JSON and the JSONL stream."""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import cloudpickle
import pytest

import genja
from genja.task import (
    Host,
    HostTaskResult,
    RetryConfig,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)
from tests.conftest import MakeGenja
from tests.e2e._ssh_hosts import ssh_settings, sshd_host
from tests.servers._ports import free_port
from tests.servers.sshd import SSHServer

pytestmark = pytest.mark.e2e

# The agents cannot import this test module: send its task classes by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

RUNNERS = pytest.mark.parametrize("runner", ["agents", "serial"])
DELAY_MS = 150


class _Attempts:
    """Remembers, per host, when each attempt started (the instance is shared by the hosts of
    one run on one agent) and answers with `outcome(attempt)`."""

    def __init__(self) -> None:
        self.starts: dict[str, list[float]] = {}

    def attempt(self, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        starts = self.starts.setdefault(host.id, [])
        starts.append(time.monotonic())
        assert context.current_attempt == len(starts)
        return self.outcome(context.current_attempt, starts)

    def outcome(self, attempt: int, starts: list[float]) -> HostTaskResult:
        raise NotImplementedError


@task(name="flaky", retry=RetryConfig(allow=True, max_attempts=3, delay_ms=DELAY_MS))
class FailsTwiceThenPasses(_Attempts):
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return self.attempt(host, context)

    def outcome(self, attempt: int, starts: list[float]) -> HostTaskResult:
        if attempt < 3:
            return TaskFailureResult(
                message=f"rate limited (attempt {attempt})",
                kind=TaskFailureKind.EXTERNAL,
                retryable=True,
            )
        gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
        return TaskSuccessResult(summary="third time lucky", metadata={"gaps": gaps})


@task(name="flaky_async", retry=RetryConfig(allow=True, max_attempts=3, delay_ms=DELAY_MS))
class FailsTwiceThenPassesAsync(FailsTwiceThenPasses):
    start = None  # type: ignore[assignment]

    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> HostTaskResult:
        return self.attempt(host, context)


@task(name="refused")
class NotRetryable(_Attempts):
    """Under runner defaults that allow retries: its failure is not retryable."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return self.attempt(host, context)

    def outcome(self, attempt: int, starts: list[float]) -> HostTaskResult:
        return TaskFailureResult(message="config rejected", kind=TaskFailureKind.VALIDATION)


@task(name="always_busy")
class AlwaysBusy(_Attempts):
    """Retryable every time: the runner's defaults decide how often."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return self.attempt(host, context)

    def outcome(self, attempt: int, starts: list[float]) -> HostTaskResult:
        return TaskFailureResult(
            message=f"busy (attempt {attempt})", kind=TaskFailureKind.TIMEOUT, retryable=True
        )


@task(name="always_busy", processors=["jsonl"])
class AlwaysBusyStreamed(AlwaysBusy):
    """The same, with a JSONL line per result (the test gives the processor its file)."""


def _metadata(result: HostTaskResult) -> genja.task.ExecutionMetadata:
    assert result.execution_metadata is not None
    return result.execution_metadata


@RUNNERS
@pytest.mark.parametrize("task_class", [FailsTwiceThenPasses, FailsTwiceThenPassesAsync])
def test_two_retryable_failures_then_a_pass(
    make_genja: MakeGenja, runner: str, task_class: type
) -> None:
    g = make_genja({"r1": {}, "r2": {}}, runner=runner)
    results = g.run_task(task_class)
    assert results.host_summary() == genja.HostSummary(passed=2)
    for host_id in ("r1", "r2"):
        result = results[host_id]
        assert isinstance(result, TaskSuccessResult)
        assert result.summary == "third time lucky"
        gaps = result.metadata["gaps"]
        assert len(gaps) == 2
        assert all(gap >= DELAY_MS / 1000 for gap in gaps), gaps  # the delay, at least
        timing = _metadata(result)
        assert (timing.attempts, timing.retried, timing.retries_exhausted) == (3, True, False)
        assert timing.duration >= 2 * DELAY_MS / 1000  # the timing covers every attempt
    data = results.to_dict()["hosts"]["r1"]["execution_metadata"]
    assert (data["attempts"], data["retried"], data["retries_exhausted"]) == (3, True, False)


@RUNNERS
def test_a_failure_that_is_not_retryable_is_not_retried(make_genja: MakeGenja, runner: str) -> None:
    g = make_genja(
        {"r1": {}},
        runner=runner,
        runner_settings={"retry": {"allow": True, "max_attempts": 5}},
    )
    result = g.run_task(NotRetryable)["r1"]
    assert isinstance(result, TaskFailureResult)
    assert result.kind is TaskFailureKind.VALIDATION
    timing = _metadata(result)
    assert (timing.attempts, timing.retried, timing.retries_exhausted) == (1, False, False)


@RUNNERS
def test_exhausted_retries_show_everywhere(
    make_genja: MakeGenja, runner: str, tmp_path: Path
) -> None:
    jsonl = tmp_path / "run.jsonl"
    g = make_genja(
        {"r1": {}},
        runner=runner,
        processors={"jsonl": genja.JsonlProcessor(jsonl)},
        runner_settings={"retry": {"allow": True, "max_attempts": 3, "delay_ms": 10}},
    )
    results = g.run_task(AlwaysBusyStreamed)
    result = results["r1"]
    assert isinstance(result, TaskFailureResult)
    assert result.message == "busy (attempt 3)"
    timing = _metadata(result)
    assert (timing.attempts, timing.retried, timing.retries_exhausted) == (3, True, True)
    assert results.failed_hosts == ["r1"]
    as_json = json.loads(results.to_json())["hosts"]["r1"]["execution_metadata"]
    assert (as_json["attempts"], as_json["retries_exhausted"]) == (3, True)
    (line,) = [json.loads(text) for text in jsonl.read_text().splitlines()]
    assert line["status"] == "failed"
    assert (line["execution_metadata"]["attempts"], line["execution_metadata"]["retried"]) == (
        3,
        True,
    )
    assert line["execution_metadata"]["retries_exhausted"] is True


@RUNNERS
def test_a_task_can_refuse_the_runner_retries(make_genja: MakeGenja, runner: str) -> None:
    @task(name="no_retry_for_me", retry=RetryConfig(allow=False))
    class Refuses(AlwaysBusy):
        pass

    g = make_genja(
        {"r1": {}},
        runner=runner,
        runner_settings={"retry": {"allow": True, "max_attempts": 4}},
    )
    timing = _metadata(g.run_task(Refuses)["r1"])
    assert (timing.attempts, timing.retries_exhausted) == (1, False)


# ---------------------------------------------------------------- connections


@task(
    name="wedged",
    connection_plugin_name="ssh",
    retry=RetryConfig(allow=True, max_attempts=2),
)
class FailsOnItsConnectionOnce:
    """Attempt 1 fails on its connection: by closing the session under itself (the next
    command raises), or by judging a live session unusable (a `connection` failure while the
    transport looks fine, which the cache's liveness check alone would not replace)."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        connection = context.connection()
        if context.current_attempt == 1:
            if host.get("how") == "closed":
                connection.close()
                connection.execute_command("uname -s")  # raises: the session is gone
            return TaskFailureResult(
                message="the session looks wedged",
                kind=TaskFailureKind.CONNECTION,
                retryable=True,
            )
        return TaskSuccessResult(
            result=connection.execute_command("uname -s").strip(),
            metadata={"connection": connection.id},
        )


@task(name="first_connection", connection_plugin_name="ssh", sub_tasks=[FailsOnItsConnectionOnce])
class RemembersItsConnection:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return TaskSuccessResult(metadata={"connection": context.connection().id})


@RUNNERS
@pytest.mark.parametrize("how", ["closed", "distrusted"])
@pytest.mark.timeout(300)
def test_a_connection_failure_is_retried_on_a_new_connection(
    make_genja: MakeGenja, runner: str, how: str, sshd: SSHServer, known_hosts: Path
) -> None:
    g = make_genja(
        {"s1": sshd_host(sshd, how=how)},
        runner=runner,
        settings=ssh_settings(known_hosts),
        task_timeout=90,
    )
    before = sshd.logins()
    results = g.run_task(RemembersItsConnection)
    assert results.failed_hosts == [], results.to_json(pretty=True)
    first = results["s1"].metadata["connection"]
    retried = results.sub_task("wedged")["s1"]
    assert isinstance(retried, TaskSuccessResult)
    assert retried.result == "Linux"
    assert retried.metadata["connection"] != first  # the retry logged in anew
    timing = _metadata(retried)
    assert (timing.attempts, timing.retries_exhausted) == (2, False)
    assert sshd.logins() - before == 2


# ---------------------------------------------------------------- login attempts


@task(name="reach", connection_plugin_name="ssh", retry=RetryConfig(allow=True, max_attempts=5))
class Reach:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return TaskSuccessResult()


@task(name="reach_again", connection_plugin_name="ssh")
class ReachAgain(Reach):
    pass


@task(name="reach_twice", connection_plugin_name="ssh", sub_tasks=[Reach, ReachAgain])
class ReachTwice(Reach):
    pass


@RUNNERS
@pytest.mark.timeout(300)
def test_login_attempts_are_bounded_per_host_per_run(
    make_genja: MakeGenja, runner: str, known_hosts: Path
) -> None:
    """Nobody listens on the port: each login is refused (a retryable `connection` failure).
    With two login attempts per run, the root tries twice (its retry included), and every
    later attempt fails at once without dialling, and is not retried."""
    closed_port = free_port()
    g = make_genja(
        {"down": {"hostname": "127.0.0.1", "port": closed_port, "username": "u"}},
        runner=runner,
        settings=ssh_settings(known_hosts),
        runner_settings={
            "max_connection_attempts": 2,
            "retry": {"allow": True, "max_attempts": 3},
        },
    )
    results = g.run_task(ReachTwice)
    root = results["down"]
    assert isinstance(root, TaskFailureResult)
    assert "no ssh login attempts left in this run" in root.message
    assert root.retryable is False
    timing = _metadata(root)
    assert (timing.attempts, timing.retries_exhausted) == (3, False)  # refused, refused, budget
    for name in ("reach", "reach_again"):
        later = results.sub_task(name)["down"]
        assert isinstance(later, TaskFailureResult)
        assert later.kind is TaskFailureKind.CONNECTION
        assert "runner.max_connection_attempts is 2" in later.message
        assert _metadata(later).attempts == 1
    # the budget is per run: the next run dials twice again before it runs out (were it
    # still spent, its first attempt would end the node)
    again = g.run_task(Reach)["down"]
    assert isinstance(again, TaskFailureResult)
    assert "no ssh login attempts left in this run" in again.message
    assert _metadata(again).attempts == 3


def test_retry_defaults_from_a_settings_file_reach_the_agents(tmp_path: Path) -> None:
    (tmp_path / "hosts.yaml").write_text("r1: {}\nr2: {}\n", encoding="utf-8")
    (tmp_path / "settings.yaml").write_text(
        "inventory:\n"
        "  options:\n"
        "    hosts_file: hosts.yaml\n"
        "runner:\n"
        "  worker_count: 1\n"
        "  max_connection_attempts: 3\n"
        "  retry:\n"
        "    allow: true\n"
        "    max_attempts: 2\n"
        "    delay_ms: 5\n",
        encoding="utf-8",
    )
    with genja.Genja.from_settings_file(tmp_path / "settings.yaml") as g:
        results = g.run_task(AlwaysBusy)
    for host_id in ("r1", "r2"):
        timing = _metadata(results[host_id])
        assert (timing.attempts, timing.retries_exhausted, timing.agent) == (2, True, "local-0")
