"""What the `ssh` plugin reads: its settings section and a host's extras. Imports nothing heavy.

Timeouts are in seconds. `host_key_policy` is `accept-new` (learn unknown hosts into
`known_hosts`, refuse changed keys), `strict` (only hosts already in `known_hosts`) or
`accept-any` (no checking: labs only). `known_hosts` defaults to ~/.ssh/known_hosts on the agent.
`max_output` bounds what one command may print (stdout + stderr, bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from genja._errors import ConfigurationError
from genja._loader import read_text

HostKeyPolicy = Literal["accept-new", "strict", "accept-any"]
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SSHExtras:
    """`connection_options.ssh.extras` of a host; None means "as the settings say"."""

    moved: ClassVar[dict[str, str]] = {
        "mode": "device CLIs use the netmiko or scrapli plugin; ssh runs exec channels",
        "secret": "enable secrets belong to the netmiko or scrapli plugin's extras",
    }

    key_file: str | None = None
    private_key: str | None = field(default=None, repr=False, metadata={"secret": True})
    passphrase: str | None = field(default=None, repr=False, metadata={"secret": True})
    allow_agent: bool | None = None
    look_for_keys: bool | None = None
    proxy_jump: str | None = None
    session_log: str | None = None
    connect_timeout: float | None = None
    auth_timeout: float | None = None
    command_timeout: float | None = None
    keepalive_interval: int | None = field(default=None, metadata={"min": 0})
    host_key_policy: HostKeyPolicy | None = None
    known_hosts: str | None = None
    max_output: int | None = None


@dataclass(frozen=True, slots=True)
class SSHSettings:
    """The `ssh` section of the settings file."""

    Extras: ClassVar[type] = SSHExtras
    requires: ClassVar[tuple[str, ...]] = ()  # paramiko is one of genja's own dependencies

    config_file: str | None = field(default=None, metadata={"path": True})
    connect_timeout: float = 10.0
    auth_timeout: float = 30.0
    command_timeout: float = 60.0
    keepalive_interval: int = field(default=30, metadata={"min": 0})
    host_key_policy: HostKeyPolicy = "accept-new"
    known_hosts: str | None = field(default=None, metadata={"path": True})
    max_output: int = DEFAULT_MAX_OUTPUT

    def validate(self) -> None:
        if self.config_file:
            check_ssh_config(Path(self.config_file))


def check_ssh_config(path: Path) -> None:
    """Check an OpenSSH client config enough to catch a wrong path or a broken line early.

    Each line must be a keyword and its argument (`Keyword value` or `Keyword=value`), and
    `Port` must be a number; keywords themselves are left to paramiko. ValueError otherwise.
    """
    try:
        text = read_text(path)  # a bounded read: a device or a pipe is not read forever
    except ConfigurationError as error:
        raise ValueError(f"ssh.config_file: {error}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, argument = stripped.replace("=", " ", 1).partition(" ")
        if not argument.strip():
            raise ValueError(f"{path}: line {number}: {keyword!r} has no value (ssh.config_file)")
        port = argument.strip()
        if keyword.lower() == "port" and not (
            port.isascii() and port.isdigit() and 0 < int(port) <= 65535
        ):
            raise ValueError(
                f"{path}: line {number}: Port must be a number from 1 to 65535, got {port!r}"
            )
