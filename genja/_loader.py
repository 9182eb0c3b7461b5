"""Reading YAML and JSON documents fast, strictly, and with errors that name the file and line.

Inventories reach tens of thousands of hosts, so the YAML path matters: libyaml (through
`yaml.CSafeLoader`) parses and composes the node tree, a lean resolver tags plain scalars, and a
small constructor builds dicts, lists, merge keys and plain scalars directly, handing any other
tag to PyYAML's own safe constructor. Unlike the stock loaders, which silently keep the last of
two equal keys, a duplicate mapping key is an error naming its line.

Hostile or broken documents fail fast with their line, before anything expands them: aliases
that would blow the document up (a "billion laughs"), an alias inside its own anchor, nesting
past MAX_DEPTH, an integer too long to convert, and a key over YAML's 1024 characters.

Line numbers for errors found *after* loading (a wrong type, an unknown field) are looked up
only when such an error happens, by composing the file again (`locate_line`): the happy path
carries no position bookkeeping.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from genja._errors import ConfigurationError

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")


# Aliases let a few lines stand for a huge tree: nine levels of ten aliases ("billion laughs")
# expand to 10^9 nodes. The builder shares one object per anchored node, so loading itself
# stays small, but whatever walks the result later (JSON, protobuf, per-host copies) expands
# it. So aliases may add at most ALIAS_FACTOR times the nodes a document writes (merge keys in
# a big inventory add a few times as many), and always up to ALIAS_FLOOR.
ALIAS_FLOOR = 1_000_000
ALIAS_FACTOR = 50
# Far below what the recursive builder and JSON encoding could take; no inventory comes close.
MAX_DEPTH = 100
# YAML limits a key written as `key: value` (an implicit key) to 1024 characters.
_IMPLICIT_KEY_LIMIT = 1024


class RefusedDocument(yaml.MarkedYAMLError):
    """Valid YAML genja will not load; its message is worded for the user as it stands."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem=problem, problem_mark=mark)

    def place(self, mark: Any) -> None:
        """Give the error the innermost position known (the first one given)."""
        if self.problem_mark is None:
            self.problem_mark = mark


class DuplicateKeyError(RefusedDocument):
    """Two equal keys in one mapping (libyaml itself accepts them)."""


def _resolver_table(loader: Any) -> dict[str, tuple[tuple[str, re.Pattern[str]], ...]]:
    """First character -> the implicit resolvers to try, wildcards included (as PyYAML does)."""
    table = loader.yaml_implicit_resolvers
    wildcard = list(table.get(None, []))
    return {key: tuple(value + wildcard) for key, value in table.items() if key is not None}


class StrictLoader(_BaseLoader):  # type: ignore[misc]
    """The C safe loader with duplicate-key checks and a leaner scalar resolver."""

    _first_char = _resolver_table(_BaseLoader)
    _wildcard: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
        _BaseLoader.yaml_implicit_resolvers.get(None, [])
    )

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        # Called by the parser for every node; the stock version also walks path resolvers,
        # which safe loading never has.
        if kind is ScalarNode:
            if implicit[0]:
                for tag, pattern in self._first_char.get(value[:1], self._wildcard):
                    if pattern.match(value):
                        return tag
            return _STR
        if kind is SequenceNode:
            return _SEQ
        return _MAP

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        # Used for the rare mappings the fast builder hands to PyYAML (merge keys, !!omap...).
        if isinstance(node, MappingNode):
            # Before merge keys are flattened: a key given explicitly legitimately overrides
            # the same key brought in by `<<`.
            _check_duplicates(node)
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


def _check_duplicates(node: MappingNode) -> None:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE:
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise DuplicateKeyError(f"duplicate key {key_node.value!r}", key_node.start_mark)
            seen.add(key)


_RECURSIVE = "an alias inside the value its own anchor names (a recursive alias)"


class _Budget:
    """Nodes a document writes, and nodes its aliases add when expanded (shared by the slices
    of a big file, so slicing never raises the limit)."""

    __slots__ = ("added", "written")

    def __init__(self) -> None:
        self.written = 1  # the root
        self.added = 0

    @property
    def total(self) -> int:
        return self.written + self.added

    def add(self, nodes: int) -> None:
        self.added += nodes
        limit = max(ALIAS_FLOOR, ALIAS_FACTOR * self.written)
        if self.added > limit:
            raise RefusedDocument(
                f"aliases expand the document past the limit ({limit:,} nodes more than it "
                "writes): is it an alias bomb?"
            )


