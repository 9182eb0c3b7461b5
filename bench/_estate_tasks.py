"""The estate's two tasks. The agents get them by value (bench/ is not installed there), so
this module imports nothing but genja's task API."""

from __future__ import annotations

from genja.task import (
    Host,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)

# What a held host runs instead of its check: it never finishes by itself, so the run that
# kills its pool's agents always has a host of that pool in flight when they die.
HOLD_COMMAND = "exec sleep 3600"
HOLD_SECONDS = 3600


@task(name="noop")
class Noop:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        return TaskSuccessResult()


@task(name="ssh_check", connection_plugin_name="ssh", options={"hold": []})
class SshCheck:
    """`echo $SSH_CONNECTION` over the ssh plugin: sshd answers with the client's and its own
    address, which proves the session came from the pool's namespace to this host's target.
    `task.options["hold"]` names hosts that run HOLD_COMMAND instead."""

    def start(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> TaskSuccessResult | TaskFailureResult:
        options = task.options or {}
        if host.id in options.get("hold", ()):
            context.connection().execute_command(HOLD_COMMAND, timeout=HOLD_SECONDS)
            return TaskFailureResult(message="a held host finished")
        output = str(context.connection().execute_command("echo $SSH_CONNECTION"))
        client, _, server, _ = (output.split() + ["?"] * 4)[:4]
        if server != host.hostname or client != host.data["jump_address"]:
            return TaskFailureResult(
                message=f"expected a session from {host.data['jump_address']} to "
                f"{host.hostname}, sshd saw {output.strip()!r}"
            )
        return TaskSuccessResult(result={"from": client})
