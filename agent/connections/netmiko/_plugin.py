"""The `netmiko` plugin: one netmiko session per host, its errors translated at one boundary.

The TCP connection is opened here (TCP_NODELAY, and refused / unreachable / DNS told apart,
which netmiko reports alike) and handed to netmiko, which does the rest: SSH, prompt, paging,
enable, config mode, per platform. A session is not thread-safe: calls on one connection run
one at a time.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import paramiko
from netmiko import ConnectHandler
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoBaseException,
    NetmikoTimeoutException,
    ReadTimeout,
)

from agent.connections._errors import (
    AuthenticationFailedError,
    CommandFailedError,
    CommandTimeoutError,
    ConnectFailedError,
    ConnectionConfigError,
    ConnectionFailure,
    ConnectTimeoutError,
    open_socket,
    scrub,
)
from agent.connections._extras import host_extras
from agent.connections._plugin import OpenContext
from agent.connections._result import CommandResult, cli_error
from agent.connections._threads import AsyncView, in_thread
from agent.connections.netmiko._settings import NetmikoExtras, NetmikoSettings
from genja._host import Host
from genja._platforms import netmiko_platform
from genja.task._parsing import parse_output


class NetmikoPlugin:
    settings_type: ClassVar[type | None] = NetmikoSettings

    def open(self, host: Host, context: OpenContext) -> NetmikoConnection:
        settings: NetmikoSettings = context.settings or NetmikoSettings()
        extras: NetmikoExtras = host_extras(host, "netmiko", NetmikoExtras)
        params = host.connection_params("netmiko")
        device_type = extras.device_type or netmiko_platform(params.platform)
        if not device_type:
            raise ConnectionConfigError(
                f"host {host.id!r}: netmiko needs a platform (the host's `platform`, or "
                "connection_options.netmiko.extras.device_type)",
                host_id=host.id,
            )

        def pick(name: str) -> Any:
            value = getattr(extras, name)
            return getattr(settings, name) if value is None else value

        hostname = params.hostname or host.id
        port = params.port or 22
        where = f"host {host.id!r} ({hostname}:{port})"
        secrets = (params.password, extras.secret, extras.passphrase)
        arguments: dict[str, Any] = {
            "device_type": device_type,
            "host": hostname,
            "port": port,
            "username": params.username or "",
            "password": params.password or "",
            "secret": extras.secret or "",
            "conn_timeout": pick("conn_timeout"),
            "banner_timeout": pick("banner_timeout"),
            "read_timeout_override": None,
            "fast_cli": pick("fast_cli"),
            "use_keys": bool(extras.use_keys or extras.key_file),
            "key_file": str(Path(extras.key_file).expanduser()) if extras.key_file else None,
            "passphrase": extras.passphrase,
            "allow_agent": bool(extras.allow_agent),
            "ssh_config_file": settings.ssh_config_file,
            "session_log": extras.session_log,
        }
        if pick("auth_timeout") is not None:
            arguments["auth_timeout"] = pick("auth_timeout")
        if settings.host_key_policy == "strict":
            known = settings.known_hosts or str(Path("~/.ssh/known_hosts").expanduser())
            arguments.update(
                ssh_strict=True, system_host_keys=False, alt_host_keys=True, alt_key_file=known
            )
        arguments.update(extras.options or {})
        sock = open_socket(hostname, port, arguments["conn_timeout"], host_id=host.id, where=where)
        arguments["sock"] = sock
        started = time.monotonic()
        try:
            session = ConnectHandler(**arguments)
            if extras.secret:
                session.enable()
        except Exception as error:
            sock.close()
            raise _classify_login(
                error, host.id, where=where, username=params.username, settings=settings,
                secrets=secrets,
            ) from error  # fmt: skip
        return NetmikoConnection(
            session,
            host_id=host.id,
            platform=device_type,
            read_timeout=pick("read_timeout"),
            executor=context.executor,
            secrets=secrets,
            login_ms=(time.monotonic() - started) * 1000,
        )

    def close(self) -> None:
        pass


def _classify_login(
    error: BaseException,
    host_id: str,
    *,
    where: str,
    username: str | None,
    settings: NetmikoSettings,
    secrets: Sequence[str | None],
) -> ConnectionFailure:
    if isinstance(error, ConnectionFailure):
        return error
    cause = error.__context__
    text = scrub(str(error), secrets)
    first = next((line for line in text.splitlines() if line.strip()), type(error).__name__)
    if isinstance(error, NetmikoAuthenticationException | paramiko.AuthenticationException):
        return AuthenticationFailedError(
            f"{where}: authentication failed for user {username or '(none)'!r}", host_id=host_id
        )
    if isinstance(error, paramiko.BadHostKeyException | NetmikoTimeoutException) and (
        "known_hosts" in text or isinstance(error, paramiko.BadHostKeyException)
    ):
        return AuthenticationFailedError(
            f"{where}: the host key is unknown or changed (netmiko.host_key_policy is strict)",
            host_id=host_id,
        )
    if isinstance(error, NetmikoTimeoutException):
        if "banner" in text.lower() or "banner" in str(cause).lower():
            return ConnectTimeoutError(
                f"{where}: no SSH banner within {settings.banner_timeout:g}s "
                "(the port accepts connections but does not speak SSH)",
                host_id=host_id,
            )
        return ConnectTimeoutError(f"{where}: {first}", host_id=host_id)
    if isinstance(error, ReadTimeout):
        return ConnectTimeoutError(
            f"{where}: logged in, but the CLI prompt did not come: {first}", host_id=host_id
        )
    if isinstance(error, ValueError) and "device_type" in text.lower():
        return ConnectionConfigError(f"{where}: {first}", host_id=host_id)
    if isinstance(error, EOFError | OSError | paramiko.SSHException):
        return ConnectFailedError(
            f"{where}: the device closed the session during login ({type(error).__name__})",
            host_id=host_id,
        )
    return ConnectFailedError(f"{where}: {type(error).__name__}: {first}", host_id=host_id)


class NetmikoConnection:
    """One netmiko session. Sync tasks call it directly; async tasks get `async_view()`.

    `session` is netmiko's own connection object, for what is not wrapped here."""

    def __init__(
        self,
        session: Any,
        *,
        host_id: str,
        platform: str,
        read_timeout: float,
        executor: concurrent.futures.Executor | None,
        secrets: Sequence[str | None],
        login_ms: float = 0.0,
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.host_id = host_id
        self.platform = platform
        self.session = session
        self.login_ms = login_ms
        self._read_timeout = read_timeout
        self._executor = executor
        self._secrets = tuple(secrets)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _translated(self, what: str, timeout: float) -> Iterator[None]:
        """One call at a time; netmiko's and paramiko's errors become classified ones."""
        with self._lock:
            try:
                yield
            except ConnectionFailure:
                raise
            except ReadTimeout as error:
                raise CommandTimeoutError(
                    f"host {self.host_id!r}: {what} did not return to the prompt within "
                    f"{timeout:g}s",
                    host_id=self.host_id,
                ) from error
            except (OSError, EOFError, paramiko.SSHException) as error:
                raise ConnectFailedError(
                    f"host {self.host_id!r}: the device closed the session during {what} "
                    f"({type(error).__name__})",
                    host_id=self.host_id,
                ) from error
            except NetmikoBaseException as error:
                message = scrub(str(error), self._secrets).strip().splitlines()
                raise CommandFailedError(
                    f"host {self.host_id!r}: {what}: {message[0] if message else error!r}",
                    host_id=self.host_id,
                ) from error

    def send_command(
        self,
        command: str,
        *,
        use_textfsm: bool = False,
        read_timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """netmiko's `send_command`: the output, or with `use_textfsm=True` its rows parsed by
        ntc-templates (ParseError, an `unsupported` failure, when there is no template)."""
        seconds = read_timeout if read_timeout is not None else self._read_timeout
        with self._translated(repr(command), seconds):
            output = self.session.send_command(command, read_timeout=seconds, **kwargs)
        if use_textfsm:
            return parse_output(str(output), command=command, platform=self.platform)
        return output

    def send_config_set(
        self, commands: str | Sequence[str], *, read_timeout: float | None = None, **kwargs: Any
    ) -> str:
        """netmiko's `send_config_set`: enters config mode, sends the lines, leaves."""
        seconds = read_timeout if read_timeout is not None else self._read_timeout
        with self._translated("the config set", seconds):
            return str(self.session.send_config_set(commands, read_timeout=seconds, **kwargs))

    def save_config(self, **kwargs: Any) -> str:
        with self._translated("save_config", self._read_timeout):
            return str(self.session.save_config(**kwargs))

    def execute_command(
        self, command: str, *, timeout: float | None = None, check: bool = False
    ) -> CommandResult:
        """The common name across plugins: the command's output as a `CommandResult` (no exit
        status on a CLI); `check=True` turns a CLI error (`% Invalid input`, ...) into
        CommandFailedError."""
        output = str(self.send_command(command, read_timeout=timeout))
        rejected = cli_error(output) if check else None
        if rejected is not None:
            raise CommandFailedError(
                f"host {self.host_id!r}: the CLI rejected {command!r}: {rejected[:200]}",
                host_id=self.host_id,
                output=output,
            )
        return CommandResult(output)

    def is_alive(self) -> bool:
        """Whether the SSH session is still open. Not netmiko's `is_alive`: that writes a NUL
        byte into the CLI, whose echo can arrive in the middle of the next command's prompt
        search (fakenos devices echo it, and then a third of warm `send_command`s timed out)."""
        channel = getattr(self.session, "remote_conn", None)
        if isinstance(channel, paramiko.Channel):
            transport = channel.get_transport()
            return transport is not None and transport.is_active() and not channel.closed
        if not self._lock.acquire(blocking=False):
            return True  # in use right now, so alive enough
        try:  # telnet (netmiko sends IAC NOPs), serial
            return bool(self.session.is_alive())
        except (OSError, EOFError, paramiko.SSHException):
            return False
        finally:
            self._lock.release()

    def async_view(self) -> AsyncNetmikoConnection:
        return AsyncNetmikoConnection(self)

    def close(self) -> None:
        with (
            self._lock,
            contextlib.suppress(OSError, EOFError, paramiko.SSHException, socket.error),
        ):
            self.session.disconnect()

    def __repr__(self) -> str:
        return (
            f"NetmikoConnection(host={self.host_id!r}, platform={self.platform!r}, id={self.id!r})"
        )


class AsyncNetmikoConnection(AsyncView[NetmikoConnection]):
    """The awaitable face of a NetmikoConnection: each call runs on one of the agent's task
    threads, so the agent's event loop never waits on the device."""

    @property
    def platform(self) -> str:
        return self.sync.platform

    async def send_command(self, command: str, **kwargs: Any) -> Any:
        return await in_thread(self.sync._executor, self.sync.send_command, command, **kwargs)

    async def send_config_set(self, commands: str | Sequence[str], **kwargs: Any) -> str:
        return await in_thread(self.sync._executor, self.sync.send_config_set, commands, **kwargs)

    async def save_config(self, **kwargs: Any) -> str:
        return await in_thread(self.sync._executor, self.sync.save_config, **kwargs)

    async def execute_command(
        self, command: str, *, timeout: float | None = None, check: bool = False
    ) -> CommandResult:
        return await in_thread(
            self.sync._executor, self.sync.execute_command, command, timeout=timeout, check=check
        )
