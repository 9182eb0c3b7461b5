"""Task code for agents: a cloudpickle payload per task class, with the project modules it
needs as source and the installed distributions it needs at the client's version (see
`genja_rpc._sources`), named by a content hash over all of it and packed once per class."""

from __future__ import annotations

import hashlib
import io
import types
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from genja._errors import TaskDefinitionError
from genja._plan import RunPlan, TaskPath
from genja_rpc._pb import pb

if TYPE_CHECKING:
    from genja_rpc._sources import CodeNeeds

_CLASS_CACHE: weakref.WeakKeyDictionary[type, pb.CodeBlob] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class PackedPlan:
    refs: dict[TaskPath, pb.CodeRef] = field(default_factory=dict)
    blobs: dict[str, pb.CodeBlob] = field(default_factory=dict)


class _NamingPickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle, noting the modules of what it pickles by reference (by name)."""

    def __init__(self, file: io.BytesIO, named: set[str]) -> None:
        super().__init__(file)
        self._named = named

    def reducer_override(self, obj: Any) -> Any:
        reduced = super().reducer_override(obj)
        if reduced is NotImplemented:
            if isinstance(obj, types.ModuleType):
                self._named.add(obj.__name__)
            elif isinstance(obj, type | types.FunctionType | types.BuiltinFunctionType):
                module = getattr(obj, "__module__", None)
                if isinstance(module, str):
                    self._named.add(module)
        return reduced


def code_digest(
    payload: bytes,
    modules: Iterable[pb.SourceModule],
    requirements: Iterable[pb.Requirement],
) -> str:
    """The content hash of a CodeBlob: sha256 over its payload, modules and requirements, each
    part length-prefixed so no two different blobs hash alike."""
    digest = hashlib.sha256()

    def part(data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)

    part(payload)
    for module in modules:
        part(module.name)
        part(b"p" if module.package else b"m")
        part(module.filename)
        part(module.source)
    for requirement in requirements:
        part(requirement.distribution)
        part(requirement.version)
    return digest.hexdigest()


def _blob(payload: bytes, needs: CodeNeeds) -> pb.CodeBlob:
    modules = [
        pb.SourceModule(name=m.name, source=m.source, package=m.package, filename=m.filename)
        for m in needs.modules
    ]
    requirements = [
        pb.Requirement(distribution=r.distribution, version=r.version) for r in needs.requirements
    ]
    return pb.CodeBlob(
        content_hash=code_digest(payload, modules, requirements),
        payload=payload,
        modules=modules,
        requirements=requirements,
    )


def pack(target: object) -> pb.CodeBlob:
    """The CodeBlob of a task class (cached per class) or instance."""
    cached = _CLASS_CACHE.get(target) if isinstance(target, type) else None
    if cached is not None:
        return cached
    named: set[str] = set()
    buffer = io.BytesIO()
    try:
        _NamingPickler(buffer, named).dump(target)
    except Exception as error:
        name = target.__qualname__ if isinstance(target, type) else type(target).__qualname__
        raise TaskDefinitionError(
            f"task {name} cannot be sent to agents: pickling failed: {error}"
        ) from error
    # Imported here: only the client packs code. An agent imports this module to check the
    # blobs it receives, and must not pay for finding sources and distributions (ast,
    # importlib.metadata) on its first run.
    from genja_rpc._sources import code_needs

    blob = _blob(buffer.getvalue(), code_needs(named))
    if isinstance(target, type):
        _CLASS_CACHE[target] = blob
    return blob


def pack_plan(plan: RunPlan) -> PackedPlan:
    """Code references for every node of the plan, and the blobs they name."""
    packed = PackedPlan()
    for node in plan.nodes():
        blob = pack(node.target)
        packed.refs[node.path] = pb.CodeRef(content_hash=blob.content_hash)
        packed.blobs[blob.content_hash] = blob
    return packed