class _Builder:
    """Turns a composed node tree into Python objects; the hot path of inventory loading.

    Anchors give one object per node, as PyYAML does. Along the way it counts what aliases
    would expand to (`_Budget`), refuses an alias inside the value it names (that object
    would contain itself, which nothing after loading can walk), and limits nesting.
    """

    def __init__(self, loader: Any, budget: _Budget) -> None:
        self._loader = loader
        self._budget = budget
        self._done: dict[int, Any] = {}  # node id -> its object (in progress, or built)
        self._sizes: dict[int, int] = {}  # node id -> nodes it expands to, once built
        self._measuring: set[int] = set()
        self._depth = 0

    def build(self, node: Node) -> Any:
        cls = node.__class__
        if cls is ScalarNode:
            tag = node.tag
            value = node.value
            if tag == _STR:
                return value
            if tag == _INT and _PLAIN_INT.match(value):
                try:
                    return int(value)
                except ValueError:  # more digits than Python converts (sys.int_info)
                    problem = f"an integer of {len(value)} digits"
                    raise RefusedDocument(problem, node.start_mark) from None
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return value.lower() in ("yes", "true", "on")
            return self._loader.construct_object(node, deep=True)
        done = self._done.get(id(node))
        if done is not None:
            self._repeat(node)
            return done
        if cls is MappingNode and node.tag == _MAP:
            return self._mapping(node)  # type: ignore[arg-type]
        if cls is SequenceNode and node.tag == _SEQ:
            return self._sequence(node)  # type: ignore[arg-type]
        return self._other(node)

    def _repeat(self, node: Node) -> None:
        """`node` is met again: through an alias."""
        size = self._sizes.get(id(node))
        if size is None:  # still being built
            raise RefusedDocument(_RECURSIVE)
        self._budget.add(size - 1)  # the one node the alias is was counted with its parent

    def _enter(self, node: Node) -> int:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise RefusedDocument(f"values nested more than {MAX_DEPTH} levels deep")
        budget = self._budget
        before = budget.total
        budget.written += len(node.value) * (2 if node.__class__ is MappingNode else 1)
        return before

    def _leave(self, node: Node, before: int) -> None:
        self._depth -= 1
        self._sizes[id(node)] = self._budget.total - before + 1

    def _sequence(self, node: SequenceNode) -> list[Any]:
        items: list[Any] = []
        self._done[id(node)] = items
        before = self._enter(node)
        try:
            items.extend([self.build(child) for child in node.value])
        except RefusedDocument as error:
            error.place(node.start_mark)
            raise
        self._leave(node, before)
        return items

    def _mapping(self, node: MappingNode) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        self._done[id(node)] = result
        before = self._enter(node)
        build = self.build
        merged: list[dict[Any, Any]] | None = None
        key_node: Node = node
        try:
            for key_node, value_node in node.value:
                tag = key_node.tag
                if tag == _STR:
                    key = key_node.value
                elif tag == _MERGE:
                    merged = [*(merged or ()), *self._merge_sources(node, value_node)]
                    continue
                else:
                    key = build(key_node)
                try:
                    duplicate = key in result
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        "found unhashable key",
                        key_node.start_mark,
                    ) from None
                if duplicate:
                    raise DuplicateKeyError(f"duplicate key {key!r}", key_node.start_mark)
                result[key] = build(value_node)
        except RefusedDocument as error:
            error.place(key_node.start_mark)
            raise
        if merged:
            _merge(result, merged)
        self._leave(node, before)
        return result

    def _merge_sources(self, node: MappingNode, value_node: Node) -> list[dict[Any, Any]]:
        """The mappings a `<<` brings, in the order listed."""
        if isinstance(value_node, SequenceNode):
            self._budget.written += len(value_node.value)
            return [self._merge_source(node, item) for item in value_node.value]
        return [self._merge_source(node, value_node)]

    def _merge_source(self, node: MappingNode, value_node: Node) -> dict[Any, Any]:
        value = self.build(value_node) if isinstance(value_node, MappingNode) else None
        if not isinstance(value, dict):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "a merge key (<<) takes a mapping or a list of mappings",
                value_node.start_mark,
            )
        return value

    def _other(self, node: Node) -> Any:
        """A collection with another tag (!!set, !!omap...): PyYAML builds it, once counted."""
        self._measure(node)
        value = self._loader.construct_object(node, deep=True)
        self._done[id(node)] = value
        return value

    def _measure(self, node: Node) -> None:
        if not isinstance(node, (MappingNode, SequenceNode)):
            return
        key = id(node)
        if key in self._sizes:
            self._budget.add(self._sizes[key] - 1)
            return
        if key in self._done or key in self._measuring:
            raise RefusedDocument(_RECURSIVE)
        self._measuring.add(key)
        before = self._enter(node)
        children = (
            [child for pair in node.value for child in pair]
            if isinstance(node, MappingNode)
            else node.value
        )
        try:
            for child in children:
                self._measure(child)
        except RefusedDocument as error:
            error.place(node.start_mark)
            raise
        self._leave(node, before)
        self._measuring.discard(key)


