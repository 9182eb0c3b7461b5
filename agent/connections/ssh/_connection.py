"""One logged-in SSH session to a server: commands on exec channels, SFTP, a session log.

stdout and stderr are read together, as they arrive (a command that fills one stream while we
wait on the other would stall once the channel's window fills), up to `max_output` bytes in
all, within the command timeout.
"""

from __future__ import annotations

import concurrent.futures
import os
import select
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

import paramiko

from agent.connections._errors import (
    CommandFailedError,
    CommandTimeoutError,
    ConnectFailedError,
    TransferFailedError,
    scrub,
)
from agent.connections._result import CommandResult
from agent.connections._threads import AsyncView, in_thread
from agent.connections.ssh._options import SSHOptions

_CHUNK = 65536


class SSHConnection:
    """`execute_command` runs a command on an exec channel and returns a `CommandResult`;
    `put` / `get` copy files over SFTP. Sync tasks call it directly; async tasks get
    `async_view()`, whose methods are awaitable."""

    def __init__(
        self, client: Any, options: SSHOptions, executor: concurrent.futures.Executor | None
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.host_id = options.host_id
        self.platform = options.platform
        self._client = client
        self._options = options
        self._executor = executor
        self._sftp: Any = None
        self._sftp_lock = threading.Lock()
        self._log: SessionLog | None = (
            SessionLog(options.session_log, options.secrets) if options.session_log else None
        )

    def is_alive(self) -> bool:
        transport = self._client.get_transport()
        return transport is not None and bool(transport.is_active())

    # ---------------------------------------------------------------- commands

    def execute_command(
        self, command: str, *, timeout: float | None = None, check: bool = False
    ) -> CommandResult:
        """Run `command`; its stdout as a `CommandResult` (a str) with `.stderr`,
        `.exit_status` and `.ok`. `check=True` turns a non-zero exit status into
        CommandFailedError (a `command` failure) naming the status and stderr's last line."""
        seconds = timeout if timeout is not None else self._options.command_timeout
        deadline = time.monotonic() + seconds
        try:
            channel = self._client.get_transport().open_session(timeout=seconds)
            channel.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError, AttributeError) as error:
            raise ConnectFailedError(
                f"host {self.host_id!r}: cannot start {command!r}: the session is gone "
                f"({type(error).__name__})",
                host_id=self.host_id,
            ) from error
        try:
            stdout, stderr = self._read_both(channel, deadline, command, seconds)
            if not channel.status_event.wait(max(deadline - time.monotonic(), 0)):
                raise self._timed_out(command, seconds)
            status = channel.exit_status
        finally:
            channel.close()
        if status == -1:
            raise ConnectFailedError(
                f"host {self.host_id!r}: the session closed before {command!r} finished",
                host_id=self.host_id,
            )
        result = CommandResult(
            stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"), status
        )
        if self._log is not None:
            self._log.command(command, result)
        if check and status != 0:
            # The last line of stderr: where shells put the error (login noise comes first).
            last = (result.stderr.strip() or result.strip()).splitlines()[-1:]
            detail = f": {last[0][:200]}" if last else ""
            raise CommandFailedError(
                f"host {self.host_id!r}: {command!r} exited with status {status}{detail}",
                host_id=self.host_id,
                exit_status=status,
                output=str(result),
            )
        return result

    def _read_both(
        self, channel: Any, deadline: float, command: str, timeout: float
    ) -> tuple[bytes, bytes]:
        streams: tuple[list[bytes], list[bytes]] = ([], [])
        readers = (
            (channel.recv_ready, channel.recv),
            (channel.recv_stderr_ready, channel.recv_stderr),
        )
        size = 0
        limit = self._options.max_output
        while True:
            # EOF first: data that arrived before it is in the buffers drained next.
            ended = channel.eof_received or channel.closed
            got = False
            for chunks, (ready, recv) in zip(streams, readers, strict=True):
                while ready():
                    data = recv(_CHUNK)
                    chunks.append(data)
                    size += len(data)
                    got = True
                    if size > limit:
                        raise CommandFailedError(
                            f"host {self.host_id!r}: {command!r} printed more than {limit:,} "
                            f"bytes (max_output); stopped after {size:,}",
                            host_id=self.host_id,
                        )
            if ended:
                return b"".join(streams[0]), b"".join(streams[1])
            if got:
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(command, timeout)
            # The channel's file descriptor is readable when either stream has data or EOF.
            select.select([channel], [], [], remaining)

    def _timed_out(self, command: str, timeout: float) -> CommandTimeoutError:
        return CommandTimeoutError(
            f"host {self.host_id!r}: {command!r} did not finish within {timeout:g}s",
            host_id=self.host_id,
        )

    # ---------------------------------------------------------------- files

    def put(self, local: str | os.PathLike[str], remote: str) -> int:
        """Copy the local file to `remote` over SFTP; the bytes copied."""
        attributes = self._transfer("put", str(local), remote)
        return int(attributes.st_size or 0)

    def get(self, remote: str, local: str | os.PathLike[str]) -> int:
        """Copy `remote` to the local file over SFTP; the bytes copied."""
        self._transfer("get", remote, str(local))
        return Path(local).stat().st_size

    def _transfer(self, direction: str, source: str, target: str) -> Any:
        try:
            with self._sftp_lock:
                if self._sftp is None:
                    self._sftp = self._client.open_sftp()
                sftp = self._sftp
            method = sftp.put if direction == "put" else sftp.get
            return method(source, target)
        except OSError as error:  # IOError from the server, or a local file problem
            reason = error.strerror or str(error) or type(error).__name__
            raise TransferFailedError(
                f"host {self.host_id!r}: sftp {direction} {source} -> {target}: {reason}",
                host_id=self.host_id,
            ) from error
        except (paramiko.SSHException, EOFError) as error:
            raise ConnectFailedError(
                f"host {self.host_id!r}: sftp {direction} failed: the session is gone "
                f"({type(error).__name__})",
                host_id=self.host_id,
            ) from error

    # ---------------------------------------------------------------- lifetime

    def async_view(self) -> AsyncSSHConnection:
        return AsyncSSHConnection(self)

    def close(self) -> None:
        with self._sftp_lock:
            sftp, self._sftp = self._sftp, None
        if sftp is not None:
            sftp.close()
        self._client.close()
        if self._log is not None:
            self._log.close()

    def __repr__(self) -> str:
        return (
            f"SSHConnection(host={self.host_id!r}, address={self._options.address!r}, "
            f"id={self.id!r})"
        )


