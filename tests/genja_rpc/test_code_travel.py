"""Packing task code (genja_rpc._code, _sources) and loading it on an agent (agent._code),
in-process: which modules travel as source, which distributions as requirements, and how the
agent's cache serves, replaces and refuses them. The end-to-end runs against remote agents
are in tests/e2e/test_remote_code.py."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import pickle
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from agent._code import CodeCache, CodeError
from genja_rpc._code import code_digest, pack
from genja_rpc._pb import pb

PREFIX = f"gjtravel{os.getpid()}"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A folder on sys.path for modules named PREFIX*; they leave sys.modules afterwards."""
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith(PREFIX)]:
            del sys.modules[name]
        importlib.invalidate_caches()


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name.replace("PKG", f"{PREFIX}pkg").replace("MOD", f"{PREFIX}mod")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).replace("PKG", f"{PREFIX}pkg"), encoding="utf-8")


def test_a_project_class_travels_with_the_project_modules_it_imports(project: Path) -> None:
    _write(
        project,
        {
            "PKG/__init__.py": "",
            "PKG/tasks.py": """
                import json
                import yaml
                from . import helpers
                from .sub.deep import DEEP

                class Task:
                    def start(self):
                        from PKG.late import LATE
                        return helpers.VALUE, DEEP, LATE
            """,
            "PKG/helpers.py": "VALUE = 1\n",
            "PKG/sub/__init__.py": "",
            "PKG/sub/deep.py": "DEEP = 2\n",
            "PKG/late.py": "LATE = 3\n",
            "PKG/unused.py": "NOT_SENT = True\n",
        },
    )
    module = importlib.import_module(f"{PREFIX}pkg.tasks")
    blob = pack(module.Task)
    names = [m.name.removeprefix(PREFIX) for m in blob.modules]
    assert names == ["pkg", "pkg.helpers", "pkg.late", "pkg.sub", "pkg.sub.deep", "pkg.tasks"]
    assert [m.package for m in blob.modules] == [True, False, False, True, False, False]
    assert f"{PREFIX}pkg.late" not in sys.modules  # found, not imported: a task imports it
    tasks = next(m for m in blob.modules if m.name.endswith(".tasks"))
    assert tasks.filename == str(project / f"{PREFIX}pkg" / "tasks.py")
    assert b"from . import helpers" in tasks.source
    # Imports of installed packages by project code are not requirements; genja never travels.
    assert list(blob.requirements) == []
    assert blob.content_hash == code_digest(blob.payload, blob.modules, blob.requirements)


def test_code_of_an_installed_distribution_names_it_at_its_version() -> None:
    blob = pack(yaml.YAMLObject)
    assert list(blob.modules) == []
    assert [(r.distribution, r.version) for r in blob.requirements] == [
        ("PyYAML", importlib.metadata.version("PyYAML"))
    ]
    assert list(pack(pickle.Pickler).requirements) == []  # the standard library


def test_an_edited_helper_is_other_code(project: Path) -> None:
    _write(project, {"MODa.py": f"from {PREFIX}modb import B\nclass A:\n    pass\n"})
    _write(project, {"MODb.py": "B = 1\n"})
    first = pack(importlib.import_module(f"{PREFIX}moda").A)
    _write(project, {"MODb.py": "B = 2  # edited\n"})
    del sys.modules[f"{PREFIX}moda"], sys.modules[f"{PREFIX}modb"]
    second = pack(importlib.import_module(f"{PREFIX}moda").A)
    assert first.payload == second.payload  # a reference to the class, by name
    assert first.content_hash != second.content_hash


# ---------------------------------------------------------------- the agent's side


def _blob(name: str, source: str, *requirements: tuple[str, str]) -> pb.CodeBlob:
    """A blob whose payload names `name`.Task by reference, as cloudpickle would."""
    payload = f"c{name}\nTask\n.".encode()
    modules = [pb.SourceModule(name=name, source=source.encode(), filename=f"/client/{name}.py")]
    wanted = [pb.Requirement(distribution=d, version=v) for d, v in requirements]
    return pb.CodeBlob(
        content_hash=code_digest(payload, modules, wanted),
        payload=payload,
        modules=modules,
        requirements=wanted,
    )


@pytest.fixture
def cache() -> Iterator[CodeCache]:
    code = CodeCache()
    try:
        yield code
    finally:
        code.close()
        for name in [n for n in sys.modules if n.startswith(PREFIX)]:
            del sys.modules[name]


def test_the_agent_imports_modules_from_the_source_they_came_with(cache: CodeCache) -> None:
    name = f"{PREFIX}shipped"
    first = _blob(name, "class Task:\n    VERSION = 1\n")
    cache.add(first)
    assert cache.load(first.content_hash).VERSION == 1  # type: ignore[attr-defined]
    assert sys.modules[name].__file__ == f"/client/{name}.py"
    second = _blob(name, "class Task:\n    VERSION = 2\n")
    cache.add(second)
    assert cache.load(second.content_hash).VERSION == 2  # type: ignore[attr-defined]
    assert cache.load(first.content_hash).VERSION == 1  # type: ignore[attr-defined]
    cache.close()
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"{PREFIX}never_sent")


def test_the_agent_refuses_code_it_cannot_trust_or_run(cache: CodeCache) -> None:
    tampered = _blob(f"{PREFIX}a", "class Task: pass\n")
    tampered.payload += b" "
    with pytest.raises(CodeError, match="does not match its hash"):
        cache.add(tampered)
    version = importlib.metadata.version("PyYAML")
    other = _blob(f"{PREFIX}b", "class Task: pass\n", ("PyYAML", "0.0.1"))
    cache.add(other)
    with pytest.raises(CodeError) as refused:
        cache.load(other.content_hash)
    assert str(refused.value) == (
        "the task code needs PyYAML 0.0.1 (the client's version), but this agent has PyYAML "
        f"{version}: install the same version on both"
    )
    missing = _blob(f"{PREFIX}c", "class Task: pass\n", ("gj-not-installed", "1.0"))
    cache.add(missing)
    with pytest.raises(CodeError, match=r"needs gj-not-installed 1\.0 .* not installed on this"):
        cache.load(missing.content_hash)
    broken = _blob(f"{PREFIX}d", "import gj_nowhere_to_be_found\nclass Task: pass\n")
    cache.add(broken)
    with pytest.raises(CodeError, match="ModuleNotFoundError: No module named 'gj_nowhere"):
        cache.load(broken.content_hash)