def _merge(result: dict[Any, Any], sources: Sequence[dict[Any, Any]]) -> None:
    """Merge keys as the YAML spec has them: explicit keys beat merged ones, and a mapping
    merged earlier beats one merged later. Merged keys come first, as PyYAML orders them."""
    combined: dict[Any, Any] = {}
    for source in sources:
        for key, value in source.items():
            if key not in combined:
                combined[key] = value
    combined.update(result)
    result.clear()
    result.update(combined)


def _parse_whole(text: str, budget: _Budget | None = None) -> Any:
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _Builder(loader, budget or _Budget()).build(node)
    finally:
        loader.dispose()


# A line that starts in column 0 with anything but a comment or a sequence dash (a mapping's
# value may be a block sequence at column 0): in a top-level block mapping, the next key.
_TOP_LEVEL_LINE = re.compile(r"^[^\s#-]", re.MULTILINE)
CHUNK_ENTRIES = 2000
_CHUNK_MIN_CHARS = 256 * 1024


def _parse_chunked(text: str) -> Any:
    """A big top-level mapping parsed a few thousand entries at a time.

    libyaml composes a whole document into nodes before anything is built, so one 50,000-host
    file would hold ~1M node objects at once; slices of top-level entries keep that small.
    Anything this cannot do exactly (the document is not one block mapping, an alias crosses a
    slice, a key repeats across slices, any syntax error) returns _NOT_CHUNKED and the caller
    parses the whole text, which gives the exact result or the exact error.
    """
    if text.startswith(("%", "---", "-", "[", "{")) or "\n---" in text or "\n..." in text:
        return _NOT_CHUNKED
    starts = [match.start() for match in _TOP_LEVEL_LINE.finditer(text)]
    if len(starts) <= CHUNK_ENTRIES:
        return _NOT_CHUNKED
    cuts = [*starts[CHUNK_ENTRIES::CHUNK_ENTRIES], len(text)]
    result: dict[Any, Any] = {}
    budget = _Budget()
    begin = 0
    try:
        for end in cuts:
            part = _parse_whole(text[begin:end], budget)
            begin = end
            if part is None:
                continue
            if not isinstance(part, dict):
                return _NOT_CHUNKED
            size = len(result)
            result.update(part)
            if len(result) != size + len(part):  # a key repeated across slices
                return _NOT_CHUNKED
    except yaml.YAMLError:
        return _NOT_CHUNKED
    return result


_NOT_CHUNKED = object()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cycle collector while loading: a load allocates millions of objects and frees
    almost none, so the collector would walk the ever larger heap again and again for nothing
    (half the load time of a big inventory, more in a process that already holds much)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def parse_yaml(text: str) -> Any:
    """One YAML document as Python objects (None for an empty document)."""
    with collector_paused():
        if len(text) >= _CHUNK_MIN_CHARS:
            result = _parse_chunked(text)
            if result is not _NOT_CHUNKED:
                return result
        return _parse_whole(text)


# What is read from a pipe or a device (`-s <(make-settings)`, /dev/null) at most: /dev/zero
# would otherwise be read until memory runs out.
_STREAM_LIMIT = 64 << 20


def read_text(path: Path) -> str:
    try:
        with path.open(encoding="utf-8") as handle:
            if stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return handle.read()
            text = handle.read(_STREAM_LIMIT + 1)
            if len(text) > _STREAM_LIMIT:
                raise ConfigurationError(
                    f"{path}: not a regular file, and more than {_STREAM_LIMIT >> 20} MiB came "
                    "from it"
                )
            return text
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{path}: is a folder, not a file") from None
    except UnicodeDecodeError as error:
        raise ConfigurationError(f"{path}: not UTF-8 text: {error.reason}") from None
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot read: {error.strerror}") from None


