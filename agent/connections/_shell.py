"""An interactive CLI session over one SSH channel, for devices that only speak a shell.

The prompt is learned once at login (the last line once the device goes quiet, confirmed by a
second newline); commands are sent one at a time and read until that prompt comes back, with a
per-command deadline. The prompt may change mode suffixes (`r1>`, `r1#`, `r1(config)#`): only the
base name is pinned.
"""

from __future__ import annotations

import re
import time
from typing import Any

import paramiko

from agent.connections._errors import (
    AuthenticationFailedError,
    CommandFailedError,
    CommandTimeoutError,
    ConnectFailedError,
)

# A line that looks like a prompt: no blanks, ends with one of the usual prompt characters.
_ANY_PROMPT = re.compile(r"([^\s]{1,120}?)(\([^)\s]{0,40}\))?[>#$%]\s?$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]")

# Commands that turn paging (and line wrapping) off, by CLI family.
PAGING_OFF = {
    "ios": ("terminal length 0", "terminal width 511"),
    "eos": ("terminal length 0", "terminal width 511"),
    "nxos": ("terminal length 0", "terminal width 511"),
    "iosxr": ("terminal length 0", "terminal width 511"),
    "junos": ("set cli screen-length 0",),
}
# Families whose privileged commands need `enable` first when the prompt ends in `>`.
_ENABLE = frozenset({"ios", "eos", "nxos"})
# Output that means the CLI rejected the command (for check=True).
_REJECTED = re.compile(
    r"^\s*(% ?Invalid input|% ?Incomplete command|% ?Ambiguous command|% ?Unknown command"
    r"|% ?Invalid command|unknown command|syntax error|error: )",
    re.IGNORECASE | re.MULTILINE,
)


def _clean(data: str) -> str:
    return _ANSI.sub("", data).replace("\r\n", "\n").replace("\r", "")


class ShellSession:
    def __init__(self, channel: Any, host_id: str, family: str | None) -> None:
        self._channel = channel
        self._host_id = host_id
        self._family = family
        self._prompt: re.Pattern[str] | None = None
        self.base_prompt = ""

    @property
    def closed(self) -> bool:
        return bool(self._channel.closed)

    def close(self) -> None:
        self._channel.close()

    def _write(self, data: bytes, when: str) -> None:
        try:
            self._channel.sendall(data)
        except (OSError, EOFError, paramiko.SSHException) as error:
            raise self._closed_error(when) from error

    # ---------------------------------------------------------------- login

    def start(self, timeout: float, secret: str | None) -> None:
        """Learn the prompt, enter enable mode where needed, turn paging off."""
        self._learn_prompt(timeout)
        if self._family in _ENABLE and self._last_prompt.endswith(">"):
            self._enable(secret, timeout)
        for command in PAGING_OFF.get(self._family or "", ()):
            self.send(command, timeout)

    def _learn_prompt(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._write(b"\n", "before the first prompt")
        text = self._read_quiet(deadline)
        last = text.rstrip("\n").rsplit("\n", 1)[-1].strip()
        match = _ANY_PROMPT.fullmatch(last)
        if match is None:
            raise CommandTimeoutError(
                f"host {self._host_id!r}: no CLI prompt within {timeout:g}s "
                f"(last line: {last[-60:]!r})",
                host_id=self._host_id,
            )
        self.base_prompt = match.group(1)
        self._prompt = re.compile(re.escape(self.base_prompt) + r"(\([^)\s]{0,40}\))?[>#$%]\s?$")
        self._last_prompt = last

    def _read_quiet(self, deadline: float) -> str:
        """Read until something prompt-like arrived and the device stayed quiet for a moment."""
        chunks: list[str] = []
        quiet = 0.3
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _clean("".join(chunks))
            self._channel.settimeout(min(quiet, remaining))
            try:
                data = self._channel.recv(65536)
            except TimeoutError:
                text = _clean("".join(chunks))
                last = text.rstrip("\n").rsplit("\n", 1)[-1].strip()
                if _ANY_PROMPT.fullmatch(last):
                    return text
                continue
            if not data:
                raise self._closed_error("while waiting for the first prompt")
            chunks.append(data.decode("utf-8", "replace"))

    def _enable(self, secret: str | None, timeout: float) -> None:
        self._write(b"enable\n", "at `enable`")
        text = self._read_until(timeout, "enable", extra=re.compile(r"[Pp]assword:\s*$"))
        if re.search(r"[Pp]assword:\s*$", text):
            if not secret:
                raise AuthenticationFailedError(
                    f"host {self._host_id!r}: `enable` asks for a password and none is set "
                    "(connection_options.ssh.extras.secret)",
                    host_id=self._host_id,
                )
            self._write(secret.encode() + b"\n", "at the `enable` password")
            self._read_until(timeout, "enable", echo=False)
        if self._last_prompt.endswith(">"):
            raise AuthenticationFailedError(
                f"host {self._host_id!r}: `enable` was refused", host_id=self._host_id
            )

    # ---------------------------------------------------------------- commands

    def send(self, command: str, timeout: float, *, check: bool = False) -> str:
        """Send one command line and return its output, without the echo and the prompt."""
        if self.closed:
            raise self._closed_error(f"before {command!r} was sent")
        self._drain()
        self._write(command.encode() + b"\n", f"before {command!r} was sent")
        text = self._read_until(timeout, command)
        lines = text.split("\n")[1:]  # drop the echo line
        if lines and self._prompt is not None and self._prompt.search(lines[-1].strip()):
            lines = lines[:-1]
        output = "\n".join(lines).strip("\n")
        if check and _REJECTED.search(output):
            raise CommandFailedError(
                f"host {self._host_id!r}: the CLI rejected {command!r}: "
                f"{output.strip().splitlines()[0][:200]}",
                host_id=self._host_id,
                exit_status=1,
                output=output,
            )
        return output

    def _drain(self) -> None:
        """Drop output left over from earlier commands (late banners, async log lines)."""
        while self._channel.recv_ready():
            self._channel.recv(65536)

    def _read_until(
        self,
        timeout: float,
        command: str,
        extra: re.Pattern[str] | None = None,
        *,
        echo: bool = True,
    ) -> str:
        """Read until the prompt returns after the echo of `command` (a prompt that arrives
        before the echo is a late answer to something earlier, not the end of this command).
        The text from the echo line on; with `echo=False` (a password), from the start."""
        assert self._prompt is not None
        deadline = time.monotonic() + timeout
        chunks: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CommandTimeoutError(
                    f"host {self._host_id!r}: {command!r} did not return to the prompt "
                    f"within {timeout:g}s",
                    host_id=self._host_id,
                )
            self._channel.settimeout(remaining)
            try:
                data = self._channel.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise self._closed_error(f"while {command!r} was running")
            chunks.append(data.decode("utf-8", "replace"))
            text = _clean("".join(chunks))
            if echo:
                start = text.find(command.strip())
                if start < 0:
                    continue
                text = text[text.rfind("\n", 0, start) + 1 :]
            last = text.rsplit("\n", 1)[-1].strip()
            if self._prompt.fullmatch(last) and "\n" in text:
                self._last_prompt = last
                return text
            if extra is not None and extra.search(text):
                return text

    def _closed_error(self, when: str) -> ConnectFailedError:
        return ConnectFailedError(
            f"host {self._host_id!r}: the device closed the session {when}",
            host_id=self._host_id,
        )
