"""What one SSH login needs, resolved from settings, the ssh config file and the inventory.

Precedence, highest first: the host's `connection_options["ssh"]` (fields, then `extras`), the
host's own fields, the `ssh.config_file` entry of the host's hostname (which may rename it with
`HostName`, as OpenSSH does for an alias), the `ssh` settings section, built-in defaults (one
place: `SSHSettings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.connections._errors import ConnectionConfigError
from agent.connections._extras import host_extras
from agent.connections.ssh._settings import DEFAULT_MAX_OUTPUT, SSHExtras, SSHSettings
from genja._host import Host


@dataclass(frozen=True, slots=True)
class JumpHost:
    hostname: str
    port: int
    username: str | None
    key_files: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{user}{self.hostname}:{self.port}"


@dataclass(frozen=True, slots=True)
class SSHOptions:
    host_id: str
    hostname: str
    port: int
    username: str | None
    password: str | None = field(default=None, repr=False)
    key_files: tuple[str, ...] = ()
    private_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    allow_agent: bool = False
    look_for_keys: bool = False
    jumps: tuple[JumpHost, ...] = ()
    platform: str | None = None
    connect_timeout: float = 10.0
    auth_timeout: float = 30.0
    command_timeout: float = 60.0
    keepalive_interval: int = 30
    host_key_policy: str = "accept-new"
    known_hosts: str = "~/.ssh/known_hosts"
    max_output: int = DEFAULT_MAX_OUTPUT
    session_log: str | None = None

    @property
    def address(self) -> str:
        return f"{self.hostname}:{self.port}"

    @property
    def secrets(self) -> tuple[str | None, ...]:
        return (self.password, self.passphrase, self.private_key)


def parse_jump(spec: str, config: Any) -> tuple[JumpHost, ...]:
    """`[user@]host[:port][,...]` (OpenSSH's ProxyJump), each looked up in the ssh config."""
    jumps = []
    for raw in spec.split(","):
        part = raw.strip()
        if not part or part.lower() == "none":
            continue
        user, _, rest = part.rpartition("@")
        name, port_text = rest, None
        if rest.startswith("["):  # [v6addr]:port
            name, _, tail = rest[1:].partition("]")
            port_text = tail[1:] if tail.startswith(":") else None
        elif rest.count(":") == 1:
            name, port_text = rest.split(":")
        entry = config.lookup(name) if config is not None else {}
        try:
            port = int(port_text or entry.get("port", 22))
        except ValueError:
            raise ConnectionConfigError(f"ProxyJump {part!r} has a bad port") from None
        jumps.append(
            JumpHost(
                hostname=entry.get("hostname", name),
                port=port,
                username=user or entry.get("user"),
                key_files=tuple(entry.get("identityfile", ())),
            )
        )
    return tuple(jumps)


def resolve_options(host: Host, settings: SSHSettings, config: Any) -> SSHOptions:
    """The options for logging in to `host`. `config` is a parsed paramiko SSHConfig or None."""
    extras: SSHExtras = host_extras(host, "ssh", SSHExtras)
    params = host.connection_params("ssh")
    alias = params.hostname or host.id
    entry = config.lookup(alias) if config is not None else {}
    port = params.port or int(entry.get("port", 22))

    def pick(name: str) -> Any:
        value = getattr(extras, name)
        return getattr(settings, name) if value is None else value

    key_files: list[str] = []
    if extras.key_file:
        key_files.append(str(Path(extras.key_file).expanduser()))
    key_files.extend(str(Path(p).expanduser()) for p in entry.get("identityfile", ()))
    jump_spec = extras.proxy_jump or entry.get("proxyjump")
    return SSHOptions(
        host_id=host.id,
        hostname=entry.get("hostname", alias),
        port=int(port),
        username=params.username or entry.get("user"),
        password=params.password,
        key_files=tuple(key_files),
        private_key=extras.private_key,
        passphrase=extras.passphrase,
        allow_agent=bool(extras.allow_agent),
        look_for_keys=bool(extras.look_for_keys),
        jumps=parse_jump(jump_spec, config) if jump_spec else (),
        platform=params.platform,
        connect_timeout=pick("connect_timeout"),
        auth_timeout=pick("auth_timeout"),
        command_timeout=pick("command_timeout"),
        keepalive_interval=pick("keepalive_interval"),
        host_key_policy=pick("host_key_policy"),
        known_hosts=str(Path(pick("known_hosts") or "~/.ssh/known_hosts").expanduser()),
        max_output=pick("max_output"),
        session_log=extras.session_log,
    )
