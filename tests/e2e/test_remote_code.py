"""Task code travels to agents that cannot import it: a `genja-coordinator serve` with remote
agents started from a folder, and with an import path, that know nothing of the client's
project. Project modules travel as source (with the helper modules they import); classes of
installed distributions travel by name, and an agent with another version refuses the run
before any host starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers.coordinator import BIN, CoordinatorServer, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FILES = {
    # A file-based task with a helper module beside it, and one it imports lazily.
    "tasks.py": """
        import os

        from genja.task import TaskSuccessResult, task
        from helpers import describe


        @task(name="describe")
        class Describe:
            def start(self, task, host, context):
                import lazyhelper

                return TaskSuccessResult(
                    result={"text": describe(host.id), "lazy": lazyhelper.VALUE, "pid": os.getpid()}
                )
    """,
    "helpers.py": """
        VERSION = "v1"


        def describe(name):
            return f"{name} described by helpers {VERSION}"
    """,
    "lazyhelper.py": "VALUE = 42\n",
    # A package: relative imports, a module imported lazily by its absolute name.
    "netops/__init__.py": "",
    "netops/util.py": "def shout(text):\n    return text.upper() + '!'\n",
    "netops/constants.py": "SITE = 'ams'\n",
    "netops/late.py": "LATE = 'late'\n",
    "netops/facts.py": """
        import os

        from genja.task import TaskSuccessResult, task

        from . import constants
        from .util import shout


        @task(name="facts")
        class Facts:
            def start(self, task, host, context):
                from netops.late import LATE

                return TaskSuccessResult(
                    result={"shout": shout(host.id), "site": constants.SITE, "late": LATE,
                            "pid": os.getpid()}
                )
    """,
    # The Python API: `from netops.facts import Facts` in a script.
    "client.py": """
        import json

        import genja
        from netops.facts import Facts

        with genja.Genja.from_settings_file("settings.yaml") as g:
            results = g.run_task(Facts)
        print(json.dumps({"failed": results.failed_hosts,
                          "results": {h: r.result for h, r in results.hosts.items()}}))
    """,
}

# An installed distribution's task (written into a site-packages folder with its metadata).
VPKG = """
    import os
    from pathlib import Path

    from genja.task import TaskSuccessResult, task


    @task(name="stamp")
    class Stamp:
        def start(self, task, host, context):
            Path(host.data["marks"], host.id).touch()
            return TaskSuccessResult(result={"file": __file__, "pid": os.getpid()})
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def _site(folder: Path, version: str) -> Path:
    """A site-packages folder holding distribution vpkg at `version`."""
    site = folder / "site-packages"
    info = f"vpkg-{version}.dist-info"
    _write(
        site,
        {
            "vpkg/__init__.py": VPKG,
            f"{info}/METADATA": f"Metadata-Version: 2.1\nName: vpkg\nVersion: {version}\n",
            f"{info}/top_level.txt": "vpkg\n",
            f"{info}/RECORD": f"vpkg/__init__.py,,\n{info}/METADATA,,\n{info}/RECORD,,\n",
        },
    )
    return site


