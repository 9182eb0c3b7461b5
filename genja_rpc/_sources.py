"""Which modules a task's code needs on an agent, and how each of them travels.

cloudpickle pickles a class or function by value when it comes from `__main__`, and by
reference ("tasks", "Task") when its module is importable here: such a reference is only good
on an agent that imports the same module. For every module a payload refers to by name:

- the standard library, builtins and genja itself travel by name: every agent has them (and
  speaks genja's protocol version, checked when it connects);
- a module installed from a distribution (its file lies in a site-packages or dist-packages
  folder) travels by name, with the distribution's version as a `Requirement` the agent
  checks before the run starts;
- any other module (the user's project: a file beside the script, a package in a checkout, an
  editable install) travels as source, with the project modules it imports (found in its
  source at any depth, absolute or relative), and the agent imports them from that source.

A module's source is read when a class of it is first packed: a file edited after the client
imported it travels as it is on disk then (as `inspect.getsource` would show it).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path

# Never sent as source: the agent runs its own genja, of the same protocol version.
GENJA_PACKAGES = frozenset({"genja", "genja_rpc", "agent"})
_SITE_FOLDERS = frozenset({"site-packages", "dist-packages"})


@dataclass(frozen=True, slots=True)
class ModuleSource:
    """A project module as it travels: see `SourceModule` in the proto."""

    name: str
    source: bytes
    package: bool
    filename: str


@dataclass(frozen=True, slots=True, order=True)
class Requirement:
    distribution: str
    version: str


@dataclass(frozen=True, slots=True)
class CodeNeeds:
    modules: tuple[ModuleSource, ...] = ()
    requirements: tuple[Requirement, ...] = ()


def code_needs(referenced: Iterable[str]) -> CodeNeeds:
    """The project modules to send with a payload that refers to `referenced` modules by name,
    with the project modules they import (transitively), and the distributions the payload
    needs at this version. Imports of installed packages by project modules are not checked:
    only code that itself travels by name must be the same version. A module that cannot be
    found here is left out: the payload fails on the agent as it would here."""
    requirements: set[Requirement] = set()
    pending: list[str] = []
    for name in referenced:
        top = name.partition(".")[0]
        where = _top_level_file(top)
        if where is None:
            continue
        if _in_site_folder(where):
            requirement = _installed(top, where)
            if requirement is not None:
                requirements.add(requirement)
        else:
            pending.append(name)
    modules: dict[str, ModuleSource] = {}
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        parent = name.rpartition(".")[0]
        if parent:
            pending.append(parent)  # importing a.b imports a first
        module = _project_module(name)
        if module is None:
            continue
        modules[name] = module.source
        pending.extend(i for i in module.imports if _is_project(i.partition(".")[0]))
    return CodeNeeds(tuple(modules[name] for name in sorted(modules)), tuple(sorted(requirements)))


def _top_level_file(top: str) -> str | None:
    """Where top-level module or package `top` lives (a namespace package: its first folder);
    None for what travels by name alone: the standard library, builtins, genja, and names
    not found here."""
    if top == "__main__" or top in GENJA_PACKAGES or top in sys.stdlib_module_names:
        return None
    if top in sys.builtin_module_names:
        return None
    spec = _spec(top)
    if spec is None:
        return None
    if spec.has_location and spec.origin:
        return spec.origin
    if spec.submodule_search_locations:  # a namespace package
        return next(iter(spec.submodule_search_locations), None)
    return None  # built in, frozen


def _in_site_folder(where: str) -> bool:
    return not _SITE_FOLDERS.isdisjoint(Path(where).parts)


def _is_project(top: str) -> bool:
    where = _top_level_file(top)
    return where is not None and not _in_site_folder(where)


@dataclass(frozen=True, slots=True)
class _Found:
    source: ModuleSource
    imports: tuple[str, ...]


def _project_module(name: str) -> _Found | None:
    spec = _spec(name)
    if spec is None:
        return None
    package = spec.submodule_search_locations is not None
    if not (spec.has_location and spec.origin):
        if not package:
            return None
        return _Found(ModuleSource(name, b"", True, ""), ())  # a namespace package
    path = spec.origin
    if not path.endswith(".py"):
        return None  # an extension module, or bytecode only: the agent must have it
    try:
        stat = os.stat(path)
        source, imports = _read(path, stat.st_mtime_ns, stat.st_size, name, package)
    except (OSError, SyntaxError, ValueError):
        return None
    return _Found(ModuleSource(name, source, package, path), imports)


def _spec(name: str) -> ModuleSpec | None:
    """Where module `name` is, without importing anything that is not imported yet (a module
    imported lazily by a task need not be importable, or cheap to import, on the client)."""
    module = sys.modules.get(name)
    if module is not None:
        spec: ModuleSpec | None = getattr(module, "__spec__", None)
        return spec
    parent = name.rpartition(".")[0]
    try:
        if not parent:
            return importlib.util.find_spec(name)
        parent_spec = _spec(parent)
        if parent_spec is None or not parent_spec.submodule_search_locations:
            return None  # no such package: `name` is an attribute of a module, not a module
        return PathFinder.find_spec(name, list(parent_spec.submodule_search_locations))
    except Exception:  # a finder that fails: not ours to send
        return None


@functools.lru_cache(maxsize=256)
def _installed(top: str, where: str) -> Requirement | None:
    """The distribution that installed `where` (a module of top-level package `top`)."""
    path = Path(where).resolve()
    for dist_name in _packages_distributions().get(top, ()):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        root = Path(str(dist.locate_file(""))).resolve()
        if path.is_relative_to(root):
            return Requirement(dist.metadata["Name"] or dist_name, dist.version)
    return None


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    """Top-level package names -> distributions; read once per process (it scans every
    installed distribution), and only when a payload names an installed module."""
    return dict(metadata.packages_distributions())


@functools.lru_cache(maxsize=1024)
def _read(
    path: str, mtime_ns: int, size: int, name: str, package: bool
) -> tuple[bytes, tuple[str, ...]]:
    """A module's source and the modules it may import; cached while the file is unchanged."""
    source = Path(path).read_bytes()
    return source, tuple(dict.fromkeys(_imports(ast.parse(source, path), name, package)))


def _imports(tree: ast.AST, name: str, package: bool) -> Iterator[str]:
    """Module names an import statement of `tree` may load, anywhere in it (imports inside
    functions run on the agent too). `from a import b` yields a and a.b: b may be a module."""
    here = name if package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                try:
                    base = importlib.util.resolve_name("." * node.level + base, here)
                except (ImportError, ValueError):
                    continue
            if not base:
                continue
            yield base
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}"
