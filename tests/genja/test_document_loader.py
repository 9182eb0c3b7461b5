"""The YAML/JSON reader: strict about duplicates, exact about lines, equal to PyYAML's safe
loading otherwise, including when a big file is read in slices."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from genja import ConfigurationError
from genja._loader import load_document, locate_line, parse_yaml

SLICE = 20


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Big-file slicing, exercised on small texts."""
    monkeypatch.setattr("genja._loader.CHUNK_ENTRIES", SLICE)
    monkeypatch.setattr("genja._loader._CHUNK_MIN_CHARS", 0)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_plain_types_match_pyyaml() -> None:
    text = (
        "a: &x {b: 1}\nc: *x\nd: {<<: *x, e: 2}\nf: 2020-01-01\ng: 1.5\nh: 0x1f\ni: ~\n"
        "j: ''\nk: yes\nl: [1, -2, +3]\nm: off\nn: '07'\no: 007\np: !!str 12\nq: null\n"
    )
    assert parse_yaml(text) == yaml.load(text, Loader=yaml.CSafeLoader)
    assert parse_yaml(text)["f"] == datetime.date(2020, 1, 1)


def test_anchored_objects_are_shared_like_pyyaml() -> None:
    loaded = parse_yaml("a: &x {b: 1}\nc: *x\n")
    assert loaded["a"] is loaded["c"]


def test_empty_document_is_none(tmp_path: Path) -> None:
    assert load_document(write(tmp_path, "e.yaml", "")) is None
    assert load_document(write(tmp_path, "c.yaml", "# only a comment\n")) is None
    assert load_document(write(tmp_path, "e.json", "  \n")) is None


def test_duplicate_key_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.yaml", "r1:\n  port: 22\nr2: {}\nr1:\n  port: 23\n")
    with pytest.raises(ConfigurationError, match=r"hosts\.yaml: line 4:.*duplicate key 'r1'"):
        load_document(path)


def test_nested_duplicate_key_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.yaml", "r1:\n  port: 22\n  port: 23\n")
    with pytest.raises(ConfigurationError, match=r"line 3:.*duplicate key 'port'"):
        load_document(path)


@pytest.mark.usefixtures("small_slices")
def test_duplicate_key_across_slices_of_a_big_file(tmp_path: Path) -> None:
    entries = [f"h{i}:\n  port: {i}\n" for i in range(SLICE * 3)]
    entries.append("h5:\n  port: 1\n")  # a repeat far from the first h5
    path = write(tmp_path, "hosts.yaml", "".join(entries))
    line = 2 * SLICE * 3 + 1
    with pytest.raises(ConfigurationError, match=rf"line {line}:.*duplicate key 'h5'"):
        load_document(path)


@pytest.mark.usefixtures("small_slices")
def test_big_file_in_slices_equals_whole_parse() -> None:
    parts = ["# inventory\n", "base: &base {platform: ios, data: {a: 1}}\n"]
    for i in range(SLICE * 3 + 7):
        parts.append(
            f"r{i}:\n  hostname: 10.0.{i // 256}.{i % 256}\n  port: {i}\n"
            f"  groups: [g{i % 3}]\n  data:\n    note: |\n      line one\n      line two\n"
            f"    flag: {'yes' if i % 2 else 'no'}\n"
        )
    parts.append("last:\n  <<: *base\n  port: 1\n")  # an alias across slices: whole parse
    text = "".join(parts)
    assert parse_yaml(text) == yaml.load(text, Loader=yaml.CSafeLoader)
    no_alias = "".join(parts[:1] + parts[2:-1])
    assert parse_yaml(no_alias) == yaml.load(no_alias, Loader=yaml.CSafeLoader)


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.yaml", "r1:\n  port: 22\n  - x\n")
    with pytest.raises(ConfigurationError, match=r"hosts\.yaml: line 3: invalid YAML"):
        load_document(path)


