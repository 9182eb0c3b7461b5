"""Processors on real runs: hook order, errors, entry-point discovery, slow processors."""

from __future__ import annotations

import base64
import hashlib
import importlib
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import genja
from genja.task import HostTaskResult, TaskSuccessResult, task

pytestmark = pytest.mark.e2e

HOSTS = ("r1", "r2", "r3")


def _settings() -> genja.Settings:
    return genja.Settings.from_dict({"runner": {"worker_count": 1}})


@pytest.fixture
def one_agent_genja() -> Iterator[Any]:
    made: list[genja.Genja] = []

    def make(hosts: Any = HOSTS, **kwargs: Any) -> genja.Genja:
        if not isinstance(hosts, dict):
            hosts = {h: {} for h in hosts}
        g = genja.Genja.from_hosts(hosts, _settings(), **kwargs)
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()


class _Ok:
    def start(self, task: Any, host: Any, context: Any) -> TaskSuccessResult:
        return TaskSuccessResult(summary=f"{task.name} on {host.id}")


@task(name="validate", processors=["rec"])
class Validate(_Ok):
    pass


@task(name="deploy", sub_tasks=[Validate], processors=["rec"])
class Deploy(_Ok):
    pass


@task(name="backup", processors=["rec"])
class Backup(_Ok):
    pass


@task(name="change", sub_tasks=[Deploy, Backup], processors=["rec"])
class Change(_Ok):
    pass


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def on_task_start(self, ctx: genja.ProcessorContext) -> None:
        self.calls.append(("task_start", ctx.task_name, ctx.host_id))

    def on_instance_start(self, ctx: genja.ProcessorContext) -> None:
        self.calls.append(("instance_start", ctx.task_name, ctx.host_id))

    def on_instance_finish(self, ctx: genja.ProcessorContext, result: HostTaskResult) -> Any:
        self.calls.append(("instance_finish", ctx.task_name, ctx.host_id))
        if ctx.task_name == "backup" and isinstance(result, TaskSuccessResult):
            return TaskSuccessResult(summary=f"{result.summary} (checked)", metadata={"by": "rec"})
        return None

    def on_task_finish(self, ctx: genja.ProcessorContext, results: genja.TaskResults) -> None:
        self.calls.append(("task_finish", ctx.task_name, ctx.host_id))


def test_hook_order_for_a_task_tree_over_several_hosts(one_agent_genja: Any) -> None:
    recorder = Recorder()
    g = one_agent_genja(processors={"rec": recorder})
    results = g.run_task(Change, max_depth=2)
    calls = recorder.calls
    assert calls[:4] == [
        ("task_start", n, None) for n in ("change", "deploy", "validate", "backup")
    ]
    assert calls[-4:] == [
        ("task_finish", n, None) for n in ("validate", "deploy", "backup", "change")
    ]
    for host in HOSTS:
        assert [(hook, name) for hook, name, h in calls if h == host] == [
            (hook, name)
            for name in ("change", "deploy", "validate", "backup")
            for hook in ("instance_start", "instance_finish")
        ]
    assert len(calls) == 8 + 3 * 8
    # The replacement made by on_instance_finish is what the tree holds.
    assert results.sub_task("backup")["r2"] == TaskSuccessResult(
        summary="backup on r2 (checked)", metadata={"by": "rec"}
    )
    assert results.sub_task("deploy", "validate")["r2"].summary == "validate on r2"


class Exploding:
    def on_instance_finish(self, ctx: genja.ProcessorContext, result: HostTaskResult) -> None:
        if ctx.host_id == "r2":
            raise KeyError("no such field")

    def on_task_finish(self, ctx: genja.ProcessorContext, results: genja.TaskResults) -> None:
        raise RuntimeError("summary broke")


@task(name="plain", processors=["exploding", "audit"])
class Plain(_Ok):
    pass


def test_an_exception_in_a_hook_keeps_every_host_result(one_agent_genja: Any) -> None:
    g = one_agent_genja(processors={"exploding": Exploding})
    events = list(g.stream_task(Plain, max_depth=0))
    failures = [e for e in events if isinstance(e, genja.ProcessorFailed)]
    assert {(f.processor, f.hook, f.host_id) for f in failures} == {
        ("exploding", "on_instance_finish", "r2"),
        ("exploding", "on_task_finish", None),
    }
    results = events[-1].results  # type: ignore[union-attr]
    assert results.host_summary() == genja.HostSummary(passed=3)
    # The next processor in the chain still ran for r2, and the failure is on the result.
    assert results["r2"].metadata["audit"]["host"] == "r2"
    assert any("'exploding'" in w and "KeyError" in w for w in results["r2"].warnings)


