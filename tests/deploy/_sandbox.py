"""Running deploy/'s commands as their service user would: a throwaway unprivileged account
(tests/servers/accounts.py) with no capabilities and no new privileges (setpriv), confined by
_confine.py, with genja installed where that user may run it.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers.accounts import Account

REPO = Path(__file__).parents[2]
CONFINE = Path(__file__).with_name("_confine.py")
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Sandbox:
    """What a test's services run with: a folder (0755, short: unix socket paths live below),
    the unprivileged user they run as, the Python it may run, genja's commands (the /opt/genja
    of deploy/) and the environment that goes with them."""

    folder: Path
    account: Account
    python: str
    bin: Path
    env: dict[str, str]

    def log(self, name: str) -> str:
        return (self.folder / name).read_text(errors="replace")


def _others_may_run(path: Path) -> bool:
    """Whether a user with no capabilities may run `path` (every folder above it searchable)."""
    try:
        modes = [p.stat().st_mode for p in (path, *path.parents)]
    except OSError:
        return False
    return all(mode & stat.S_IXOTH for mode in modes)


def service_python() -> str | None:
    """An interpreter of this Python version that an unprivileged user may run: this venv's
    own, or the system's when this venv's lies in a private folder (pyenv under /root)."""
    for candidate in (getattr(sys, "_base_executable", ""), "/usr/bin/python3"):
        path = Path(candidate).resolve() if candidate else None
        if path is None or not _others_may_run(path):
            continue
        done = subprocess.run(
            [str(path), "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.stdout.strip() == str(sys.version_info[:2]):
            return str(path)
    return None


def install_commands(folder: Path, python: str) -> tuple[Path, dict[str, str]]:
    """/opt/genja/bin for the services: genja-coordinator and genja-agent run by `python`, with
    this checkout and its venv's packages on PYTHONPATH (what a venv in /opt/genja holds);
    the bin folder and the environment that goes with it."""
    folder.mkdir(mode=0o755)
    for name, module in (("genja-coordinator", "genja_rpc._cli"), ("genja-agent", "agent._cli")):
        script = folder / name
        script.write_text(f"#!{python}\nimport sys\nfrom {module} import main\nsys.exit(main())\n")
        script.chmod(0o755)
    packages = sysconfig.get_paths()["purelib"]
    return folder, {"PYTHONPATH": f"{REPO}:{packages}"}


def run_confined(
    argv: Sequence[str], *, account: Account, python: str, env: Mapping[str, str], log: Path,
    seccomp: Mapping[str, Any] | None = None, umask: int = 0o022, cwd: str = "/",
) -> subprocess.Popen[str]:  # fmt: skip
    """Start `argv` as `account` (its group alone), with no capabilities (bounding set and
    inheritable set emptied), no new privileges, `umask`, PR_SET_MDWE and, given `seccomp`
    ({"allow": [...], "families": [...]}), that system call filter. stdout is a pipe; stderr
    goes to `log`."""
    options = ["--umask", oct(umask)]
    if seccomp is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=log.parent, delete=False) as spec:
            json.dump(seccomp, spec)
        Path(spec.name).chmod(0o644)
        options += ["--seccomp", spec.name]
    command = [
        "setpriv", f"--reuid={account.uid}", f"--regid={account.gid}", "--clear-groups",
        "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all",
        python, str(CONFINE), *options, "--", *argv,
    ]  # fmt: skip
    with log.open("w") as err:
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, text=True, cwd=cwd, env=dict(env)
        )