class AsyncSSHConnection(AsyncView[SSHConnection]):
    """The awaitable face of an SSHConnection, for `start_async` tasks: each call runs on one
    of the agent's task threads."""

    @property
    def platform(self) -> str | None:
        return self.sync.platform

    async def execute_command(
        self, command: str, *, timeout: float | None = None, check: bool = False
    ) -> CommandResult:
        return await in_thread(
            self.sync._executor, self.sync.execute_command, command, timeout=timeout, check=check
        )

    async def put(self, local: str | os.PathLike[str], remote: str) -> int:
        return await in_thread(self.sync._executor, self.sync.put, local, remote)

    async def get(self, remote: str, local: str | os.PathLike[str]) -> int:
        return await in_thread(self.sync._executor, self.sync.get, remote, local)


class SessionLog:
    """A per-host transcript of commands and what they printed, appended to a file; every
    secret of the host (password, passphrase, key) masked (`genja._secrets.MASK`)."""

    def __init__(self, path: str, secrets: tuple[str | None, ...]) -> None:
        target = Path(path).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = target.open("a", encoding="utf-8")
        self._secrets = secrets
        self._lock = threading.Lock()

    def command(self, command: str, result: CommandResult) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        parts = [f"# {stamp} exit {result.exit_status}\n$ {command}\n", str(result)]
        if result.stderr:
            parts.append(f"[stderr]\n{result.stderr}")
        text = scrub("".join(parts), self._secrets)
        with self._lock:
            self._file.write(text if text.endswith("\n") else text + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()
