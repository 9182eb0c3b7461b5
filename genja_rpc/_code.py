"""Task code by value: cloudpickle payloads named by their sha256, packed once per class."""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, field

import cloudpickle

from genja._errors import TaskDefinitionError
from genja._plan import RunPlan, TaskPath
from genja_rpc._pb import pb

_CLASS_CACHE: weakref.WeakKeyDictionary[type, tuple[str, bytes]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class PackedPlan:
    refs: dict[TaskPath, pb.CodeRef] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)


def _pickle(target: object) -> tuple[str, bytes]:
    cached = _CLASS_CACHE.get(target) if isinstance(target, type) else None
    if cached is not None:
        return cached
    try:
        payload = cloudpickle.dumps(target)
    except Exception as error:
        name = target.__qualname__ if isinstance(target, type) else type(target).__qualname__
        raise TaskDefinitionError(
            f"task {name} cannot be sent to agents: pickling failed: {error}"
        ) from error
    packed = (hashlib.sha256(payload).hexdigest(), payload)
    if isinstance(target, type):
        _CLASS_CACHE[target] = packed
    return packed


def pack_plan(plan: RunPlan) -> PackedPlan:
    """Code references for every node of the plan, and the payloads they name."""
    packed = PackedPlan()
    for node in plan.nodes():
        digest, payload = _pickle(node.target)
        packed.refs[node.path] = pb.CodeRef(content_hash=digest)
        packed.blobs[digest] = payload
    return packed
