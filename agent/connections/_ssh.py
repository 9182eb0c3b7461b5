"""The `ssh` connection plugin (paramiko): commands over exec channels, or a CLI shell.

One login per (host, agent), reused by later tasks. Every failure is translated here, at the
boundary, into the classified errors of `agent.connections._errors`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import io
import logging
import socket
import threading
import time
import uuid
from typing import Any

import paramiko

from agent.connections._errors import (
    AuthenticationFailedError,
    CommandFailedError,
    CommandTimeoutError,
    ConnectFailedError,
    ConnectionConfigError,
    ConnectionFailure,
    ConnectTimeoutError,
    scrub,
)
from agent.connections._hostkeys import AcceptNewPolicy, KnownHosts, StrictPolicy
from agent.connections._options import JumpHost, SSHOptions, cli_family, resolve_options
from agent.connections._plugin import OpenContext
from agent.connections._shell import ShellSession
from genja._host import Host

log = logging.getLogger("genja.agent.ssh")

_KEY_TYPES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def _load_private_key(text: str, passphrase: str | None, host_id: str) -> Any:
    for key_type in _KEY_TYPES:
        try:
            return key_type.from_private_key(io.StringIO(text), password=passphrase)
        except paramiko.PasswordRequiredException:
            raise AuthenticationFailedError(
                f"host {host_id!r}: the private key is encrypted and no passphrase is set",
                host_id=host_id,
            ) from None
        except (paramiko.SSHException, ValueError):
            continue
    raise ConnectionConfigError(
        f"host {host_id!r}: connection_options.ssh.extras.private_key is not a private key "
        "paramiko can read (or the passphrase is wrong)",
        host_id=host_id,
    )


def classify(
    error: BaseException, options: SSHOptions, target: str, *, username: str | None = None
) -> ConnectionFailure:
    """The classified error for a failure while reaching or logging in to `target` (as
    `username`, default the host's)."""
    if isinstance(error, ConnectionFailure):
        return error
    host_id = options.host_id
    where = f"host {host_id!r} ({target})"
    cause = scrub(str(error), options.secrets) or type(error).__name__
    context = error.__context__
    if isinstance(error, paramiko.BadHostKeyException):
        return AuthenticationFailedError(
            f"{where}: the host key does not match {options.known_hosts}; it changed, or this "
            "is not the host you think it is",
            host_id=host_id,
        )
    if isinstance(error, paramiko.AuthenticationException):
        if "timeout" in cause.lower():
            return ConnectTimeoutError(
                f"{where}: authentication did not finish within {options.auth_timeout:g}s",
                host_id=host_id,
            )
        user = username or options.username or "(none)"
        return AuthenticationFailedError(
            f"{where}: authentication failed for user {user!r}: {cause}", host_id=host_id
        )
    if isinstance(error, paramiko.SSHException) and "no authentication methods" in cause.lower():
        user = username or options.username or "(none)"
        return AuthenticationFailedError(
            f"{where}: no password or key to log in as {user!r} with", host_id=host_id
        )
    if isinstance(error, socket.gaierror):
        return ConnectFailedError(f"{where}: cannot resolve the name: {cause}", host_id=host_id)
    if isinstance(error, TimeoutError):
        return ConnectTimeoutError(
            f"{where}: no answer within {options.connect_timeout:g}s", host_id=host_id
        )
    if isinstance(error, ConnectionRefusedError):
        return ConnectFailedError(f"{where}: connection refused", host_id=host_id)
    if isinstance(error, paramiko.ChannelException):
        return ConnectFailedError(
            f"{where}: the jump host could not open a connection: {cause}", host_id=host_id
        )
    if isinstance(error, paramiko.SSHException) and "banner" in cause.lower():
        if isinstance(context, TimeoutError):
            return ConnectTimeoutError(
                f"{where}: no SSH banner within {options.connect_timeout:g}s "
                "(the port accepts connections but does not speak SSH)",
                host_id=host_id,
            )
        return ConnectFailedError(
            f"{where}: the server closed the connection before the SSH handshake",
            host_id=host_id,
        )
    if isinstance(error, paramiko.SSHException) and "no existing session" in cause.lower():
        return ConnectTimeoutError(
            f"{where}: the SSH handshake did not finish within {options.connect_timeout * 2:g}s",
            host_id=host_id,
        )
    if isinstance(error, EOFError):
        return ConnectFailedError(
            f"{where}: the server closed the connection during the SSH handshake",
            host_id=host_id,
        )
    if isinstance(error, paramiko.SSHException):
        return ConnectFailedError(f"{where}: SSH handshake failed: {cause}", host_id=host_id)
    if isinstance(error, OSError):
        reason = scrub(error.strerror or "", options.secrets) or cause
        return ConnectFailedError(f"{where}: {reason}", host_id=host_id)
    return ConnectFailedError(f"{where}: {type(error).__name__}: {cause}", host_id=host_id)


class SSHPlugin:
    """Opens `SSHConnection`s. One instance per agent: it keeps the parsed ssh config, the
    known_hosts stores and the logins to jump hosts, shared by every host behind them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._configs: dict[str, Any] = {}
        self._known: dict[str, KnownHosts] = {}
        self._jumps: dict[tuple[str, ...], Any] = {}
        self._jump_locks: dict[tuple[str, ...], threading.Lock] = {}

    # ---------------------------------------------------------------- shared state

    def _config(self, path: str | None) -> Any:
        if not path:
            return None
        with self._lock:
            config = self._configs.get(path)
            if config is None:
                try:
                    config = paramiko.SSHConfig.from_path(path)
                except OSError as error:
                    raise ConnectionConfigError(
                        f"ssh.config_file {path}: cannot read: {error.strerror}"
                    ) from None
                self._configs[path] = config
            return config

    def _known_hosts(self, path: str) -> KnownHosts:
        with self._lock:
            store = self._known.get(path)
            if store is None:
                store = self._known[path] = KnownHosts(path)
            return store

    # ---------------------------------------------------------------- opening

    def open(self, host: Host, context: OpenContext) -> SSHConnection:
        config = self._config(context.settings.get("config_file"))
        options = resolve_options(host, context.settings, config)
        via = self._jump(options) if options.jumps else None
        target = options.address
        started = time.monotonic()
        try:
            client = self._login(
                options, options.hostname, options.port, options.username, via=via, jump=None
            )
        except Exception as error:
            raise classify(error, options, target) from error
        connection = SSHConnection(client, options, context.executor)
        try:
            connection.start()
        except Exception as error:
            connection.close()
            if isinstance(error, ConnectionFailure):
                raise
            raise classify(error, options, target) from error
        log.debug(
            "logged in to %s (%s) in %.0f ms",
            host.id,
            target,
            (time.monotonic() - started) * 1000,
        )
        return connection

    def _socket(self, options: SSHOptions, hostname: str, port: int, via: Any) -> Any:
        if via is not None:
            return via.get_transport().open_channel(
                "direct-tcpip", (hostname, port), ("127.0.0.1", 0), timeout=options.connect_timeout
            )
        sock = socket.create_connection((hostname, port), timeout=options.connect_timeout)
        # Without it, Nagle's algorithm meets delayed ACKs: ~40 ms per round trip.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _login(
        self,
        options: SSHOptions,
        hostname: str,
        port: int,
        username: str | None,
        *,
        via: Any,
        jump: JumpHost | None,
    ) -> Any:
        pkey = (
            _load_private_key(options.private_key, options.passphrase, options.host_id)
            if options.private_key
            else None
        )
        sock = self._socket(options, hostname, port, via)
        client = paramiko.SSHClient()
        name = hostname if port == 22 else f"[{hostname}]:{port}"
        if options.host_key_policy == "accept-any":
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            store = self._known_hosts(options.known_hosts)
            store.prime(client, name)
            if options.host_key_policy == "strict":
                client.set_missing_host_key_policy(
                    StrictPolicy(options.known_hosts, options.host_id)
                )
            else:
                client.set_missing_host_key_policy(AcceptNewPolicy(store))
        if jump is None:
            key_files = list(options.key_files)
            password = options.password
        else:
            key_files = [*jump.key_files, *options.key_files]
            # A jump host shares the target's password only when it is the same account.
            password = options.password if username == options.username else None
        try:
            client.connect(
                hostname,
                port,
                username=username,
                password=password,
                pkey=pkey,
                key_filename=key_files or None,
                passphrase=options.passphrase,
                # paramiko's handshake wait gives up silently (and the login then fails with
                # "No existing session"): let the banner timeout, which raises, fire first.
                timeout=options.connect_timeout * 2,
                banner_timeout=options.connect_timeout,
                auth_timeout=options.auth_timeout,
                channel_timeout=options.command_timeout,
                allow_agent=options.allow_agent,
                look_for_keys=options.look_for_keys,
                sock=sock,
            )
        except BaseException:
            client.close()
            sock.close()
            raise
        transport = client.get_transport()
        if options.keepalive_interval > 0:
            transport.set_keepalive(options.keepalive_interval)
        return client

    def _jump(self, options: SSHOptions) -> Any:
        """The login to the last jump host of `options`, reused by every host behind it."""
        via = None
        chain: tuple[str, ...] = ()
        for jump in options.jumps:
            chain = (*chain, jump.label)
            with self._lock:
                lock = self._jump_locks.setdefault(chain, threading.Lock())
            with lock:
                client = self._jumps.get(chain)
                transport = client.get_transport() if client is not None else None
                if transport is None or not transport.is_active():
                    if client is not None:
                        client.close()
                    username = jump.username or options.username
                    try:
                        client = self._login(
                            options, jump.hostname, jump.port, username, via=via, jump=jump
                        )
                    except Exception as error:
                        where = f"via jump host {jump.label}"
                        raise classify(error, options, where, username=username) from error
                    self._jumps[chain] = client
            via = client
        return via

    def close(self) -> None:
        with self._lock:
            jumps, self._jumps = self._jumps, {}
        for client in reversed(list(jumps.values())):
            client.close()


class SSHConnection:
    """One logged-in SSH session to one host. `execute_command` runs a command on an exec
    channel (`exec` mode) or types it into the CLI shell (`shell` mode); sync tasks call it
    directly, async tasks get `async_view()`, whose methods are awaitable."""

    def __init__(
        self,
        client: Any,
        options: SSHOptions,
        executor: concurrent.futures.Executor | None,
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.host_id = options.host_id
        self.mode = options.mode
        self._client = client
        self._options = options
        self._executor = executor
        self._shell: ShellSession | None = None
        self._shell_lock = threading.Lock()

    def start(self) -> None:
        if self.mode != "shell":
            return
        channel = self._client.get_transport().open_session(timeout=self._options.connect_timeout)
        channel.get_pty(term="vt100", width=511, height=1000)
        channel.invoke_shell()
        shell = ShellSession(channel, self.host_id, cli_family(self._options.platform))
        shell.start(self._options.command_timeout, self._options.secret or self._options.password)
        self._shell = shell

    @property
    def prompt(self) -> str | None:
        """The CLI's base prompt (shell mode), e.g. `r1` for `r1#`."""
        return self._shell.base_prompt if self._shell is not None else None

    def is_alive(self) -> bool:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            return False
        return self._shell is None or not self._shell.closed

    def execute_command(
        self, command: str, *, timeout: float | None = None, check: bool = False
    ) -> str:
        """The command's output (stdout in exec mode). `check=True` turns a non-zero exit
        status (exec) or a CLI error message (shell) into CommandFailedError."""
        seconds = timeout if timeout is not None else self._options.command_timeout
        if self._shell is not None:
            with self._shell_lock:
                return self._shell.send(command, seconds, check=check)
        return self._exec(command, seconds, check)

    def _exec(self, command: str, timeout: float, check: bool) -> str:
        deadline = time.monotonic() + timeout
        transport = self._client.get_transport()
        try:
            channel = transport.open_session(timeout=timeout)
            channel.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError, AttributeError) as error:
            raise ConnectFailedError(
                f"host {self.host_id!r}: cannot start {command!r}: the session is gone "
                f"({type(error).__name__})",
                host_id=self.host_id,
            ) from error
        try:
            stdout = self._read(channel, channel.recv, deadline, command, timeout)
            stderr = self._read(channel, channel.recv_stderr, deadline, command, timeout)
            if not channel.status_event.wait(max(deadline - time.monotonic(), 0)):
                raise self._timed_out(command, timeout)
            status = channel.exit_status
        finally:
            channel.close()
        if status == -1:
            raise ConnectFailedError(
                f"host {self.host_id!r}: the session closed before {command!r} finished",
                host_id=self.host_id,
            )
        if check and status != 0:
            # The last line of stderr: where shells put the error (login noise comes first).
            last = (stderr.strip() or stdout.strip()).splitlines()[-1:]
            detail = f": {last[0][:200]}" if last else ""
            raise CommandFailedError(
                f"host {self.host_id!r}: {command!r} exited with status {status}{detail}",
                host_id=self.host_id,
                exit_status=status,
                output=stdout,
            )
        return stdout

    def _read(self, channel: Any, recv: Any, deadline: float, command: str, timeout: float) -> str:
        chunks: list[bytes] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(command, timeout)
            channel.settimeout(remaining)
            try:
                data = recv(65536)
            except TimeoutError:
                continue
            if not data:
                return b"".join(chunks).decode("utf-8", "replace")
            chunks.append(data)

    def _timed_out(self, command: str, timeout: float) -> CommandTimeoutError:
        return CommandTimeoutError(
            f"host {self.host_id!r}: {command!r} did not finish within {timeout:g}s",
            host_id=self.host_id,
        )

    def async_view(self) -> AsyncSSHConnection:
        return AsyncSSHConnection(self)

    def close(self) -> None:
        if self._shell is not None:
            self._shell.close()
        self._client.close()

    def __repr__(self) -> str:
        return (
            f"SSHConnection(host={self.host_id!r}, address={self._options.address!r}, "
            f"mode={self.mode!r}, id={self.id!r})"
        )


class AsyncSSHConnection:
    """The awaitable face of an SSHConnection, for `start_async` tasks."""

    def __init__(self, connection: SSHConnection) -> None:
        self.sync = connection

    @property
    def id(self) -> str:
        return self.sync.id

    @property
    def host_id(self) -> str:
        return self.sync.host_id

    @property
    def mode(self) -> str:
        return self.sync.mode

    @property
    def prompt(self) -> str | None:
        return self.sync.prompt

    async def execute_command(
        self, command: str, *, timeout: float | None = None, check: bool = False
    ) -> str:
        loop = asyncio.get_running_loop()
        call = functools.partial(self.sync.execute_command, command, timeout=timeout, check=check)
        return await loop.run_in_executor(self.sync._executor, call)

    def is_alive(self) -> bool:
        return self.sync.is_alive()

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"
