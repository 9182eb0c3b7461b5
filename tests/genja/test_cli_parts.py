"""The `genja` command's pure parts: host filters, task loading, rendering."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from rich.console import Console

import genja
from genja._cli._loading import load_task
from genja._cli._render import result_tree, summary_line
from genja._cli._selection import apply_filters
from genja.task import ExecutionMetadata, TaskFailureResult, TaskSkipResult, TaskSuccessResult

HOSTS = genja.Inventory.from_hosts(
    {
        "r1": {"platform": "ios", "groups": [], "data": {"site": {"name": "dc1"}, "tier": 1}},
        "r2": {"platform": "eos", "data": {"site": {"name": "lab"}, "tags": ["edge", "prod"]}},
        "s1": {"platform": "nxos", "password": "x"},
    }
).hosts


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["data.site.name=^dc"], ["r1"]),
        (["site.name=^(dc1|lab)$"], ["r1", "r2"]),
        (["platform=os$"], ["r1", "r2", "s1"]),
        (["platform=os$", "tags=^prod$"], ["r2"]),
        (["tier=^1$"], ["r1"]),
        (["id=^s"], ["s1"]),
        (["data.site.name=dc1"], ["r1"]),
        (["data.nothing.here=.*"], []),
        ([], ["r1", "r2", "s1"]),
    ],
)
def test_filters(filters: list[str], expected: list[str]) -> None:
    assert apply_filters(genja.Genja.from_hosts(HOSTS), filters).host_ids() == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("platform", "expected KEY=REGEX"),
        ("=x", "expected KEY=REGEX"),
        ("password=.", "not a key you can filter on"),
        ("data..x=1", "not a key you can filter on"),
        ("platform=(", "invalid regular expression"),
    ],
)
def test_bad_filters(text: str, message: str) -> None:
    with pytest.raises(genja.ConfigurationError, match=message):
        apply_filters(genja.Genja.from_hosts(HOSTS), [text])


def test_load_task_from_a_file_and_a_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader puts the file's folder first
    for name in ("my_tasks_for_loading", "broken_tasks_for_loading"):
        # setitem remembers that the name was absent and removes it again at teardown.
        monkeypatch.setitem(sys.modules, name, None)
        del sys.modules[name]
    (tmp_path / "my_tasks_for_loading.py").write_text(
        "from genja.task import task, TaskSuccessResult\n"
        "@task(name='child')\n"
        "class Child:\n"
        "    def start(self, t, h, c): return TaskSuccessResult()\n"
        "@task(name='parent', sub_tasks=[Child])\n"
        "class Parent:\n"
        "    def start(self, t, h, c): return TaskSuccessResult()\n"
        "class NotATask: pass\n"
    )
    path = str(tmp_path / "my_tasks_for_loading.py")
    parent = load_task(path)
    assert genja.task.definition_of(parent).name == "parent"
    assert load_task(f"{path}:Child") is genja.task.definition_of(parent).sub_tasks[0]
    assert load_task("my_tasks_for_loading:Parent") is parent  # importable by name now
    with pytest.raises(genja.ConfigurationError, match="is not a @task class"):
        load_task(f"{path}:NotATask")
    (tmp_path / "broken_tasks_for_loading.py").write_text("def oops(:\n")
    with pytest.raises(genja.ConfigurationError, match="line 1"):
        load_task(str(tmp_path / "broken_tasks_for_loading.py"))


def test_result_tree_and_summary_text() -> None:
    results = genja.TaskResults(
        "deploy",
        {
            "r1": TaskSuccessResult(summary="ok [bracket]", changed=True, warnings=("slow",)),
            "r2": TaskFailureResult(message="refused", kind="connection", retryable=True),
            "r3": TaskSkipResult(reason="n/a"),
        },
    )
    console = Console(width=100, record=True, color_system=None)
    console.print(result_tree(results))
    console.print(summary_line(results, 1.25))
    assert console.export_text().splitlines() == [
        "deploy  1 passed, 1 failed, 1 skipped",
        "├── ✓ r1  ok [bracket]  changed",
        "│     warning: slow",
        "├── ✗ r2  connection: refused (retryable)",
        "└── - r3  n/a",
        "3 hosts: 1 passed, 1 failed, 1 skipped in 1.2s",
    ]


def test_the_tree_shows_how_long_each_host_took() -> None:
    started = datetime(2026, 12, 1, tzinfo=timezone.utc)
    results = genja.TaskResults(
        "backup",
        {
            f"r{i}": TaskSuccessResult(
                execution_metadata=ExecutionMetadata(started_at=started, duration=seconds)
            )
            for i, seconds in enumerate((0.0004, 0.0123, 2.5, 184.2))
        },
    )
    console = Console(width=100, record=True, color_system=None)
    console.print(result_tree(results))
    assert console.export_text().splitlines()[1:] == [
        "├── ✓ r0  400µs",
        "├── ✓ r1  12ms",
        "├── ✓ r2  2.50s",
        "└── ✓ r3  3m04s",
    ]


def test_the_tree_shows_retries_and_counts_warnings_as_passed() -> None:
    started = datetime(2026, 12, 1, tzinfo=timezone.utc)
    results = genja.TaskResults(
        "deploy",
        {
            "r1": TaskSuccessResult(
                warnings=("slow",),
                execution_metadata=ExecutionMetadata(started_at=started, duration=1.5, attempts=2),
            ),
            "r2": TaskFailureResult(
                message="busy",
                kind="timeout",
                retryable=True,
                execution_metadata=ExecutionMetadata(
                    started_at=started, duration=3.0, attempts=3, retries_exhausted=True
                ),
            ),
        },
    )
    console = Console(width=100, record=True, color_system=None)
    console.print(result_tree(results))
    console.print(summary_line(results, 4.5))
    assert console.export_text().splitlines() == [
        "deploy  1 passed, 1 failed, 0 skipped",
        "├── ✓ r1  1.50s  2 attempts",
        "│     warning: slow",
        "└── ✗ r2  timeout: busy (retryable)  3.00s  3 attempts  retries exhausted",
        "2 hosts: 1 passed, 1 failed, 0 skipped in 4.5s",
    ]
