"""The `ssh` plugin's logins (paramiko): jump hosts, host keys, and failures classified.

One login per (host, agent), reused by later tasks. Every failure to log in is translated here,
at the boundary, into the classified errors of `agent.connections._errors`.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from typing import Any, ClassVar

import paramiko

from agent.connections._errors import (
    AuthenticationFailedError,
    ConnectFailedError,
    ConnectionConfigError,
    ConnectionFailure,
    ConnectTimeoutError,
    scrub,
    socket_failure,
)
from agent.connections._plugin import OpenContext
from agent.connections.ssh._connection import SSHConnection
from agent.connections.ssh._hostkeys import AcceptNewPolicy, KnownHosts, StrictPolicy
from agent.connections.ssh._options import JumpHost, SSHOptions, resolve_options
from agent.connections.ssh._settings import SSHSettings
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
    if isinstance(error, socket.gaierror | TimeoutError | ConnectionRefusedError):
        failure = socket_failure(error, where, host_id, options.connect_timeout)
        assert failure is not None
        return failure
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

    settings_type: ClassVar[type | None] = SSHSettings

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
        settings: SSHSettings = context.settings or SSHSettings()
        config = self._config(settings.config_file)
        options = resolve_options(host, settings, config)
        via = self._jump(options) if options.jumps else None
        target = options.address
        started = time.monotonic()
        try:
            client = self._login(
                options, options.hostname, options.port, options.username, via=via, jump=None
            )
        except Exception as error:
            raise classify(error, options, target) from error
        try:
            connection = SSHConnection(client, options, context.executor)
        except BaseException:
            client.close()
            raise
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
        # Unclassified: classify() names the hop (the target or a jump host) that failed.
        sock = socket.create_connection((hostname, port), timeout=options.connect_timeout)
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
