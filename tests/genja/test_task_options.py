"""Run-time options: merged over the declared ones, checked before a run, parsed from the CLI's
`-o` and options files. Pure logic; the runs themselves are in tests/e2e/test_run_options.py."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from genja import ConfigurationError
from genja._cli._options import load_options_file, parse_assignment, run_options
from genja._plan import plan_run
from genja._task_options import merge_options, options_for_run
from genja.task import TaskSuccessResult, task


@task(name="leaf", options={"depth": "leaf"})
class Leaf:
    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        return TaskSuccessResult()


@task(name="backup", options={"path": "/tmp", "ssh": {"port": 22, "user": "x"}}, sub_tasks=[Leaf])
class Backup:
    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        return TaskSuccessResult()


def test_merge_is_key_by_key_at_every_depth() -> None:
    declared = {"path": "/tmp", "ssh": {"port": 22, "user": "x"}, "tags": [1]}
    merged = merge_options(declared, {"ssh": {"port": 2222}, "tags": [2], "new": None})
    assert merged == {"path": "/tmp", "ssh": {"port": 2222, "user": "x"}, "tags": [2], "new": None}
    assert declared["ssh"] == {"port": 22, "user": "x"}  # the declared options are not touched
    assert merge_options(None, {"a": 1}) == {"a": 1}
    assert merge_options({"ssh": {"port": 22}}, {"ssh": "off"}) == {"ssh": "off"}


def test_the_plan_carries_the_root_options_and_leaves_sub_tasks_theirs() -> None:
    plan = plan_run(Backup, 1, {"path": "/x", "ssh": {"port": 2222}, "tags": ("a", "b")})
    assert plan.root.options == {
        "path": "/x",
        "ssh": {"port": 2222, "user": "x"},
        "tags": ["a", "b"],  # as agents decode it, under every runner
    }
    assert plan.root.info().options == plan.root.options
    assert plan.root.children[0].options == {"depth": "leaf"}
    assert plan_run(Backup, 0).root.options is Backup.__genja_task__.options  # type: ignore[attr-defined]
    assert plan_run(Backup, 0, {}).root.options == {
        "path": "/tmp",
        "ssh": {"port": 22, "user": "x"},
    }


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([1, 2], " must be a mapping (a JSON object), got list"),
        ({"when": datetime.date(2026, 1, 1)}, ": key 'when' is a date, not a JSON value"),
        ({"ssh": {"port": float("nan")}}, ": key 'ssh.port' is nan, not a finite number"),
        ({"hosts": ["a", {1: "b"}]}, ": key 'hosts[1]' has the key 1, which is not a string"),
        ({2: "x"}, ": the top level has the key 2, which is not a string"),
        ({"f": print}, ": key 'f' is a builtin_function_or_method, not a JSON value"),
    ],
)
def test_options_that_are_not_json_are_refused_naming_task_and_key(
    given: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        plan_run(Backup, 0, given)
    assert str(caught.value) == f"run-time options of task 'backup'{message}"


def test_no_options_keeps_the_declared_ones() -> None:
    declared = {"a": 1}
    assert options_for_run("t", declared, None) is declared
    assert options_for_run("t", declared, {}) is declared


# ---------------------------------------------------------------- the CLI's -o and files


@pytest.mark.parametrize(
    ("text", "keys", "value"),
    [
        ("path=/backups", ["path"], "/backups"),
        ("keep=7", ["keep"], 7),
        ("ratio=0.5", ["ratio"], 0.5),
        ("flag=true", ["flag"], True),
        ("gone=null", ["gone"], None),
        ("list=[1, 2]", ["list"], [1, 2]),
        ('map={"a": 1}', ["map"], {"a": 1}),
        ('tag="true"', ["tag"], "true"),
        ("mode=Infinity", ["mode"], "Infinity"),
        ("empty=", ["empty"], ""),
        ("expr=a=b", ["expr"], "a=b"),
        ("ssh.port=2222", ["ssh", "port"], 2222),
    ],
)
def test_an_assignment_is_json_when_it_parses_else_a_string(
    text: str, keys: list[str], value: Any
) -> None:
    assert parse_assignment(text) == (keys, value)


@pytest.mark.parametrize("text", ["path", "=3", "a..b=1", ".a=1", "a.=1"])
def test_a_bad_assignment_is_one_clear_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match="expected KEY=VALUE"):
        parse_assignment(text)


def test_later_assignments_go_over_earlier_ones_and_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "options.yaml"
    path.write_text("path: /file\nssh:\n  port: 22\n  user: admin\nkeep: 3\n", encoding="utf-8")
    options = run_options(["keep=7", "ssh.port=2222", "keep=9"], str(path))
    assert options == {"path": "/file", "ssh": {"port": 2222, "user": "admin"}, "keep": 9}
    assert run_options([], None) is None
    with pytest.raises(ConfigurationError, match="'a' is already set to 1, which is not a mapping"):
        run_options(["a=1", "a.b=2"], None)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("o.yaml", "path: /x\nwhen: 2026-01-01\n", "line 2: option 'when' is a date"),
        ("o.yaml", "ssh:\n  port: 22\n  at: 2026-01-01\n", "line 3: option 'ssh.at' is a date"),
        ("o.yaml", "- 1\n- 2\n", "the top level must be a mapping of option names"),
        ("o.yaml", "a: [1\n", "invalid YAML"),
        ("o.yaml", "a: 1\na: 2\n", "line 2: duplicate key 'a'"),
        ("o.json", '{"a": 1,\n "a": 2}', "line 2: duplicate key 'a'"),
        ("o.json", '{"a": }', "line 1: invalid JSON"),
    ],
)
def test_an_options_file_error_names_the_file_and_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_options_file(path)
    assert str(caught.value).startswith(f"{path}:")
    assert message in str(caught.value)


def test_an_empty_or_missing_options_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load_options_file(empty) == {}
    with pytest.raises(ConfigurationError, match="file not found"):
        load_options_file(tmp_path / "missing.yaml")
