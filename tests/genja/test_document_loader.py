"""The YAML/JSON reader: strict about duplicates, exact about lines, equal to PyYAML's safe
loading otherwise, including when a big file is read in slices."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genja import ConfigurationError
from genja._loader import CHUNK_ENTRIES, load_document, locate_line, parse_yaml

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


# ---------------------------------------------------------------- hostile documents


def _laughs(levels: int = 9, width: int = 10) -> str:
    """The "billion laughs": each level is `width` aliases of the one before."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


_BOUNDED_LOAD = """
import json, resource, sys
from pathlib import Path
# A few hundred MB of address space: far less than any expansion of the bomb would take.
resource.setrlimit(resource.RLIMIT_AS, (768 << 20, 768 << 20))
resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
from genja import ConfigurationError
from genja._loader import load_document
try:
    loaded = load_document(Path(sys.argv[1]))
except ConfigurationError as error:
    print(error)
else:
    print("loaded", len(json.dumps(loaded)))
"""


def _load_bounded(path: Path) -> str:
    """Load `path` in a child process whose memory and CPU time are capped: a loader that
    expanded the document (or handed on something that expands) dies instead of passing."""
    done = subprocess.run(
        [sys.executable, "-c", _BOUNDED_LOAD, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_billion_laughs_fails_fast_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.yaml", _laughs())
    message = _load_bounded(path)
    # Level 5, on line 6, is the first to stand for over a million nodes.
    assert message.startswith(f"{path}: line 6: aliases expand the document past the limit")
    assert "alias bomb" in message


def test_alias_bomb_through_merge_keys_fails(tmp_path: Path) -> None:
    text = "m0: &m0 {" + ", ".join(f"k{i}: v" for i in range(10)) + "}\n"
    for level in range(1, 9):
        text += f"m{level}: &m{level}\n  <<: [" + ", ".join([f"*m{level - 1}"] * 10) + "]\n"
    message = _load_bounded(write(tmp_path, "hosts.yaml", text))
    assert "aliases expand the document past the limit" in message


def test_alias_bomb_inside_another_tag_is_counted_too(tmp_path: Path) -> None:
    text = (
        _laughs(6)
        + "odd: !!omap\n"
        + "".join(
            f"  - k{i}: [*l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5]\n" for i in range(10)
        )
    )
    message = _load_bounded(write(tmp_path, "hosts.yaml", text))
    assert "aliases expand the document past the limit" in message


def test_alias_bomb_in_a_big_sliced_file_fails(tmp_path: Path) -> None:
    padding = "".join(f"r{i}:\n  port: {i}\n" for i in range(3 * CHUNK_ENTRIES))
    message = _load_bounded(write(tmp_path, "hosts.yaml", padding + _laughs()))
    assert f"line {2 * 3 * CHUNK_ENTRIES + 6}: aliases expand" in message


def test_aliases_within_bounds_expand_as_usual() -> None:
    loaded = parse_yaml(_laughs(levels=4))  # 10,000 nodes from 31
    assert len(loaded["l3"]) == 10
    assert loaded["l3"][0] is loaded["l2"]


def test_merged_defaults_in_a_big_inventory_stay_within_bounds() -> None:
    """Real inventories merge a shared block into every host: aliases then add several times
    the nodes the file writes, past the flat floor, which the proportional limit allows."""
    defaults = "".join(f"    k{i}: [a, b, c]\n" for i in range(20))  # ~100 nodes
    hosts = "".join(f"r{i}:\n  <<: *defaults\n  hostname: h{i}\n" for i in range(12_000))
    loaded = parse_yaml(f"defaults: &defaults\n  data:\n{defaults}{hosts}")
    assert loaded["r11999"]["hostname"] == "h11999"
    assert loaded["r11999"]["data"] is loaded["defaults"]["data"]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("data: &a {self: *a}\n", 1),
        ("hosts:\n  r1: &r\n    data:\n      back: *r\n", 4),
        ("list: &l\n  - x\n  - *l\n", 1),  # an alias in a list: the list's line
        ("base: &b\n  x: 1\n  <<: *b\n", 3),
        ("odd: &o !!omap\n  - a: *o\n", 2),
    ],
)
def test_recursive_alias_is_an_error_with_its_line(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path, "hosts.yaml", text)
    with pytest.raises(ConfigurationError) as caught:
        load_document(path)
    assert str(caught.value) == (
        f"{path}: line {line}: an alias inside the value its own anchor names (a recursive alias)"
    )


def test_over_long_key_says_so(tmp_path: Path) -> None:
    for text in ("k" * (1 << 20) + ": 1\n", "r1:\n  " + "k" * 2000 + ": 1\n"):
        path = write(tmp_path, "hosts.yaml", text)
        with pytest.raises(ConfigurationError, match="a key longer than 1024 characters"):
            load_document(path)
    long_but_explicit = "? " + "k" * 2000 + "\n: 1\n"
    assert parse_yaml(long_but_explicit) == {"k" * 2000: 1}
    long_value = "k: " + "v" * 5000 + "\n"
    assert parse_yaml(long_value) == {"k": "v" * 5000}


def test_deep_nesting_and_huge_integers_are_errors(tmp_path: Path) -> None:
    deep = write(tmp_path, "deep.yaml", "x: " + "[" * 500 + "]" * 500 + "\n")
    with pytest.raises(ConfigurationError, match=r"line 1: values nested more than 100 levels"):
        load_document(deep)
    assert parse_yaml("x: " + "[" * 90 + "]" * 90) is not None
    digits = write(tmp_path, "n.yaml", "a: 1\nb: " + "9" * 5000 + "\n")
    with pytest.raises(ConfigurationError, match=r"n\.yaml: line 2: an integer of 5000 digits"):
        load_document(digits)
    json_deep = write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigurationError, match=r"deep\.json: invalid JSON: values nested"):
        load_document(json_deep)
    json_digits = write(tmp_path, "n.json", '{"b": ' + "9" * 5000 + "}")
    with pytest.raises(ConfigurationError, match=r"n\.json: invalid JSON: Exceeds the limit"):
        load_document(json_digits)


def test_merge_keys_follow_the_yaml_spec() -> None:
    text = (
        "a: &a {x: a, y: a}\nb: &b {x: b, z: b}\n"
        "list: {<<: [*a, *b], y: own}\n"  # the first mapping listed wins; explicit keys win
        "two: {<<: *a, w: 1, <<: *b}\n"  # an earlier merge key wins over a later one
    )
    loaded = parse_yaml(text)
    assert loaded["list"] == {"x": "a", "y": "own", "z": "b"}
    assert list(loaded["list"]) == ["x", "y", "z"]
    assert loaded["two"] == {"x": "a", "y": "a", "z": "b", "w": 1}
    with pytest.raises(yaml.YAMLError, match="takes a mapping or a list of mappings"):
        parse_yaml("a: {<<: 1}\n")