@task(name="misconfigured", processors=["audit", "no-such-processor"])
class Misconfigured(_Ok):
    pass


@task(name="parent_of_misconfigured", sub_tasks=[Misconfigured])
class ParentOfMisconfigured(_Ok):
    pass


def test_an_unknown_processor_fails_before_any_host_starts(one_agent_genja: Any) -> None:
    g = one_agent_genja()
    with pytest.raises(genja.ConfigurationError) as caught:
        g.run_task(ParentOfMisconfigured, max_depth=1)
    message = str(caught.value)
    assert "task 'misconfigured'" in message
    assert "'no-such-processor'" in message
    assert "audit, jsonl, progress" in message
    assert g.runtime is None  # no agent was even started
    # Beyond max_depth the sub-task does not run, so its processors are not needed.
    assert g.run_task(ParentOfMisconfigured, max_depth=0).host_summary().passed == 3


@task(name="touch")
class Touch:
    def start(self, task: Any, host: Any, context: Any) -> TaskSuccessResult:
        (Path(host.data["dir"]) / host.id).touch()
        return TaskSuccessResult()


@task(name="slowly_processed", sub_tasks=[Touch], processors=["slow"])
class SlowlyProcessed(_Ok):
    pass


class Slow:
    """Blocks its first call until every host's sub-task has run on the agents."""

    def __init__(self, folder: Path, count: int) -> None:
        self.folder = folder
        self.count = count
        self.saw_all_hosts_finish: bool | None = None

    def on_instance_finish(self, ctx: genja.ProcessorContext, result: HostTaskResult) -> None:
        if self.saw_all_hosts_finish is not None:
            return
        deadline = time.monotonic() + 60
        while len(list(self.folder.iterdir())) < self.count and time.monotonic() < deadline:
            time.sleep(0.05)
        self.saw_all_hosts_finish = len(list(self.folder.iterdir())) == self.count


def test_a_slow_processor_does_not_stall_the_agents(one_agent_genja: Any, tmp_path: Path) -> None:
    hosts = {f"h{i}": {"data": {"dir": str(tmp_path)}} for i in range(6)}
    slow = Slow(tmp_path, len(hosts))
    g = one_agent_genja(hosts, processors={"slow": slow})
    results = g.run_task(SlowlyProcessed, max_depth=1)
    assert slow.saw_all_hosts_finish is True
    assert results.sub_task("touch").host_summary().passed == 6


# ---------------------------------------------------------------- entry points

_PLUGIN = "genja_test_stamp_plugin"
_DIST = "genja-test-stamp-plugin"
_MODULE = """
import dataclasses


class Stamp:
    def on_instance_finish(self, ctx, result):
        metadata = {**getattr(result, "metadata", {}), "stamped_by": "entry point"}
        return dataclasses.replace(result, metadata=metadata)
"""


def _build_wheel(folder: Path) -> Path:
    """A minimal wheel, written by hand so the test needs no build backend and no network."""
    info = f"{_PLUGIN}-0.1.dist-info"
    files = {
        f"{_PLUGIN}/__init__.py": _MODULE,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {_DIST}\nVersion: 0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: genja-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[genja.processors]\nstamp-test = {_PLUGIN}:Stamp\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    wheel = folder / f"{_PLUGIN}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        timeout=120,
    )


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[None]:
    _pip("install", "--no-deps", "--no-index", str(_build_wheel(tmp_path)))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        _pip("uninstall", "-y", _DIST)
        sys.modules.pop(_PLUGIN, None)
        importlib.invalidate_caches()


@task(name="stamped", processors=["stamp-test"])
class Stamped(_Ok):
    pass


def test_processors_from_the_entry_point_group(
    installed_plugin: None, one_agent_genja: Any
) -> None:
    g = one_agent_genja()
    assert "stamp-test" in g.processor_names()
    results = g.run_task(Stamped, max_depth=0)
    assert results["r1"].metadata == {"stamped_by": "entry point"}
    # A fresh interpreter finds it too, and the genja command lists processors it knows.
    found = subprocess.run(
        [sys.executable, "-c", "import genja; print(genja.Genja().processor_names())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "stamp-test" in found.stdout
