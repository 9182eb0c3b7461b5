"""A throwaway local account per test process, for SSH logins and for clients that must run as
another user than the one running the tests.

The account (`gjt<pid>x<random>`, home /, /bin/sh, no password until a test sets one) is made
the first time a test asks for it and removed when the process exits; accounts left by a process
that died without cleaning up are removed by the next one. Two test runs on one machine never
share, or change the password of, each other's account.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

_ACCOUNT = re.compile(r"gjt(\d+)x[0-9a-f]{4}")
TEST_USER = f"gjt{os.getpid()}x{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


def accounts_available() -> str | None:
    """Why a throwaway account cannot be made here, or None."""
    if os.geteuid() != 0:
        return "making a throwaway account needs root"
    return None


@functools.cache
def throwaway_account() -> Account:
    """This process's account, made on first use and removed at exit."""
    _remove_orphaned_accounts()
    if subprocess.run(["id", TEST_USER], capture_output=True, check=False).returncode != 0:
        subprocess.run(
            ["useradd", "-M", "-N", "-d", "/", "-s", "/bin/sh", TEST_USER],
            check=True,
            capture_output=True,
        )
    atexit.register(_remove_account, TEST_USER)
    entry = pwd.getpwnam(TEST_USER)
    return Account(TEST_USER, entry.pw_uid, entry.pw_gid)


def set_password(account: Account, password: str) -> None:
    subprocess.run(
        ["chpasswd"],
        input=f"{account.name}:{password}\n",
        text=True,
        check=True,
        capture_output=True,
    )


def _remove_account(name: str) -> None:
    # -f: an sshd session of the account may still be closing.
    subprocess.run(["userdel", "-f", name], capture_output=True, check=False)


def _remove_orphaned_accounts() -> None:
    """Accounts of test processes that are gone (killed before their atexit ran)."""
    with contextlib.suppress(OSError):
        for line in Path("/etc/passwd").read_text().splitlines():
            name = line.split(":", 1)[0]
            match = _ACCOUNT.fullmatch(name)
            if match and not Path(f"/proc/{match.group(1)}").exists():
                _remove_account(name)
