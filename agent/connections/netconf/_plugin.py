"""The `netconf` plugin: one ncclient session per host, its errors translated here.

The TCP socket is opened by genja (TCP_NODELAY; refused, unreachable and DNS told apart) and
handed to ncclient, which does SSH, the NETCONF hello and the RPCs. Replies come back as XML
text, ready to parse (lxml, xmltodict) or to store as a backup.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import paramiko
from ncclient import manager
from ncclient.operations.errors import TimeoutExpiredError
from ncclient.operations.rpc import RPCError
from ncclient.transport.errors import AuthenticationError, SSHError, TransportError
from ncclient.xml_ import XMLError

from agent.connections._errors import (
    AuthenticationFailedError,
    CommandFailedError,
    CommandTimeoutError,
    ConnectFailedError,
    ConnectionFailure,
    ConnectTimeoutError,
    open_socket,
    scrub,
)
from agent.connections._extras import host_extras
from agent.connections._plugin import OpenContext
from agent.connections._threads import AsyncView, in_thread
from agent.connections.netconf._settings import NetconfExtras, NetconfSettings
from genja._host import Host
from genja._platforms import netmiko_platform

# Inventory platforms -> ncclient device handlers.
_HANDLERS = {
    "juniper_junos": "junos",
    "cisco_xr": "iosxr",
    "cisco_nxos": "nexus",
    "cisco_ios": "iosxe",
    "cisco_xe": "iosxe",
    "huawei": "huawei",
}


class NetconfPlugin:
    settings_type: ClassVar[type | None] = NetconfSettings

    def open(self, host: Host, context: OpenContext) -> NetconfConnection:
        settings: NetconfSettings = context.settings or NetconfSettings()
        extras: NetconfExtras = host_extras(host, "netconf", NetconfExtras)
        options = host.connection_options.get("netconf")
        params = host.connection_params("netconf")
        hostname = params.hostname or host.id
        # The host's own port is its CLI's: only connection_options.netconf.port overrides.
        port = (options.port if options is not None else None) or settings.port
        where = f"host {host.id!r} ({hostname}:{port})"
        connect_timeout = extras.connect_timeout or settings.connect_timeout
        handler = extras.device_handler or _HANDLERS.get(
            netmiko_platform(params.platform) or "", "default"
        )
        secrets = (params.password, extras.passphrase)
        sock = open_socket(hostname, port, connect_timeout, host_id=host.id, where=where)
        try:
            session = manager.connect(
                host=hostname,
                port=port,
                sock=sock,
                username=params.username,
                password=params.password,
                key_filename=str(Path(extras.key_file).expanduser()) if extras.key_file else None,
                allow_agent=bool(extras.allow_agent),
                look_for_keys=bool(extras.look_for_keys),
                # strict: ncclient checks the user's ~/.ssh/known_hosts.
                hostkey_verify=settings.host_key_policy == "strict",
                ssh_config=None,
                timeout=connect_timeout,
                device_params={"name": handler},
                manager_params={"timeout": extras.timeout or settings.timeout},
            )
        except Exception as error:
            sock.close()
            raise _classify_login(error, host.id, where, params.username, secrets) from error
        return NetconfConnection(session, host.id, params.platform, context.executor, secrets)

    def close(self) -> None:
        pass


def _classify_login(
    error: BaseException,
    host_id: str,
    where: str,
    username: str | None,
    secrets: Sequence[str | None],
) -> ConnectionFailure:
    if isinstance(error, ConnectionFailure):
        return error
    text = scrub(str(error), secrets).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    if isinstance(error, AuthenticationError | paramiko.AuthenticationException):
        return AuthenticationFailedError(
            f"{where}: authentication failed for user {username or '(none)'!r}", host_id=host_id
        )
    if "banner" in text.lower() or isinstance(error, TimeoutError):
        return ConnectTimeoutError(
            f"{where}: no SSH banner in time (the port accepts connections but does not speak SSH)",
            host_id=host_id,
        )
    if "known_hosts" in text or "Unknown host key" in text:
        return AuthenticationFailedError(
            f"{where}: the host key is unknown or changed (netconf.host_key_policy is strict)",
            host_id=host_id,
        )
    if isinstance(error, SSHError | TransportError | OSError | EOFError | paramiko.SSHException):
        return ConnectFailedError(f"{where}: {first}", host_id=host_id)
    return ConnectFailedError(f"{where}: {type(error).__name__}: {first}", host_id=host_id)


class NetconfConnection:
    """One NETCONF session. `get`, `get_config`, `edit_config`, `commit`, `discard_changes`,
    `lock` and `unlock` return the reply as XML text (the `<data>` element for reads);
    `manager` is ncclient's own Manager, for anything else."""

    def __init__(
        self,
        session: Any,
        host_id: str,
        platform: str | None,
        executor: concurrent.futures.Executor | None,
        secrets: Sequence[str | None],
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.host_id = host_id
        self.platform = platform
        self.manager = session
        self._executor = executor
        self._secrets = tuple(secrets)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except RPCError as error:
                message = scrub(str(error.message or error.tag or error), self._secrets)
                raise CommandFailedError(
                    f"host {self.host_id!r}: {what} failed: {message.strip()[:300]}",
                    host_id=self.host_id,
                ) from error
            except XMLError as error:
                raise CommandFailedError(
                    f"host {self.host_id!r}: {what}: not valid NETCONF XML: {error}",
                    host_id=self.host_id,
                ) from error
            except TimeoutExpiredError as error:
                raise CommandTimeoutError(
                    f"host {self.host_id!r}: no reply to {what} in time", host_id=self.host_id
                ) from error
            except (TransportError, OSError, EOFError, paramiko.SSHException) as error:
                raise ConnectFailedError(
                    f"host {self.host_id!r}: the session closed during {what} "
                    f"({type(error).__name__})",
                    host_id=self.host_id,
                ) from error

    def get(self, filter: Any = None) -> str:
        with self._translated("<get>"):
            return str(self.manager.get(filter=filter).data_xml)

    def get_config(self, source: str = "running", filter: Any = None) -> str:
        with self._translated("<get-config>"):
            return str(self.manager.get_config(source=source, filter=filter).data_xml)

    def edit_config(
        self, config: str, target: str = "running", default_operation: str | None = None
    ) -> str:
        with self._translated("<edit-config>"):
            reply = self.manager.edit_config(
                config=config, target=target, default_operation=default_operation
            )
            return str(reply.xml)

    def commit(self) -> str:
        with self._translated("<commit>"):
            return str(self.manager.commit().xml)

    def discard_changes(self) -> str:
        with self._translated("<discard-changes>"):
            return str(self.manager.discard_changes().xml)

    def lock(self, target: str = "candidate") -> str:
        with self._translated("<lock>"):
            return str(self.manager.lock(target=target).xml)

    def unlock(self, target: str = "candidate") -> str:
        with self._translated("<unlock>"):
            return str(self.manager.unlock(target=target).xml)

    def is_alive(self) -> bool:
        return bool(self.manager.connected)

    def async_view(self) -> AsyncNetconfConnection:
        return AsyncNetconfConnection(self)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.manager.close_session()

    def __repr__(self) -> str:
        return f"NetconfConnection(host={self.host_id!r}, id={self.id!r})"


class AsyncNetconfConnection(AsyncView[NetconfConnection]):
    """The awaitable face of a NetconfConnection: each RPC runs on one of the agent's task
    threads."""

    async def get(self, filter: Any = None) -> str:
        return await in_thread(self.sync._executor, self.sync.get, filter)

    async def get_config(self, source: str = "running", filter: Any = None) -> str:
        return await in_thread(self.sync._executor, self.sync.get_config, source, filter)

    async def edit_config(
        self, config: str, target: str = "running", default_operation: str | None = None
    ) -> str:
        return await in_thread(
            self.sync._executor, self.sync.edit_config, config, target, default_operation
        )

    async def commit(self) -> str:
        return await in_thread(self.sync._executor, self.sync.commit)

    async def discard_changes(self) -> str:
        return await in_thread(self.sync._executor, self.sync.discard_changes)
