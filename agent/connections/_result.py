"""What a command returns: its output, which is also everything a task needs to judge it."""

from __future__ import annotations

import re


class CommandResult(str):
    """A command's stdout, as a `str` (so `out.splitlines()` and `"x" in out` work as they
    did), carrying `stderr`, `exit_status` (None where the transport has none: a device CLI)
    and `ok` (exit status 0, or None and no CLI error)."""

    stderr: str
    exit_status: int | None

    def __new__(
        cls, stdout: str, stderr: str = "", exit_status: int | None = None
    ) -> CommandResult:
        result = super().__new__(cls, stdout)
        result.stderr = stderr
        result.exit_status = exit_status
        return result

    @property
    def stdout(self) -> str:
        return str(self)

    @property
    def ok(self) -> bool:
        return self.exit_status in (0, None)

    def __repr__(self) -> str:
        return (
            f"CommandResult(stdout={str(self)[:60]!r}, stderr={self.stderr[:60]!r}, "
            f"exit_status={self.exit_status!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (CommandResult, (str(self), self.stderr, self.exit_status))


# How CLIs say they refused a line (IOS / EOS / NX-OS `% Invalid input`, Junos `syntax error`,
# `unknown command`). Used by `execute_command(check=True)` of the CLI plugins: a device CLI has
# no exit status. scrapli's own per-platform patterns are used where it has them.
_CLI_ERROR = re.compile(
    r"^\s*(% ?Invalid input|% ?Incomplete command|% ?Ambiguous command|% ?Unknown command"
    r"|% ?Invalid command|unknown command|syntax error|error: )",
    re.IGNORECASE | re.MULTILINE,
)


def cli_error(output: str) -> str | None:
    """The line where a device CLI rejected a command, or None."""
    match = _CLI_ERROR.search(output)
    if match is None:
        return None
    start = output.rfind("\n", 0, match.start()) + 1
    end = output.find("\n", match.start())
    return output[start : end if end >= 0 else len(output)].strip()