def _reject_duplicates(path: Path, text: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                line = _json_key_line(text, key)
                where = f" line {line}:" if line else ""
                raise ConfigurationError(f"{path}:{where} duplicate key {key!r}")
            result[key] = value
        return result

    return hook


def _json_key_line(text: str, key: str) -> int | None:
    """The line of the second occurrence of `"key":` (JSON's parser reports no positions)."""
    matches = list(re.finditer(re.escape(json.dumps(key)) + r"\s*:", text))
    if len(matches) < 2:
        return None
    return text.count("\n", 0, matches[1].start()) + 1


def load_document(path: Path) -> Any:
    """Parse a YAML or JSON file (by suffix; YAML otherwise). An empty file is None.

    Every error is a ConfigurationError naming the file and, where known, the line.
    """
    text = read_text(path)
    if path.suffix.lower() == ".json":
        if not text.strip():
            return None
        try:
            return json.loads(text, object_pairs_hook=_reject_duplicates(path, text))
        except json.JSONDecodeError as error:
            raise ConfigurationError(
                f"{path}: line {error.lineno}: invalid JSON: {error.msg}"
            ) from None
        except ValueError as error:  # an integer with more digits than Python converts
            raise ConfigurationError(f"{path}: invalid JSON: {error}") from None
        except RecursionError:
            raise ConfigurationError(f"{path}: invalid JSON: values nested too deeply") from None
    try:
        return parse_yaml(text)
    except yaml.reader.ReaderError as error:  # a character YAML does not allow; no mark
        number = text.count("\n", 0, error.position) + 1
        character = error.character  # an int from libyaml, a str from PyYAML's reader
        code = character if isinstance(character, int) else ord(character)
        raise ConfigurationError(
            f"{path}: line {number}: invalid YAML: character {code:#06x}: {error.reason}"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        if mark is not None and _long_key_at(text, mark.line, mark.column):
            problem = (
                f"a key longer than {_IMPLICIT_KEY_LIMIT} characters: YAML allows no longer "
                "one before `: value` (write it as `? key`, then `: value` on the next line)"
            )
        elif not isinstance(error, RefusedDocument):
            problem = f"invalid YAML: {problem}"
        raise ConfigurationError(f"{path}:{line} {problem}") from None


def _long_key_at(text: str, line: int, column: int) -> bool:
    """libyaml gives up on an implicit key after 1024 characters with an error about what it
    met next, the key's `:`; this tells that case from a real syntax error."""
    if column <= _IMPLICIT_KEY_LIMIT:
        return False
    start = 0
    for _ in range(line):
        start = text.find("\n", start) + 1
        if start == 0:
            return False
    return text[start + column : start + column + 1] == ":"


def locate_line(path: Path, keys: Sequence[str]) -> int | None:
    """The 1-based line of the value at `keys` (mapping keys from the top), or of the deepest
    key found on the way; None when the file is JSON or cannot be composed.

    Only used to word an error, so its cost is paid only when something is wrong.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if path.suffix.lower() == ".json":
        return _json_path_line(text, keys)
    if keys and len(text) >= _CHUNK_MIN_CHARS:
        # In a big file, compose only the entry's own lines (when they can be told apart).
        entry = _top_level_entry(text, keys[0])
        if entry is not None:
            found = _locate_in(entry[1], keys)
            if found is not None:
                return found + entry[0]
    return _locate_in(text, keys)


def _top_level_entry(text: str, key: str) -> tuple[int, str] | None:
    """(lines before it, its text) of the top-level entry `key`, if it starts a line."""
    pattern = re.compile(
        rf"^(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')[ \t]*:", re.MULTILINE
    )
    match = pattern.search(text)
    if match is None:
        return None
    following = _TOP_LEVEL_LINE.search(text, match.end())
    end = following.start() if following is not None else len(text)
    return text.count("\n", 0, match.start()), text[match.start() : end]


def _locate_in(text: str, keys: Sequence[str]) -> int | None:
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    line = None
    for key in keys:
        if not isinstance(node, MappingNode):
            break
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                line = key_node.start_mark.line + 1
                node = value_node
                break
        else:
            break
    return line


def _json_path_line(text: str, keys: Sequence[str]) -> int | None:
    """Best effort for JSON: the first `"key":` of the last key after the previous ones."""
    position = 0
    line = None
    for key in keys:
        match = re.compile(re.escape(json.dumps(key)) + r"\s*:").search(text, position)
        if match is None:
            break
        position = match.end()
        line = text.count("\n", 0, match.start()) + 1
    return line