def test_unhashable_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "? [a, b]\n: 1\n")
    with pytest.raises(ConfigurationError, match="unhashable key"):
        load_document(path)


def test_json_duplicate_and_syntax_errors_name_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.json", '{\n  "r1": {},\n  "r2": {},\n  "r1": {}\n}\n')
    with pytest.raises(ConfigurationError, match=r"hosts\.json: line 4: duplicate key 'r1'"):
        load_document(path)
    path = write(tmp_path, "bad.json", '{\n  "r1": {,\n}\n')
    with pytest.raises(ConfigurationError, match=r"bad\.json: line 2: invalid JSON"):
        load_document(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"nope\.yaml: file not found"):
        load_document(tmp_path / "nope.yaml")


def test_locate_line_finds_nested_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "h.yaml", "r1:\n  port: 22\nr2:\n  hostname: x\n  port: 23\n")
    assert locate_line(path, ["r2", "port"]) == 5
    assert locate_line(path, ["r2", "missing"]) == 3
    json_path = write(tmp_path, "h.json", '{\n "r1": {"port": 1},\n "r2": {\n  "port": 2}\n}\n')
    assert locate_line(json_path, ["r2", "port"]) == 4


@pytest.mark.usefixtures("small_slices")
def test_slicing_leaves_other_documents_to_the_whole_parser() -> None:
    many = "".join(f"- item{i}\n" for i in range(SLICE * 3))
    assert parse_yaml(many) == [f"item{i}" for i in range(SLICE * 3)]
    flow = "{" + ", ".join(f"k{i}: {i}" for i in range(SLICE * 3)) + "}\n"
    assert parse_yaml(flow) == {f"k{i}": i for i in range(SLICE * 3)}
    wrapped = "a: {x: 1,\ny: 2}\n" + "".join(f"k{i}: {i}\n" for i in range(SLICE * 3))
    assert parse_yaml(wrapped) == yaml.load(wrapped, Loader=yaml.CSafeLoader)


@pytest.mark.usefixtures("small_slices")
def test_slices_never_change_the_meaning() -> None:
    blocks = [
        "seq:\n- a\n- b\n",
        "quoted: 'one\n  two'\n",
        "literal: |\n  x\n  y\n",
        "flow: {a: 1,\n  b: 2}\n",
        "# a comment\n",
        "anchor: &a {k: v}\nalias: *a\n",
    ]
    text = "".join(
        block.replace("seq:", f"seq{i}:")
        .replace("quoted:", f"quoted{i}:")
        .replace("literal:", f"literal{i}:")
        .replace("flow:", f"flow{i}:")
        .replace("anchor: &a", f"anchor{i}: &a{i}")
        .replace("alias: *a", f"alias{i}: *a{i}")
        for i in range(60)
        for block in blocks
    )
    assert parse_yaml(text) == yaml.load(text, Loader=yaml.CSafeLoader)


def test_merge_keys_may_be_overridden_but_not_repeated(tmp_path: Path) -> None:
    text = "base: &base {port: 22, platform: ios}\nr1:\n  <<: *base\n  port: 2222\n"
    assert parse_yaml(text)["r1"] == {"port": 2222, "platform": "ios"}
    path = write(tmp_path, "h.yaml", "base: &b {a: 1}\nr1:\n  <<: *b\n  x: 1\n  x: 2\n")
    with pytest.raises(ConfigurationError, match=r"line 5: duplicate key 'x'"):
        load_document(path)


@pytest.mark.usefixtures("small_slices")
def test_locate_line_in_a_big_file_reads_only_the_entry(tmp_path: Path) -> None:
    text = "".join(f"r{i}:\n  hostname: h{i}\n  port: {i}\n" for i in range(100))
    path = write(tmp_path, "hosts.yaml", text)
    assert locate_line(path, ["r57", "port"]) == 57 * 3 + 3
    assert locate_line(path, ["r57"]) == 57 * 3 + 1
    assert locate_line(path, ["nope", "port"]) is None
