"""The `genja` command end to end, in subprocesses: exit codes, JSON and JSONL, plain output off a
terminal, and the progress bar on a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SECRET = "pw-should-never-show-9f2c"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

TASKS = """
from genja.task import TaskFailureResult, TaskSkipResult, TaskSuccessResult, task


@task(name="validate")
class Validate:
    def start(self, task, host, context):
        if host.id == "router2":
            return TaskFailureResult(message="show run [interface] failed", kind="command")
        return TaskSuccessResult(summary=f"validated {host.id}")


@task(name="collect_facts", sub_tasks=[Validate])
class CollectFacts:
    def start(self, task, host, context):
        if host.platform == "nxos":
            return TaskSkipResult(reason="unsupported_platform", message="nxos is not supported")
        return TaskSuccessResult(summary=f"collected facts from {host.hostname}")
"""

BACKUP = """
import os

from genja.task import TaskSuccessResult, task


@task(name="backup", options={"path": "/tmp/configs", "ssh": {"port": 22, "user": "backup"}})
class Backup:
    def start(self, task, host, context):
        return TaskSuccessResult(
            summary=f"{host.id} to {task.options['path']}",
            result={"options": task.options, "pid": os.getpid()},
        )
"""

BROKEN = """
from genja.task import TaskSuccessResult, task


@task(name="audited", processors=["audit", "no-such-processor"])
class Misconfigured:
    def start(self, task, host, context):
        return TaskSuccessResult()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "settings.yaml").write_text(
        textwrap.dedent(
            """\
            inventory:
              options:
                hosts_file: inventory/hosts.yaml
                groups_file: inventory/groups.yaml
            runner:
              worker_count: 1
            """
        )
    )
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yaml").write_text(
        textwrap.dedent(
            f"""\
            router1:
              hostname: 127.0.0.1
              platform: ios
              groups: [core]
              data: {{site: {{name: dc1}}}}
            router2:
              hostname: 127.0.0.2
              platform: eos
              password: {SECRET}
              groups: [core]
              data: {{site: {{name: dc2}}}}
            switch1:
              hostname: 127.0.0.3
              platform: nxos
              data: {{site: {{name: branch1}}}}
            """
        )
    )
    (tmp_path / "inventory" / "groups.yaml").write_text("core:\n  username: admin\n")
    (tmp_path / "tasks.py").write_text(TASKS)
    (tmp_path / "broken.py").write_text(BROKEN)
    (tmp_path / "backup.py").write_text(BACKUP)
    (tmp_path / "options.yaml").write_text("path: /from-file\nssh:\n  user: admin\nkeep: 3\n")
    (tmp_path / "bad-options.yaml").write_text("path: /x\nwhen: 2026-12-01\n")
    return tmp_path


