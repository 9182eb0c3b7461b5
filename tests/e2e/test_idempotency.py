"""Idempotency checks end to end: on real agent processes and under `serial`, against the test
sshd, where the "device setting" is a file the task reads and writes over SSH as the test
account: converged hosts are left alone, a change is applied once, a change that does not hold
fails its verification."""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

from genja.task import (
    Host,
    HostTaskResult,
    IdempotencyCheckResult,
    IdempotencyMode,
    RetryConfig,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskStatus,
    TaskSuccessResult,
    task,
)
from tests.conftest import MakeGenja
from tests.e2e._ssh_hosts import ssh_settings, sshd_host
from tests.servers.sshd import SSHServer

pytestmark = pytest.mark.e2e

cloudpickle.register_pickle_by_value(sys.modules[__name__])

RUNNERS = pytest.mark.parametrize("runner", ["agents", "serial"])
DESIRED = "ntp server 192.0.2.10"


def _read(path: str) -> str:
    return f"cat {shlex.quote(path)} 2>/dev/null || true"


def _write(path: str, text: str) -> str:
    return f"printf '%s\\n' {shlex.quote(text)} > {shlex.quote(path)}"


def _judge(running: str) -> IdempotencyCheckResult:
    if DESIRED in running.splitlines():
        return IdempotencyCheckResult.converged(f"{DESIRED} is already configured")
    return IdempotencyCheckResult.change_required(
        f"+{DESIRED}", details={"current": running.strip()}
    )


def _applied() -> HostTaskResult:
    return TaskSuccessResult(changed=True, diff=f"+{DESIRED}", summary="configured ntp")


@task(name="ensure_ntp", connection_plugin_name="ssh", idempotency=IdempotencyMode.CHECK)
class EnsureNtp:
    def check(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> object:
        return _judge(context.connection().execute_command(_read(host.get("config"))))

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        text = DESIRED if not host.get("broken") else "ntp server 0.0.0.0"
        context.connection().execute_command(_write(host.get("config"), text), check=True)
        return _applied()


@task(name="ensure_ntp_async", connection_plugin_name="ssh", idempotency=IdempotencyMode.CHECK)
class EnsureNtpAsync:
    async def check_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> object:
        return _judge(await context.connection().execute_command(_read(host.get("config"))))

    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> HostTaskResult:
        text = DESIRED if not host.get("broken") else "ntp server 0.0.0.0"
        await context.connection().execute_command(_write(host.get("config"), text), check=True)
        return _applied()


@task(name="verify_ntp", connection_plugin_name="ssh", idempotency=IdempotencyMode.CHECK_AND_VERIFY)
class VerifyNtp(EnsureNtp):
    pass


@task(
    name="verify_ntp_async",
    connection_plugin_name="ssh",
    idempotency=IdempotencyMode.CHECK_AND_VERIFY,
)
class VerifyNtpAsync(EnsureNtpAsync):
    pass


@pytest.fixture
def device_dir() -> Iterator[Path]:
    """Where the "devices" keep their setting: a directory the test account may write."""
    path = Path(tempfile.mkdtemp(prefix="genja-idempotency-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@RUNNERS
@pytest.mark.parametrize(
    "tasks", [(EnsureNtp, VerifyNtp), (EnsureNtpAsync, VerifyNtpAsync)], ids=["start", "async"]
)
@pytest.mark.timeout(300)
def test_converged_change_required_and_verify_failed(
    make_genja: MakeGenja,
    runner: str,
    tasks: tuple[type, type],
    *,
    sshd: SSHServer,
    known_hosts: Path,
    device_dir: Path,
) -> None:
    checked, verified = tasks
    done, todo, broken = (str(device_dir / name) for name in ("done", "todo", "broken"))
    Path(done).write_text(f"{DESIRED}\n")
    g = make_genja(
        {
            "done": sshd_host(sshd, config=done),
            "todo": sshd_host(sshd, config=todo),
            "broken": sshd_host(sshd, config=broken, broken=True),
        },
        runner=runner,
        settings=ssh_settings(known_hosts),
    )
    results = g.run_task(checked)
    converged = results["done"]
    assert converged == TaskSuccessResult(
        changed=False,
        summary=f"{DESIRED} is already configured",
        metadata={
            "idempotency": {"status": "converged", "summary": f"{DESIRED} is already configured"}
        },
    )
    assert results["todo"] == _applied()
    assert Path(todo).read_text() == f"{DESIRED}\n"
    assert results["broken"] == _applied()  # CHECK alone does not look again
    assert results.failed_hosts == []

    again = g.run_task(checked)  # now "todo" is converged: start is not called
    assert again["todo"].changed is False
    assert again["broken"].changed is True

    verified_results = g.run_task(verified)
    assert verified_results["done"].changed is False
    failure = verified_results["broken"]
    assert isinstance(failure, TaskFailureResult)
    assert failure.kind is TaskFailureKind.VALIDATION
    assert "its idempotency check still requires a change afterwards" in failure.message
    assert failure.details == {
        "idempotency": {
            "status": "change_required",
            "diff": f"+{DESIRED}",
            "details": {"current": "ntp server 0.0.0.0"},
        }
    }
    assert verified_results.failed_hosts == ["broken"]


@task(
    name="ensure_ntp_flaky",
    connection_plugin_name="ssh",
    idempotency=IdempotencyMode.CHECK,
    retry=RetryConfig(allow=True, max_attempts=3),
)
class EnsureNtpFlaky(EnsureNtp):
    """Applies the change, then loses the reply: a retryable failure."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        super().start(task, host, context)
        return TaskFailureResult(message="commit reply lost", kind="timeout", retryable=True)


@RUNNERS
@pytest.mark.timeout(300)
def test_a_retry_finds_the_change_applied_and_passes_with_a_warning(
    make_genja: MakeGenja, runner: str, sshd: SSHServer, known_hosts: Path, device_dir: Path
) -> None:
    g = make_genja(
        {"s1": sshd_host(sshd, config=str(device_dir / "flaky"))},
        runner=runner,
        settings=ssh_settings(known_hosts),
    )
    results = g.run_task(EnsureNtpFlaky)
    result = results["s1"]
    assert isinstance(result, TaskSuccessResult)
    assert result.status is TaskStatus.PASSED_WITH_WARNINGS
    assert result.changed is False
    assert "a failed attempt may have applied the change" in result.warnings[0]
    assert result.execution_metadata is not None
    assert (result.execution_metadata.attempts, result.execution_metadata.retried) == (2, True)
    assert results.passed_hosts == ["s1"]
    assert results.to_dict()["hosts"]["s1"]["status"] == "passed_with_warnings"
