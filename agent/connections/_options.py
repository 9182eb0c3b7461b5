"""What one SSH login needs, resolved from settings, the ssh config file and the inventory.

Precedence, highest first: the host's `connection_options["ssh"]` (fields, then `extras`), the
host's own fields, the `ssh.config_file` entry of the host's hostname (which may rename it with
`HostName`, as OpenSSH does for an alias), the `ssh` settings section, built-in defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.connections._errors import ConnectionConfigError
from genja._host import Host

HOST_KEY_POLICIES = ("accept-new", "strict", "accept-any")
MODES = ("exec", "shell")

# Platforms whose CLI is an interactive shell: `shell` mode is their default.
_PLATFORM_ALIASES = {
    "ios": "ios",
    "cisco_ios": "ios",
    "iosxe": "ios",
    "cisco_xe": "ios",
    "eos": "eos",
    "arista_eos": "eos",
    "nxos": "nxos",
    "cisco_nxos": "nxos",
    "nxos_ssh": "nxos",
    "junos": "junos",
    "juniper": "junos",
    "juniper_junos": "junos",
    "iosxr": "iosxr",
    "cisco_xr": "iosxr",
}

# Keys a host may set in connection_options["ssh"].extras.
EXTRA_KEYS = frozenset(
    {
        "key_file",
        "private_key",
        "passphrase",
        "allow_agent",
        "look_for_keys",
        "proxy_jump",
        "mode",
        "secret",
        "connect_timeout",
        "auth_timeout",
        "command_timeout",
        "keepalive_interval",
        "host_key_policy",
        "known_hosts",
    }
)


def cli_family(platform: str | None) -> str | None:
    """The CLI family (ios, eos, nxos, junos, iosxr) of an inventory platform name, if known."""
    return _PLATFORM_ALIASES.get((platform or "").lower())


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
    secret: str | None = field(default=None, repr=False)
    allow_agent: bool = False
    look_for_keys: bool = False
    jumps: tuple[JumpHost, ...] = ()
    mode: str = "exec"
    platform: str | None = None
    connect_timeout: float = 10.0
    auth_timeout: float = 30.0
    command_timeout: float = 60.0
    keepalive_interval: int = 30
    host_key_policy: str = "accept-new"
    known_hosts: str = "~/.ssh/known_hosts"

    @property
    def address(self) -> str:
        return f"{self.hostname}:{self.port}"

    @property
    def secrets(self) -> tuple[str | None, ...]:
        return (self.password, self.passphrase, self.secret, self.private_key)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConnectionConfigError(f"{where} must be a positive number of seconds, got {value!r}")
    return float(value)


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


def resolve_options(host: Host, settings: Mapping[str, Any], config: Any) -> SSHOptions:
    """The options for logging in to `host`. `config` is a parsed paramiko SSHConfig or None."""
    overrides = host.connection_options.get("ssh")
    extras: Mapping[str, Any] = overrides.extras if overrides is not None else {}
    unknown = sorted(set(extras) - EXTRA_KEYS)
    if unknown:
        raise ConnectionConfigError(
            f"host {host.id!r}: unknown connection_options.ssh.extras key(s) "
            f"{', '.join(unknown)}; known: {', '.join(sorted(EXTRA_KEYS))}",
            host_id=host.id,
        )

    def pick(name: str) -> Any:
        value = getattr(overrides, name, None) if overrides is not None else None
        return value if value is not None else getattr(host, name)

    alias = pick("hostname") or host.id
    entry = config.lookup(alias) if config is not None else {}
    port = pick("port") or int(entry.get("port", 22))
    platform = pick("platform")

    def setting(name: str, default: Any) -> Any:
        if extras.get(name) is not None:
            return extras[name]
        value = settings.get(name)
        return default if value is None else value

    where = f"host {host.id!r}: ssh"
    policy = setting("host_key_policy", "accept-new")
    if policy not in HOST_KEY_POLICIES:
        raise ConnectionConfigError(
            f"{where} host_key_policy must be one of {', '.join(HOST_KEY_POLICIES)}, "
            f"got {policy!r}",
            host_id=host.id,
        )
    family = cli_family(platform)
    mode = extras.get("mode") or ("shell" if family is not None else "exec")
    if mode not in MODES:
        raise ConnectionConfigError(
            f"{where} mode must be one of {', '.join(MODES)}, got {mode!r}", host_id=host.id
        )
    key_files: list[str] = []
    if extras.get("key_file"):
        key_files.append(str(Path(str(extras["key_file"])).expanduser()))
    key_files.extend(str(Path(p).expanduser()) for p in entry.get("identityfile", ()))
    jump_spec = extras.get("proxy_jump") or entry.get("proxyjump")
    return SSHOptions(
        host_id=host.id,
        hostname=entry.get("hostname", alias),
        port=int(port),
        username=pick("username") or entry.get("user"),
        password=pick("password"),
        key_files=tuple(key_files),
        private_key=extras.get("private_key"),
        passphrase=extras.get("passphrase"),
        secret=extras.get("secret"),
        allow_agent=bool(extras.get("allow_agent", False)),
        look_for_keys=bool(extras.get("look_for_keys", False)),
        jumps=parse_jump(jump_spec, config) if jump_spec else (),
        mode=mode,
        platform=platform,
        connect_timeout=_number(setting("connect_timeout", 10.0), f"{where} connect_timeout"),
        auth_timeout=_number(setting("auth_timeout", 30.0), f"{where} auth_timeout"),
        command_timeout=_number(setting("command_timeout", 60.0), f"{where} command_timeout"),
        keepalive_interval=int(setting("keepalive_interval", 30)),
        host_key_policy=policy,
        known_hosts=str(Path(setting("known_hosts", "~/.ssh/known_hosts")).expanduser()),
    )