def genja(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "GENJA_SETTINGS")}
    return subprocess.run(
        [sys.executable, "-m", "genja", *args],
        check=False,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_run_with_a_failure_writes_json_and_exits_1(project: Path) -> None:
    done = genja(
        project,
        "run",
        "tasks.py:CollectFacts",
        "-s",
        "settings.yaml",
        "--workers",
        "1",
        "--json",
        "out/r.json",
    )
    assert done.returncode == 1, done.stderr
    tree = json.loads((project / "out" / "r.json").read_text())
    assert tree["task_name"] == "collect_facts"
    assert len(tree["run_id"]) == 32
    router1 = tree["hosts"]["router1"]
    timing = router1.pop("execution_metadata")
    assert router1 == {"status": "passed", "summary": "collected facts from 127.0.0.1"}
    assert timing["agent"] == "local-0"
    assert timing["started_at"] <= timing["finished_at"]
    assert tree["hosts"]["switch1"]["reason"] == "unsupported_platform"
    failed = tree["sub_tasks"]["validate"]["hosts"]["router2"]
    assert (failed["status"], failed["kind"]) == ("failed", "command")

    # Off a terminal: no escape codes, progress as plain lines on stderr, the tree on stdout.
    assert not ANSI.search(done.stdout + done.stderr)
    assert "running collect_facts on 3 hosts" in done.stderr
    assert re.search(r"^\[\d/3\] failed\s+router2  validate: command: show run", done.stderr, re.M)
    assert re.search(r"^\[\d/3\] skipped\s+switch1  unsupported_platform", done.stderr, re.M)
    lines = done.stdout.splitlines()
    assert lines[0] == "collect_facts  2 passed, 0 failed, 1 skipped"
    # Each host's line ends with how long its task took there.
    duration = r"  \d+(µs|ms|\.\d\ds)"
    assert any(
        re.fullmatch(rf"├── ✓ router1  collected facts from 127\.0\.0\.1{duration}", x)
        for x in lines
    )
    assert "└── validate  2 passed, 1 failed, 0 skipped" in lines
    assert any(
        re.fullmatch(rf"    ├── ✗ router2  command: show run \[interface\] failed{duration}", x)
        for x in lines
    )
    assert re.fullmatch(r"3 hosts: 1 passed, 1 failed, 1 skipped in \d+\.\ds", lines[-1])
    assert SECRET not in done.stdout + done.stderr


def test_run_filtered_to_passing_hosts_writes_jsonl_and_exits_0(project: Path) -> None:
    done = genja(
        project,
        "run",
        "tasks.py",  # the module's only root task is picked
        "-s",
        "settings.yaml",
        "--filter",
        "data.site.name=^dc",
        "--filter",
        "groups=core",
        "--max-depth",
        "0",
        "--jsonl",
        "r.jsonl",
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (project / "r.jsonl").read_text().splitlines()]
    assert sorted((r["host"], r["task_path"], r["status"]) for r in records) == [
        ("router1", ["collect_facts"], "passed"),
        ("router2", ["collect_facts"], "passed"),
    ]
    assert done.stdout.splitlines()[-1].startswith("2 hosts: 2 passed, 0 failed, 0 skipped")


def test_json_to_stdout_keeps_stdout_pure(project: Path) -> None:
    done = genja(project, "run", "tasks.py:CollectFacts", "--max-depth", "0", "--json", "-")
    assert done.returncode == 0, done.stderr  # ./settings.yaml is the default
    assert json.loads(done.stdout)["hosts"]["router2"]["status"] == "passed"
    assert "3 hosts: 2 passed, 0 failed, 1 skipped" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "tasks.py:Nope"], "tasks.py has no 'Nope'; its tasks: Validate, CollectFacts"),
        (["run", "missing.py:X"], "missing.py: file not found"),
        (["run", "tasks.py:CollectFacts", "-f", "site.name=("], "invalid regular expression"),
        (["run", "tasks.py:CollectFacts", "-f", "platform=^junos"], "no hosts selected"),
        (["run", "tasks.py:CollectFacts", "-s", "nowhere.yaml"], "nowhere.yaml: file not found"),
        (
            ["run", "broken.py:Misconfigured"],
            "task 'audited' asks for processor 'no-such-processor'",
        ),
        (["run", "tasks.py:CollectFacts", "--max-depth", "-1"], "must be >= 0"),
        (["run", "tasks.py:CollectFacts", "--json", "a", "--jsonl", "b"], "not allowed with"),
        (["frobnicate"], "invalid choice"),
        (["run", "backup.py:Backup", "-o", "path"], "-o 'path': expected KEY=VALUE"),
        (
            ["run", "backup.py:Backup", "-o", "ssh=1", "-o", "ssh.port=2"],
            "'ssh' is already set to 1, which is not a mapping",
        ),
        (
            ["run", "backup.py:Backup", "--options-file", "bad-options.yaml"],
            "bad-options.yaml: line 2: option 'when' is a date, not a JSON value",
        ),
        (
            ["run", "backup.py:Backup", "--options-file", "nowhere.yaml"],
            "nowhere.yaml: file not found",
        ),
    ],
)
def test_usage_and_configuration_errors_exit_2(
    project: Path, args: list[str], message: str
) -> None:
    done = genja(project, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("runner", ["agents", "serial"])
def test_run_time_options_reach_the_task(project: Path, runner: str) -> None:
    """-o over --options-file over the declared options; JSON values where they parse."""
    settings = project / f"settings-{runner}.yaml"
    settings.write_text(
        (project / "settings.yaml").read_text().replace("runner:", f"runner:\n  plugin: {runner}")
    )
    done = genja(
        project,
        "run",
        "backup.py:Backup",
        "-s",
        settings.name,
        "--options-file",
        "options.yaml",
        "-o",
        "keep=7",
        "-o",
        "ssh.port=2222",
        "--option",
        'tags=["a", "b"]',
        "-o",
        "label=core-1",
        "-o",
        "dry=true",
        "--json",
        "-",
    )
    assert done.returncode == 0, done.stderr
    tree = json.loads(done.stdout)
    router1 = tree["hosts"]["router1"]
    assert router1["summary"] == "router1 to /from-file"
    assert router1["result"]["options"] == {
        "path": "/from-file",
        "ssh": {"port": 2222, "user": "admin"},
        "keep": 7,
        "tags": ["a", "b"],
        "label": "core-1",
        "dry": True,
    }
    # One process ran them: the one agent (worker_count 1), or the CLI itself under serial.
    assert len({host["result"]["pid"] for host in tree["hosts"].values()}) == 1


def test_unknown_settings_key_exits_2(project: Path) -> None:
    (project / "bad.yaml").write_text("runner:\n  worker_cont: 2\n")
    done = genja(project, "inventory", "-s", "bad.yaml")
    assert done.returncode == 2
    assert "unknown key 'runner.worker_cont'; did you mean 'worker_count'?" in done.stderr


SETTINGS_HEAD = (
    "inventory:\n  options:\n    hosts_file: inventory/hosts.yaml\n"
    "    groups_file: inventory/groups.yaml\n"
)


@pytest.mark.parametrize("command", ["run", "inventory"])
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            f"{SETTINGS_HEAD}runner:\n  options:\n    host_concurrency: 0\n",
            "bad.yaml: line 7: runner.options.host_concurrency must be a whole number >= 1, got 0",
        ),
        (
            f"{SETTINGS_HEAD}runner:\n  options:\n    task_timeout: -5\n",
            "bad.yaml: line 7: runner.options.task_timeout must be a positive number of seconds",
        ),
        (
            f"{SETTINGS_HEAD}runner:\n  options:\n    max_logins: 99999999999999999999\n",
            "bad.yaml: line 7: runner.options.max_logins must be a whole number from 0 to",
        ),
        (
            f"{SETTINGS_HEAD}runner:\n  options:\n    run_timout: 5\n",
            "bad.yaml: line 7: unknown key 'runner.options.run_timout'; did you mean "
            "'run_timeout'?",
        ),
        (
            f"{SETTINGS_HEAD}runner:\n  worker_count: 0\n",
            "bad.yaml: line 6: runner.worker_count must be a whole number from 1 to 256, got 0",
        ),
        (
            "inventory:\n  options:\n    hosts_file: ~no-such-user-9f2c/hosts.yaml\n",
            "bad.yaml: cannot expand '~no-such-user-9f2c/hosts.yaml'",
        ),
        (
            f"{SETTINGS_HEAD}logging:\n  enabled: true\n  log_file: tasks.py/genja.log\n",
            "bad.yaml: logging.log_file: cannot write",
        ),
    ],
)
def test_a_bad_settings_file_exits_2_with_one_line(
    project: Path, command: str, settings: str, message: str
) -> None:
    (project / "bad.yaml").write_text(settings)
    args = ["run", "tasks.py:CollectFacts"] if command == "run" else ["inventory"]
    done = genja(project, *args, "-s", "bad.yaml")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"genja: error: {message}"), done.stderr