def _env(pythonpath: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


@dataclass
class Estate:
    server: CoordinatorServer
    project: Path
    folder: Path
    agent_pids: dict[str, int]

    def settings(self, hosts: dict[str, Any], where: Path) -> Path:
        (where / "hosts.yaml").write_text(json.dumps(hosts), encoding="utf-8")
        settings = {
            "inventory": {"options": {"hosts_file": "hosts.yaml"}},
            "runner": {"options": self.server.runner_options(run_timeout=120)},
        }
        path = where / "settings.yaml"
        path.write_text(json.dumps(settings), encoding="utf-8")
        return path


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    folder = tmp_path_factory.mktemp("remote-code")
    project = folder / "project"
    _write(project, FILES)
    elsewhere = folder / "agent-home"
    elsewhere.mkdir()
    # The agents' folder and import path know nothing of the project.
    probe = subprocess.run(
        [sys.executable, "-c", "import tasks"],
        cwd=elsewhere,
        env=_env(),
        check=False,
        stderr=subprocess.DEVNULL,
    )
    assert probe.returncode != 0
    server = start_server(folder / "server", ("jump1", "v1", "v2", "bare"))
    try:
        pids = {
            "jump1": server.start_agent("jump1-0", "jump1", cwd=elsewhere, env=_env()).pid,
            "v1": server.start_agent(
                "v1-0", "v1", cwd=elsewhere, env=_env(_site(folder / "agent-v1", "1.0"))
            ).pid,
            "v2": server.start_agent(
                "v2-0", "v2", cwd=elsewhere, env=_env(_site(folder / "agent-v2", "2.0"))
            ).pid,
            "bare": server.start_agent("bare-0", "bare", cwd=elsewhere, env=_env()).pid,
        }
        yield Estate(server, project, folder, pids)
    finally:
        server.close()


def _hosts(pool: str, count: int = 4, **data: Any) -> dict[str, Any]:
    return {f"{pool}-r{i}": {"data": {"agent_pool": pool, **data}} for i in range(count)}


def _genja(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [str(BIN / "genja"), *args], cwd=cwd, env=env or _env(), capture_output=True, text=True,
        timeout=240, check=False,
    )  # fmt: skip


def test_a_file_based_task_and_its_helpers_run_on_an_agent_that_cannot_import_them(
    estate: Estate,
) -> None:
    estate.settings(_hosts("jump1"), estate.project)
    done = _genja(
        "run", "tasks.py:Describe", "-s", "settings.yaml", "--json", "-", cwd=estate.project
    )
    assert done.returncode == 0, done.stderr
    hosts = json.loads(done.stdout)["hosts"]
    assert sorted(hosts) == [f"jump1-r{i}" for i in range(4)]
    for host_id, result in hosts.items():
        assert result["status"] == "passed", result
        assert result["result"] == {
            "text": f"{host_id} described by helpers v1",
            "lazy": 42,
            "pid": estate.agent_pids["jump1"],
        }

    # The helper changes; the agent, which cached the first version, runs the new one.
    helpers = estate.project / "helpers.py"
    helpers.write_text(helpers.read_text().replace('"v1"', '"v2"'), encoding="utf-8")
    done = _genja(
        "run", "tasks.py:Describe", "-s", "settings.yaml", "--json", "-", cwd=estate.project
    )
    assert done.returncode == 0, done.stderr
    texts = {r["result"]["text"] for r in json.loads(done.stdout)["hosts"].values()}
    assert texts == {f"jump1-r{i} described by helpers v2" for i in range(4)}


def test_a_task_imported_from_a_package_of_the_project_runs_on_the_agent(estate: Estate) -> None:
    estate.settings(_hosts("jump1"), estate.project)
    done = subprocess.run(
        [sys.executable, "client.py"], cwd=estate.project, env=_env(), capture_output=True,
        text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["failed"] == []
    assert report["results"]["jump1-r2"] == {
        "shout": "JUMP1-R2!",
        "site": "ams",
        "late": "late",
        "pid": estate.agent_pids["jump1"],
    }


@pytest.fixture
def client_site(estate: Estate, tmp_path: Path) -> Path:
    return _site(tmp_path / "client", "1.0")


def test_an_installed_package_travels_by_name_to_an_agent_with_the_same_version(
    estate: Estate, client_site: Path, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    estate.settings(_hosts("v1", marks=str(marks)), tmp_path)
    done = _genja(
        "run", "vpkg:Stamp", "-s", "settings.yaml", "--json", "-", cwd=tmp_path,
        env=_env(client_site),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["hosts"]["v1-r0"]["result"]
    # The agent's own copy ran: the class travelled by name, not as the client's source.
    assert result["file"] == str(estate.folder / "agent-v1/site-packages/vpkg/__init__.py")
    assert result["pid"] == estate.agent_pids["v1"]
    assert sorted(p.name for p in marks.iterdir()) == [f"v1-r{i}" for i in range(4)]


@pytest.mark.parametrize(
    ("pool", "says"),
    [
        ("v2", "the task code needs vpkg 1.0 (the client's version), but this agent has vpkg 2.0"),
        ("bare", "the task code needs vpkg 1.0 (installed on the client), which is not installed"),
    ],
)
def test_an_agent_without_the_clients_version_refuses_the_run_before_any_host_starts(
    estate: Estate, client_site: Path, tmp_path: Path, pool: str, says: str
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    estate.settings(_hosts(pool, marks=str(marks)), tmp_path)
    done = _genja("run", "vpkg:Stamp", "-s", "settings.yaml", cwd=tmp_path, env=_env(client_site))
    assert done.returncode == 1, done.stdout + done.stderr
    error = " ".join(done.stderr.split())  # rich wraps long lines
    assert f"genja: run failed: the coordinator at {estate.server.address}" in error
    assert f"agent {pool}-0 (pool {pool}) cannot run this task: {says}" in error
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # no result tree: no host ran
    assert list(marks.iterdir()) == []
