"""Task code on the agent: payloads cached by content hash, loaded fresh for each run."""

from __future__ import annotations

import hashlib
import importlib

import cloudpickle


class CodeError(Exception):
    """Task code that cannot be loaded; the message says which and why."""


class CodeCache:
    def __init__(self) -> None:
        self._payloads: dict[str, bytes] = {}

    def add(self, content_hash: str, payload: bytes) -> None:
        if hashlib.sha256(payload).hexdigest() != content_hash:
            raise CodeError(f"code payload does not match its hash {content_hash[:12]}")
        self._payloads[content_hash] = payload

    def __contains__(self, content_hash: object) -> bool:
        return content_hash in self._payloads

    def load(self, content_hash: str) -> object:
        """The task class (or instance) a payload holds; unpickled anew for every call, so runs
        never share task instances."""
        try:
            payload = self._payloads[content_hash]
        except KeyError:
            raise CodeError(
                f"no code with hash {content_hash[:12]} was sent to this agent"
            ) from None
        try:
            return cloudpickle.loads(payload)
        # Unpickling runs the task's own code (an instance's __setstate__), which may raise
        # anything, SystemExit included: it fails the run, never the agent.
        except BaseException as error:
            raise CodeError(
                f"cannot load the task code on the agent: {type(error).__name__}: {error}"
            ) from None


def import_task(path: str) -> object:
    """A task class named "package.module:ClassName"."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise CodeError(f"import path {path!r} must look like 'package.module:ClassName'")
    try:
        target: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise CodeError(f"cannot import task {path!r} on the agent: {error}") from None
    except BaseException as error:  # the module's own code failed (SystemExit included)
        raise CodeError(
            f"cannot import task {path!r} on the agent: {type(error).__name__}: {error}"
        ) from None
    return target