@pytest.mark.parametrize("command", ["run", "inventory"])
@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        (
            "hosts.yaml",
            "router1:\n  hostname: 127.0.0.1\n  port: 99999999999999999999\n",
            "inventory/hosts.yaml: line 3: host 'router1': port must be a whole number from 1 "
            "to 65535, got 99999999999999999999",
        ),
        (
            "hosts.yaml",
            "router1:\n  port: -5\n",
            "inventory/hosts.yaml: line 2: host 'router1': port must be a whole number from 1 "
            "to 65535, got -5",
        ),
        (
            "groups.yaml",
            "core:\n  connection_options:\n    ssh:\n      port: 0\n",
            "inventory/groups.yaml: line 4: group 'core': connection_options.ssh.port must be a "
            "whole number from 1 to 65535, got 0",
        ),
    ],
)
def test_a_bad_inventory_port_exits_2_with_one_line(
    project: Path, command: str, file: str, text: str, message: str
) -> None:
    (project / "inventory" / file).write_text(text)
    args = ["run", "tasks.py:CollectFacts"] if command == "run" else ["inventory"]
    done = genja(project, *args, "-s", "settings.yaml")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"genja: error: {message}"]


def _laughs() -> str:
    """Nine levels of ten aliases: 10^9 nodes once expanded."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def _bad_files(project: Path) -> None:
    """Files for the cases below: each is wrong in its own way."""
    (project / "folder").mkdir()
    (project / "loop1").symlink_to("loop2")  # unreadable even for root
    (project / "loop2").symlink_to("loop1")
    (project / "garbage.yaml").write_bytes(bytes(range(256)) * 8)
    (project / "control.yaml").write_bytes(b"inventory: {}\nnote: a\x00b\n")
    (project / "list.yaml").write_text("- inventory\n- runner\n")
    (project / "bomb.yaml").write_text(_laughs())
    (project / "recursive.yaml").write_text("router1:\n  data: &a {self: *a}\n")
    (project / "long-key.yaml").write_text("k" * (1 << 20) + ": 1\n")
    (project / "exits.py").write_text("import sys\nsys.exit(0)\n")
    (project / "nul.py").write_bytes(b"x = 1\x00\n")
    for name, hosts_file in [
        ("hosts-folder", "folder"),
        ("hosts-garbage", "garbage.yaml"),
        ("hosts-list", "list.yaml"),
        ("hosts-bomb", "bomb.yaml"),
        ("hosts-recursive", "recursive.yaml"),
        ("hosts-long-key", "long-key.yaml"),
    ]:
        (project / f"{name}.yaml").write_text(
            f"inventory: {{options: {{hosts_file: {hosts_file}}}}}\n"
        )
    (project / "ca-missing.yaml").write_text(
        f"{SETTINGS_HEAD}runner:\n  options:\n    coordinator: '127.0.0.1:9'\n"
        "    coordinator_tls_ca: nowhere.pem\n"
    )


SETTINGS_CASES = [
    ("folder", "folder: is a folder, not a file"),
    ("loop1", "loop1: cannot read: Too many levels of symbolic links"),
    ("garbage.yaml", "garbage.yaml: not UTF-8 text: invalid start byte"),
    (
        "control.yaml",
        "control.yaml: line 2: invalid YAML: character 0x0000: control characters are not allowed",
    ),
    ("list.yaml", "list.yaml: the top level must be a mapping, got list"),
    ("/dev/zero", "/dev/zero: not a regular file, and more than 64 MiB came from it"),
    ("hosts-folder.yaml", "folder: is a folder, not a file"),
    ("hosts-garbage.yaml", "garbage.yaml: not UTF-8 text: invalid start byte"),
    ("hosts-list.yaml", "list.yaml: expected a mapping of host names to their fields, got list"),
    (
        "hosts-bomb.yaml",
        "bomb.yaml: line 6: aliases expand the document past the limit (1,000,000 nodes more "
        "than it writes): is it an alias bomb?",
    ),
    (
        "hosts-recursive.yaml",
        "recursive.yaml: line 2: an alias inside the value its own anchor names (a recursive "
        "alias)",
    ),
    (
        "hosts-long-key.yaml",
        "long-key.yaml: line 1: a key longer than 1024 characters: YAML allows no longer one "
        "before `: value` (write it as `? key`, then `: value` on the next line)",
    ),
]


# `genja run` starts its agents while the inventory loads (and stops them on an error, which
# takes seconds): it runs the settings cases and one inventory case, `inventory` all of them.
RUN_CASES = {"folder", "loop1", "garbage.yaml", "control.yaml", "list.yaml", "hosts-bomb.yaml"}


@pytest.mark.parametrize(
    ("command", "settings", "message"),
    [("inventory", *case) for case in SETTINGS_CASES]
    + [("run", *case) for case in SETTINGS_CASES if case[0] in RUN_CASES],
)
def test_bad_settings_and_inventory_files_exit_2_with_one_line(
    project: Path, command: str, settings: str, message: str
) -> None:
    _bad_files(project)
    args = ["run", "tasks.py:CollectFacts"] if command == "run" else ["inventory", "--json"]
    done = genja(project, *args, "-s", settings)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.splitlines() == [f"genja: error: {message}"]
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "folder"], "--json folder: cannot write: Is a directory"),
        (["--jsonl", "folder"], "--jsonl folder: cannot write: Is a directory"),
        (["--json", "tasks.py/r.json"], "--json tasks.py/r.json: cannot write: File exists"),
        (["--workers", "100000"], "argument --workers: must be <= 256, got 100000"),
    ],
)
def test_bad_run_options_exit_2_before_the_run(
    project: Path, args: list[str], message: str
) -> None:
    _bad_files(project)
    done = genja(project, "run", "tasks.py:CollectFacts", *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].endswith(message), done.stderr
    assert "Traceback" not in done.stderr
    assert "running" not in done.stderr, "no host ran"


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("exits.py", "exits.py: importing it failed: SystemExit: 0 (line 2)"),
        ("nul.py", "nul.py: importing it failed: source code string cannot contain null bytes"),
        ("folder/:Task", "folder: is a folder; name a .py file or a module"),
        ("no_such_module:Task", "cannot import 'no_such_module': ModuleNotFoundError: No module "
         "named 'no_such_module'"),
    ],
)  # fmt: skip
def test_a_task_that_cannot_be_loaded_exits_2_with_one_line(
    project: Path, task: str, message: str
) -> None:
    _bad_files(project)
    done = genja(project, "run", task)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"genja: error: {message}"]


def test_a_missing_coordinator_ca_file_exits_2_with_one_line(project: Path) -> None:
    _bad_files(project)
    done = genja(project, "run", "tasks.py:CollectFacts", "-s", "ca-missing.yaml")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "genja: error: runner.options.coordinator_tls_ca nowhere.pem: cannot read: No such file "
        "or directory"
    ]


def test_an_output_that_fails_after_the_run_still_shows_the_results(project: Path) -> None:
    for option in ("--json", "--jsonl"):
        done = genja(project, "run", "tasks.py:CollectFacts", option, "/dev/full")
        assert done.returncode == 1, done.stderr
        assert re.search(r"^3 hosts: 1 passed, 1 failed, 1 skipped in ", done.stdout, re.M)
        assert done.stderr.splitlines()[-1] == (
            f"genja: run failed: cannot write {option} /dev/full: No space left on device "
            "(the results are shown above)"
        )


def test_inventory_table_and_json_mask_passwords(project: Path) -> None:
    table = genja(project, "inventory", "-s", "settings.yaml", "--filter", "groups=core")
    assert table.returncode == 0, table.stderr
    assert "2 of 3 hosts" in table.stdout
    assert "router2" in table.stdout
    assert "switch1" not in table.stdout
    assert "********" in table.stdout
    as_json = genja(project, "inventory", "--json")
    hosts = json.loads(as_json.stdout)
    assert list(hosts) == ["router1", "router2", "switch1"]
    assert hosts["router2"]["password"] == "********"
    assert hosts["router1"]["password"] is None
    assert hosts["router2"]["username"] == "admin"
    assert SECRET not in table.stdout + as_json.stdout


def test_version_and_help_through_the_console_script(project: Path) -> None:
    script = Path(sys.executable).parent / "genja"
    done = subprocess.run(
        [script, "version"], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert re.match(r"genja \d+\.\d+\.\d+ \(python 3\.", done.stdout)
    helped = genja(project, "run", "--help")
    assert helped.returncode == 0
    for words in ("--max-depth N", "--filter KEY=REGEX", "examples:", "exit status: 0"):
        assert words in helped.stdout


def test_a_terminal_shows_the_progress_bar_and_ends_with_the_summary(project: Path) -> None:
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "genja", "run", "tasks.py:CollectFacts", "-s", "settings.yaml"],
        cwd=project,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert process.wait(timeout=30) == 1
    text = output.decode("utf-8", errors="replace")
    assert "\x1b[" in text  # coloured
    plain = ANSI.sub("", text).replace("\r", "\n")
    assert "━━━━" in plain  # the bar
    assert re.search(r"collect_facts .*3/3 .*✓ 1 +✗ 1 +- 1 .*hosts/s", plain)
    assert "✗ router2  validate: command: show run [interface] failed" in plain
    last = [line for line in plain.splitlines() if line.strip()][-1]
    assert re.fullmatch(r"3 hosts: 1 passed, 1 failed, 1 skipped in \d+\.\ds", last.strip())


GATED = """
import pathlib, time
from genja.task import TaskSuccessResult, task


