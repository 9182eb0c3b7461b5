"""deploy/systemd's units read as systemd reads them, and their commands run as close to how
systemd would run them as a test without a running systemd can: each in a fake root (files of
/etc/genja in ROOT/etc/genja), its credentials copied mode 0400 for its user alone, its own state
folder and temp dir, confined (tests/deploy/_sandbox.py) with the unit's umask and system call
filter (built from `systemd-analyze syscall-filter`).
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy._sandbox import SERVICE_PATH, run_confined
from tests.servers.accounts import Account

DEPLOY = Path(__file__).parents[2] / "deploy" / "systemd"

Sections = dict[str, dict[str, list[str]]]


def parse(text: str) -> Sections:
    """A unit file or drop-in: {section: {key: [values in order]}}. Continuation lines (a
    trailing backslash) are joined with a space; comment lines are skipped, also inside them."""
    sections: Sections = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if pending:
            line, pending = pending + " " + line, ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a setting: {raw!r}"
        assert current is not None, f"a setting before any section: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    assert not pending, "the file ends inside a continued line"
    return sections


@dataclass
class Unit:
    """A unit file, with drop-ins applied (their values added after the unit's)."""

    name: str
    sections: Sections

    @classmethod
    def load(cls, file_name: str, dropins: Iterable[Path] = ()) -> Unit:
        sections = parse((DEPLOY / file_name).read_text())
        for dropin in dropins:
            for section, settings in parse(dropin.read_text()).items():
                for key, values in settings.items():
                    sections.setdefault(section, {}).setdefault(key, []).extend(values)
        return cls(file_name, sections)

    def values(self, key: str, section: str = "Service") -> list[str]:
        return self.sections.get(section, {}).get(key, [])

    def value(self, key: str, section: str = "Service") -> str | None:
        values = self.values(key, section)
        return values[-1] if values else None


_SPECIFIER = re.compile(r"%(.)")
_ENV_WORD = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_ENV_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Resolved:
    """What systemd would run for one unit instance: its argv and environment, the credentials
    it loads ({id: source file}) and its state folder, with paths moved by `remap`."""

    argv: list[str]
    env: dict[str, str]
    credentials: dict[str, Path]
    state_directory: str | None
    specifiers: dict[str, str] = field(repr=False)


def resolve(
    unit: Unit, *, instance: str = "", credentials: Path, state_root: Path,
    remap: Callable[[str], str],
) -> Resolved:  # fmt: skip
    """The unit's command line and environment as systemd builds them, for `instance`:
    specifiers (%i %d %S %%), Environment= then EnvironmentFile= (which wins), and ExecStart's
    `$VAR` (split into words) and `${VAR}` (one word)."""
    service = unit.name.replace("@.service", f"@{instance}.service")
    specifiers = {
        "i": instance, "I": instance, "n": service, "p": unit.name.split("@")[0].split(".")[0],
        "d": str(credentials), "S": str(state_root), "%": "%",
    }  # fmt: skip

    def expand(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            assert match[1] in specifiers, f"{unit.name}: unknown specifier %{match[1]}"
            return specifiers[match[1]]

        return _SPECIFIER.sub(one, text)

    env: dict[str, str] = {}
    for value in unit.values("Environment"):
        for assignment in shlex.split(expand(value)):
            key, _, val = assignment.partition("=")
            env[key] = val
    for value in unit.values("EnvironmentFile"):
        optional = value.startswith("-")
        path = Path(remap(expand(value.removeprefix("-"))))
        if not path.exists():
            assert optional, f"{unit.name}: EnvironmentFile {path} is missing"
            continue
        env.update(read_environment_file(path))
    env["CREDENTIALS_DIRECTORY"] = str(credentials)

    exec_start = unit.values("ExecStart")
    assert len(exec_start) == 1, f"{unit.name}: one ExecStart"
    argv: list[str] = []
    for word in shlex.split(expand(exec_start[0])):
        whole = _ENV_WORD.fullmatch(word)
        if whole:
            argv.extend(env.get(whole[1], "").split())
        else:
            argv.append(_ENV_BRACED.sub(lambda m: env.get(m[1], ""), word))
    loaded: dict[str, Path] = {}
    for value in unit.values("LoadCredential"):
        name, _, source = expand(value).partition(":")
        path = Path(remap(source))
        if path.is_dir():  # each file becomes NAME_FILE
            for item in sorted(path.iterdir()):
                if item.is_file() and not item.is_symlink():
                    loaded[f"{name}_{item.name}"] = item
        else:
            loaded[name] = path
    state = unit.value("StateDirectory")
    return Resolved(
        argv=[remap(word) for word in argv],
        env={key: remap(val) for key, val in env.items()},
        credentials=loaded,
        state_directory=expand(state) if state else None,
        specifiers=specifiers,
    )


def read_environment_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not an assignment: {raw!r}"
        if value[:1] in ("'", '"'):
            (value,) = shlex.split(value)
        env[key.strip()] = value
    return env


# ---------------------------------------------------------------- running a unit's command


@functools.cache
def syscall_groups() -> dict[str, list[str]]:
    """`systemd-analyze syscall-filter`: every @group with its items (syscalls and groups)."""
    done = subprocess.run(
        ["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True
    )
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in done.stdout.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif not line.strip() or not line.startswith(" "):
            current = None
        elif current is not None and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def syscalls(item: str) -> set[str]:
    if not item.startswith("@"):
        return {item}
    return set().union(*(syscalls(x) for x in syscall_groups()[item]))


def seccomp_spec(unit: Unit) -> dict[str, list[str]]:
    """The unit's SystemCallFilter= (an allow list, then `~` removals) and
    RestrictAddressFamilies=, for _confine.py."""
    allowed: set[str] = set()
    for value in unit.values("SystemCallFilter"):
        deny = value.startswith("~")
        names = set().union(*(syscalls(x) for x in value.removeprefix("~").split()))
        allowed = allowed - names if deny else allowed | names
    families = " ".join(unit.values("RestrictAddressFamilies")).split()
    return {"allow": sorted(allowed), "families": families}


def start(
    unit: Unit, resolved: Resolved, *, account: Account, python: str, workdir: Path, log: Path,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:  # fmt: skip
    """Start `resolved` as systemd would start `unit`: its credentials copied (0400, in a 0500
    folder, both the service user's), its state folder made (0700), a private temp dir, and the
    process confined as the unit says. stdout is a pipe; stderr goes to `log`."""
    credentials = Path(resolved.specifiers["d"])
    credentials.parent.mkdir(parents=True, exist_ok=True)
    credentials.mkdir(mode=0o700)
    for name, source in resolved.credentials.items():
        target = credentials / name
        shutil.copyfile(source, target)
        target.chmod(0o400)
        os.chown(target, account.uid, account.gid)
    credentials.chmod(0o500)
    os.chown(credentials, account.uid, account.gid)
    env = {"PATH": SERVICE_PATH, "LANG": "C.UTF-8", **resolved.env}
    if resolved.state_directory:
        state = Path(resolved.specifiers["S"]) / resolved.state_directory
        state.mkdir(mode=0o700, parents=True)
        os.chown(state, account.uid, account.gid)
        env["STATE_DIRECTORY"] = str(state)
    private_tmp = workdir / f"tmp-{unit.name}"
    private_tmp.mkdir(mode=0o700)
    os.chown(private_tmp, account.uid, account.gid)
    env["TMPDIR"] = str(private_tmp)
    env.update(extra_env or {})
    assert unit.value("CapabilityBoundingSet") == "", "run_confined drops every capability"
    assert unit.value("NoNewPrivileges") == "yes"
    return run_confined(
        resolved.argv, account=account, python=python, env=env, log=log,
        seccomp=seccomp_spec(unit), umask=0o077,
    )  # fmt: skip
