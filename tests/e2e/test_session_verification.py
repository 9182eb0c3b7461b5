"""Session verification end to end: on real agent processes and under `serial`, against real
sshd. A change that keeps us in is followed by a fresh login; a change that locks us out (the
task removes the key it logged in with from the server's authorized_keys) fails the host as a
`connection` failure that says the change may already be applied."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

from genja.task import (
    Host,
    HostTaskResult,
    SessionVerificationConfig,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)
from tests.conftest import MakeGenja
from tests.e2e._ssh_hosts import ssh_settings, sshd_host
from tests.servers.sshd import SSHServer, sshd_available, start_sshd

pytestmark = pytest.mark.e2e

cloudpickle.register_pickle_by_value(sys.modules[__name__])

RUNNERS = pytest.mark.parametrize("runner", ["agents", "serial"])


@task(name="session_after", connection_plugin_name="ssh")
class SessionAfter:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return TaskSuccessResult(metadata={"session": context.connection().id})


@task(
    name="tighten_acl",
    connection_plugin_name="ssh",
    session_verification=SessionVerificationConfig(max_attempts=2, delay_ms=50),
    sub_tasks=[SessionAfter],
)
class TightenAcl:
    """Changes something that leaves our access alone (`changed` from the host's data)."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        connection = context.connection()
        connection.execute_command("true", check=True)
        return TaskSuccessResult(
            changed=host.get("changed", True),
            summary="acl tightened",
            metadata={"session": connection.id},
        )


@task(
    name="rotate_keys",
    connection_plugin_name="ssh",
    session_verification=SessionVerificationConfig(max_attempts=2, delay_ms=50),
    sub_tasks=[SessionAfter],
)
class RotateKeys:
    """Replaces the server's authorized keys, ours included: nobody can log in with it again."""

    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> HostTaskResult:
        path = shlex.quote(host.get("authorized_keys"))
        await context.connection().execute_command(f": > {path}", check=True)
        return TaskSuccessResult(changed=True, diff="-our key", summary="keys rotated")


@RUNNERS
@pytest.mark.timeout(300)
def test_a_change_is_followed_by_a_fresh_session(
    make_genja: MakeGenja, runner: str, sshd: SSHServer, known_hosts: Path
) -> None:
    g = make_genja(
        {"changed": sshd_host(sshd), "unchanged": sshd_host(sshd, changed=False)},
        runner=runner,
        settings=ssh_settings(known_hosts),
    )
    before = sshd.logins()
    results = g.run_task(TightenAcl)
    assert results.failed_hosts == [], results.to_json(pretty=True)
    changed, unchanged = results["changed"], results["unchanged"]
    assert isinstance(changed, TaskSuccessResult)
    assert isinstance(unchanged, TaskSuccessResult)
    assert changed.summary == "acl tightened"
    after = results.sub_task("session_after")
    # the changed host's next task runs on the session the verification opened
    assert after["changed"].metadata["session"] != changed.metadata["session"]
    assert after["unchanged"].metadata["session"] == unchanged.metadata["session"]
    assert sshd.logins() - before == 3  # one each, and the changed host's fresh one


@pytest.fixture
def own_sshd() -> Iterator[SSHServer]:
    """An sshd of the test's own, whose authorized_keys the test account may rewrite (the
    change under test removes our key from it)."""
    reason = sshd_available()
    if reason is not None:
        pytest.skip(reason)
    server = start_sshd()
    (server.workdir / "authorized_keys").chmod(0o666)
    yield server
    server.stop()


@RUNNERS
@pytest.mark.timeout(300)
def test_a_change_that_locks_us_out_fails_the_host(
    make_genja: MakeGenja, runner: str, own_sshd: SSHServer, known_hosts: Path
) -> None:
    authorized = str(own_sshd.workdir / "authorized_keys")
    g = make_genja(
        {"s1": sshd_host(own_sshd, password=False, authorized_keys=authorized)},
        runner=runner,
        settings=ssh_settings(known_hosts),
    )
    results = g.run_task(RotateKeys)
    failure = results["s1"]
    assert isinstance(failure, TaskFailureResult), failure
    assert failure.kind is TaskFailureKind.CONNECTION
    assert failure.retryable is False
    assert failure.message.startswith(
        "task 'rotate_keys' changed host 's1', but a new ssh session could not be established "
        "afterwards (2 attempt(s)): host 's1' (127.0.0.1:"
    )
    assert "authentication failed" in failure.message
    assert failure.message.endswith("The change may already be applied; it was not rolled back")
    assert failure.details["session_verification"] == {
        "attempts": 2,
        "last_failure_kind": "authentication",
    }
    assert failure.details["task_result"]["summary"] == "keys rotated"
    assert Path(authorized).read_text() == ""  # the change happened
    assert own_sshd.logins() == 1  # only the task's own session ever got in
    # the sub-task does not knock on the device's AAA again: the run remembers the failed
    # login and fails the host's later nodes with it, at once (the verification's logins also
    # used up the run's login budget, 1 + 2 of 3)
    later = results.sub_task("session_after")["s1"]
    assert isinstance(later, TaskFailureResult)
    assert later.kind is TaskFailureKind.AUTHENTICATION
    assert "authentication failed" in later.message
    assert own_sshd.logins() == 1
    assert results.failed_hosts == ["s1"]