@task(name="gated")
class Gated:
    def start(self, task, host, context):
        pathlib.Path("started-" + host.id).touch()
        deadline = time.monotonic() + 60
        while host.id != "router1" and not pathlib.Path("gate").exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return TaskSuccessResult(summary="done " + host.id)
"""

# A shell may start background children with SIGINT ignored: put Python's ^C handler back.
LAUNCHER = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('genja', run_name='__main__', alter_sys=True)"
)


def _run_then_signal(project: Path, signum: int, *options: str) -> tuple[int, str, str]:
    """`genja run` with router1 done and the other hosts waiting on a gate that never opens;
    `signum` arrives mid-run."""
    (project / "gated.py").write_text(GATED)
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, "run", "gated.py", "-s", "settings.yaml", *options],
        cwd=project,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen = []
    for line in process.stderr:  # progress lines, one per finished host
        seen.append(line)
        if re.search(r"passed\s+router1", line):
            break
    assert any("router1" in line for line in seen), "".join(seen)
    deadline = time.monotonic() + 60
    while len(list(project.glob("started-*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(project.glob("started-*"))) == 3  # the others are running on the agent
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, "".join(seen) + err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_run_keeps_the_finished_hosts_and_writes_them(
    project: Path, signum: signal.Signals
) -> None:
    status, out, err = _run_then_signal(project, signum, "--json", "out/r.json")
    assert status == 128 + signum, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"genja: interrupted: {signum.name}: unfinished hosts were cancelled; "
        "the results are partial"
    )
    assert re.search(r"^3 hosts: 1 passed, 2 failed, 0 skipped in ", out, re.M), out
    hosts = json.loads((project / "out" / "r.json").read_text())["hosts"]
    assert hosts["router1"]["status"] == "passed"
    for host in ("router2", "switch1"):
        assert hosts[host]["status"] == "failed"
        assert hosts[host]["kind"] == "internal"
        assert hosts[host]["message"] == (
            f"the run was interrupted before this host finished ({signum.name})"
        )


def test_sigterm_mid_run_writes_the_jsonl_lines_of_every_host(project: Path) -> None:
    status, _, err = _run_then_signal(project, signal.SIGTERM, "--jsonl", "out/r.jsonl")
    assert status == 143, err
    lines = [json.loads(line) for line in (project / "out" / "r.jsonl").read_text().splitlines()]
    by_host = {line["host"]: line for line in lines}
    assert len(lines) == 3
    assert by_host["router1"]["status"] == "passed"
    assert by_host["router2"]["status"] == by_host["switch1"]["status"] == "failed"
    assert "interrupted before this host finished (SIGTERM)" in by_host["switch1"]["message"]


def test_sigterm_before_the_run_starts_exits_143_at_once(project: Path) -> None:
    """Loading is slow here (a module that sleeps on import): no run to stop yet."""
    (project / "slow.py").write_text(
        "import pathlib, time\npathlib.Path('importing').touch()\ntime.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "genja", "run", "slow.py", "-s", "settings.yaml"],
        cwd=project,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (project / "importing").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143
    assert err.splitlines() == ["genja: interrupted: SIGTERM before the run started"]
