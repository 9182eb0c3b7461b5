"""The `scrapli` plugin: one scrapli driver per host, sync or asyncio, errors translated here.

The transport picks the driver: `paramiko`, `system` and `ssh2` run scrapli's synchronous
driver (sync tasks call it directly, async tasks through a worker thread); `asyncssh` runs its
asyncio driver natively on the plugin's own event loop (see `agent.connections._loop`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import select
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from scrapli import AsyncScrapli, Scrapli
from scrapli.exceptions import (
    ScrapliAuthenticationFailed,
    ScrapliConnectionNotOpened,
    ScrapliException,
    ScrapliTimeout,
    ScrapliUnsupportedPlatform,
)
from scrapli.transport.base.base_socket import Socket as ScrapliSocket

from agent.connections._errors import (
    AuthenticationFailedError,
    CommandFailedError,
    CommandTimeoutError,
    ConnectFailedError,
    ConnectionConfigError,
    ConnectionFailure,
    ConnectTimeoutError,
    scrub,
    socket_failure,
)
from agent.connections._extras import host_extras
from agent.connections._loop import LoopThread
from agent.connections._plugin import OpenContext
from agent.connections._result import CommandResult, cli_error
from agent.connections._threads import AsyncView, in_thread
from agent.connections.scrapli._settings import ASYNC_TRANSPORTS, ScrapliExtras, ScrapliSettings
from genja._host import Host

# Inventory platform names -> scrapli's core platforms; others pass through (scrapli-community).
_PLATFORMS = {
    "ios": "cisco_iosxe",
    "cisco_ios": "cisco_iosxe",
    "iosxe": "cisco_iosxe",
    "cisco_xe": "cisco_iosxe",
    "nxos": "cisco_nxos",
    "iosxr": "cisco_iosxr",
    "cisco_xr": "cisco_iosxr",
    "eos": "arista_eos",
    "junos": "juniper_junos",
    "juniper": "juniper_junos",
}

_DRIVER_ERRORS = (ScrapliException, OSError, EOFError)


def scrapli_platform(platform: str | None) -> str | None:
    if not platform:
        return None
    return _PLATFORMS.get(platform.lower(), platform.lower())


class ScrapliPlugin:
    settings_type: ClassVar[type | None] = ScrapliSettings

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: LoopThread | None = None

    def _loop_thread(self) -> LoopThread:
        with self._lock:
            if self._loop is None:
                self._loop = LoopThread("genja-scrapli-loop")
            return self._loop

    def open(self, host: Host, context: OpenContext) -> ScrapliConnection:
        settings: ScrapliSettings = context.settings or ScrapliSettings()
        extras: ScrapliExtras = host_extras(host, "scrapli", ScrapliExtras)
        params = host.connection_params("scrapli")
        platform = extras.platform or scrapli_platform(params.platform)
        if not platform:
            raise ConnectionConfigError(
                f"host {host.id!r}: scrapli needs a platform (the host's `platform`, or "
                "connection_options.scrapli.extras.platform)",
                host_id=host.id,
            )

        def pick(name: str) -> Any:
            value = getattr(extras, name)
            return getattr(settings, name) if value is None else value

        hostname = params.hostname or host.id
        port = params.port or 22
        transport = pick("transport")
        arguments: dict[str, Any] = {
            "platform": platform,
            "host": hostname,
            "port": port,
            "auth_username": params.username or "",
            "auth_password": params.password or "",
            "auth_secondary": extras.auth_secondary or "",
            "auth_strict_key": settings.auth_strict_key,
            "transport": transport,
            "timeout_socket": pick("timeout_socket"),
            "timeout_transport": pick("timeout_transport"),
            "timeout_ops": pick("timeout_ops"),
            "ssh_config_file": settings.ssh_config_file or False,
            "ssh_known_hosts_file": settings.ssh_known_hosts_file or False,
        }
        if extras.auth_private_key:
            arguments["auth_private_key"] = extras.auth_private_key
            arguments["auth_private_key_passphrase"] = extras.auth_private_key_passphrase or ""
        if extras.channel_log:
            arguments["channel_log"] = extras.channel_log
        arguments.update(extras.options or {})
        where = f"host {host.id!r} ({hostname}:{port})"
        secrets = (params.password, extras.auth_secondary, extras.auth_private_key_passphrase)
        loop = self._loop_thread() if transport in ASYNC_TRANSPORTS else None
        driver: Any = None
        try:
            if loop is None:
                driver = Scrapli(**arguments)
                if transport == "paramiko":
                    # paramiko waits 15 s for a banner whatever timeout_socket says: give it a
                    # socket whose banner already arrived (or fail in timeout_socket).
                    driver.transport.socket = _socket_with_banner(
                        hostname, port, arguments["timeout_socket"], where, host.id
                    )
                driver.open()
            else:
                driver = loop.run(_open_async(arguments))
        except Exception as error:
            _release_socket(driver)
            raise _classify_login(
                error, host.id, where=where, username=params.username, secrets=secrets,
                timeout=arguments["timeout_socket"],
            ) from error  # fmt: skip
        return ScrapliConnection(
            driver,
            host_id=host.id,
            platform=platform,
            loop=loop,
            executor=context.executor,
            secrets=secrets,
        )

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()


def _socket_with_banner(hostname: str, port: int, timeout: float, where: str, host_id: str) -> Any:
    """A scrapli socket, connected, once the server's first bytes (its SSH banner) are
    there to read; ConnectTimeoutError when they do not come within `timeout` seconds."""
    scrapli_socket = ScrapliSocket(host=hostname, port=port, timeout=timeout)
    try:
        scrapli_socket.open()
    except BaseException:
        if scrapli_socket.sock is not None:  # scrapli leaves a refused socket open
            scrapli_socket.sock.close()
        raise
    sock = scrapli_socket.sock
    assert sock is not None
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        scrapli_socket.close()
        raise ConnectTimeoutError(f"{where}: no SSH banner within {timeout:g}s", host_id=host_id)
    return scrapli_socket


async def _open_async(arguments: dict[str, Any]) -> Any:
    driver = AsyncScrapli(**arguments)
    try:
        await driver.open()
    except BaseException:
        _release_socket(driver)
        raise
    return driver


def _release_socket(driver: Any) -> None:
    """Close the TCP socket of a driver whose login failed: scrapli's own close() skips a
    socket that never connected (refused), which then leaks until garbage collection."""
    sock = getattr(getattr(getattr(driver, "transport", None), "socket", None), "sock", None)
    if isinstance(sock, socket.socket):
        sock.close()


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _classify_login(
    error: BaseException,
    host_id: str,
    *,
    where: str,
    username: str | None,
    secrets: Sequence[str | None],
    timeout: float,
) -> ConnectionFailure:
    if isinstance(error, ConnectionFailure):
        return error
    for cause in _causes(error):
        failure = socket_failure(cause, where, host_id, timeout)
        if failure is not None:
            return failure
    text = scrub(str(error), secrets).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    if isinstance(error, ScrapliAuthenticationFailed):
        if "timed out" in text.lower() or "banner" in text.lower():
            return ConnectTimeoutError(
                f"{where}: no SSH banner or login prompt in time ({first})", host_id=host_id
            )
        return AuthenticationFailedError(
            f"{where}: authentication failed for user {username or '(none)'!r}", host_id=host_id
        )
    if isinstance(error, ScrapliTimeout):
        return ConnectTimeoutError(f"{where}: timed out logging in: {first}", host_id=host_id)
    if isinstance(error, ScrapliUnsupportedPlatform):
        return ConnectionConfigError(f"{where}: {first}", host_id=host_id)
    return ConnectFailedError(f"{where}: {type(error).__name__}: {first}", host_id=host_id)


class ScrapliConnection:
    """One scrapli driver. Methods are scrapli's (`send_command`, `send_commands`,
    `send_config`, `send_configs`, returning scrapli's `Response` / `MultiResponse`, which
    parse with `.textfsm_parse_output()` / `.genie_parse_output()`), plus `execute_command`.
    `driver` is scrapli's own object, for what is not wrapped here."""

    def __init__(
        self,
        driver: Any,
        *,
        host_id: str,
        platform: str,
        loop: LoopThread | None,
        executor: concurrent.futures.Executor | None,
        secrets: Sequence[str | None],
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.host_id = host_id
        self.platform = platform
        self.driver = driver
        self.is_async_driver = loop is not None
        self._loop = loop
        self._executor = executor
        self._secrets = tuple(secrets)
        self._lock = threading.Lock()
        self._async_lock: asyncio.Lock | None = None  # made on, and used on, the plugin's loop

    async def _one_at_a_time(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The asyncio driver's `call`, after any earlier call on this connection finished:
        a driver reads one command's output at a time."""
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        async with self._async_lock:
            return await call(*args, **kwargs)

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except ScrapliTimeout as error:
            raise CommandTimeoutError(
                f"host {self.host_id!r}: {what} did not return to the prompt in time",
                host_id=self.host_id,
            ) from error
        except (ScrapliConnectionNotOpened, OSError, EOFError) as error:
            raise ConnectFailedError(
                f"host {self.host_id!r}: the device closed the session during {what} "
                f"({type(error).__name__})",
                host_id=self.host_id,
            ) from error
        except ScrapliException as error:
            text = scrub(str(error), self._secrets).strip()
            raise CommandFailedError(
                f"host {self.host_id!r}: {what}: {text.splitlines()[0] if text else error!r}",
                host_id=self.host_id,
            ) from error

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """The driver's `method`, from a worker thread: directly (one call at a time), or on
        the plugin's loop for the asyncio driver."""
        call: Callable[..., Any] = getattr(self.driver, method)
        with self._translated(what):
            if self._loop is not None:
                return self._loop.run(self._one_at_a_time(call, *args, **kwargs))
            with self._lock:
                return call(*args, **kwargs)

    def send_command(self, command: str, **kwargs: Any) -> Any:
        return self._call(repr(command), "send_command", command, **kwargs)

    def send_commands(self, commands: Sequence[str], **kwargs: Any) -> Any:
        return self._call("the commands", "send_commands", list(commands), **kwargs)

    def send_config(self, config: str, **kwargs: Any) -> Any:
        return self._call("the config", "send_config", config, **kwargs)

    def send_configs(self, configs: Sequence[str], **kwargs: Any) -> Any:
        return self._call("the configs", "send_configs", list(configs), **kwargs)

    def execute_command(
        self, command: str, *, timeout: float | None = None, check: bool = False
    ) -> CommandResult:
        """The common name across plugins: the output as a `CommandResult` (no exit status on
        a CLI); `check=True` turns what scrapli's platform marks as failed, or a CLI error
        line (`% Invalid input`, ...), into CommandFailedError."""
        response = self.send_command(command, timeout_ops=timeout)
        return _checked(self.host_id, command, response, check)

    def is_alive(self) -> bool:
        try:
            return bool(self.driver.isalive())
        except _DRIVER_ERRORS:
            return False

    def async_view(self) -> AsyncScrapliConnection:
        return AsyncScrapliConnection(self)

    def close(self) -> None:
        with contextlib.suppress(*_DRIVER_ERRORS):
            if self._loop is not None:
                self._loop.run(self._one_at_a_time(self.driver.close))
            else:
                with self._lock:
                    self.driver.close()

    def __repr__(self) -> str:
        kind = "async" if self.is_async_driver else "sync"
        return (
            f"ScrapliConnection(host={self.host_id!r}, platform={self.platform!r}, "
            f"driver={kind}, id={self.id!r})"
        )


def _checked(host_id: str, command: str, response: Any, check: bool) -> CommandResult:
    output = str(response.result)
    if check and (response.failed or cli_error(output) is not None):
        raise CommandFailedError(
            f"host {host_id!r}: the CLI rejected {command!r}: {output.strip()[:200]}",
            host_id=host_id,
            output=output,
        )
    return CommandResult(output)


class AsyncScrapliConnection(AsyncView[ScrapliConnection]):
    """The awaitable face of a ScrapliConnection: the asyncio driver's coroutines run on the
    plugin's loop; the sync driver's calls on one of the agent's task threads."""

    @property
    def platform(self) -> str:
        return self.sync.platform

    @property
    def driver(self) -> Any:
        return self.sync.driver

    async def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        sync = self.sync
        if sync._loop is None:
            return await in_thread(sync._executor, sync._call, what, method, *args, **kwargs)
        call = getattr(sync.driver, method)
        with sync._translated(what):
            return await sync._loop.run_async(sync._one_at_a_time(call, *args, **kwargs))

    async def send_command(self, command: str, **kwargs: Any) -> Any:
        return await self._call(repr(command), "send_command", command, **kwargs)

    async def send_commands(self, commands: Sequence[str], **kwargs: Any) -> Any:
        return await self._call("the commands", "send_commands", list(commands), **kwargs)

    async def send_config(self, config: str, **kwargs: Any) -> Any:
        return await self._call("the config", "send_config", config, **kwargs)

    async def send_configs(self, configs: Sequence[str], **kwargs: Any) -> Any:
        return await self._call("the configs", "send_configs", list(configs), **kwargs)

    async def execute_command(
        self, command: str, *, timeout: float | None = None, check: bool = False
    ) -> CommandResult:
        response = await self.send_command(command, timeout_ops=timeout)
        return _checked(self.host_id, command, response, check)
