"""Run a command confined as a systemd unit of deploy/systemd confines it, where an unprivileged
process can do that itself: `python _confine.py [--umask MODE] [--seccomp FILE] -- COMMAND...`.

- UMask=;
- MemoryDenyWriteExecute=yes, as the kernel's PR_SET_MDWE (Linux 6.3 and later; skipped on
  older kernels);
- SystemCallFilter= and RestrictAddressFamilies=, as a seccomp filter (through libseccomp, as
  systemd does): FILE is JSON `{"allow": [syscall names], "families": [address families]}`;
  other system calls fail with EPERM (SystemCallErrorNumber=EPERM), and socket() with another
  family as well (systemd says EAFNOSUPPORT there).

The caller drops the user, capabilities and privileges first (`setpriv --no-new-privs ...`):
an unprivileged process may only load a seccomp filter once it cannot gain privileges.
Standard library only: it runs before the command, as that command's user.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4
FAMILIES = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16}


class ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def deny_write_execute(libc: ctypes.CDLL) -> None:
    failed = libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0
    if failed and ctypes.get_errno() != errno.EINVAL:  # EINVAL: a kernel without it
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


def load_filter(allow: list[str], families: list[str]) -> None:
    seccomp = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ArgCmp)
    ]  # fmt: skip
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    context = seccomp.seccomp_init(0x00050000 | errno.EPERM)  # SCMP_ACT_ERRNO(EPERM)
    if not context:
        raise OSError("seccomp_init failed")
    for name in allow:
        number = seccomp.seccomp_syscall_resolve_name(name.encode())
        if number < 0 or name == "socket":  # not a system call of this architecture
            continue
        if seccomp.seccomp_rule_add_array(context, SCMP_ACT_ALLOW, number, 0, None) != 0:
            raise OSError(f"seccomp_rule_add({name}) failed")
    if "socket" in allow:
        number = seccomp.seccomp_syscall_resolve_name(b"socket")
        for family in families:
            compare = ArgCmp(0, SCMP_CMP_EQ, FAMILIES[family], 0)
            if seccomp.seccomp_rule_add_array(
                context, SCMP_ACT_ALLOW, number, 1, ctypes.byref(compare)
            ):
                raise OSError(f"seccomp_rule_add(socket, {family}) failed")
    if seccomp.seccomp_load(context) != 0:
        raise OSError("seccomp_load failed (is no_new_privs set?)")


def main(argv: list[str]) -> None:
    separator = argv.index("--")
    options, command = argv[:separator], argv[separator + 1 :]
    settings = dict(zip(options[::2], options[1::2], strict=True))
    os.umask(int(settings.get("--umask", "0o022"), 8))
    deny_write_execute(ctypes.CDLL(None, use_errno=True))
    if "--seccomp" in settings:
        with open(settings["--seccomp"]) as handle:
            spec = json.load(handle)
        load_filter(spec["allow"], spec["families"])
    os.execvp(command[0], command)  # a container finds its command on PATH


if __name__ == "__main__":
    main(sys.argv[1:])
