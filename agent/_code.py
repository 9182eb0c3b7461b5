"""Task code on the agent: blobs cached by content hash, loaded fresh for each run.

A blob is a cloudpickle payload with the client's project modules it needs, as source, and the
installed distributions it needs at the client's version (see `genja_rpc._sources`). Loading
one checks those versions first, then makes its modules importable from their source (a
finder first on `sys.meta_path`: the agent's own disk is never searched for them) and unpickles
the payload, which imports them by name.

Runs whose code has a module of the same name at different sources each get theirs: loading a
blob re-imports every module of it when any of them differs from the one imported last. A
module imported lazily (inside a function, while a task runs) gets the version loaded last.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, cast

from genja_rpc._pb import pb

if TYPE_CHECKING:
    from importlib.abc import Loader


class CodeError(Exception):
    """Task code that cannot be loaded; the message says which and why."""


class _SourceModules:
    """Imports the client's project modules from the source a blob brought.

    A finder and loader by its methods, as importlib accepts: the `importlib.abc` base classes
    add nothing it uses, and importing them (importlib.resources, tempfile, shutil, ...) was a
    noticeable part of an agent's start-up."""

    def __init__(self) -> None:
        self._modules: dict[str, pb.SourceModule] = {}

    def install(self, modules: Sequence[pb.SourceModule]) -> None:
        """Make `modules` what their names import. When one differs from what is imported
        now, all of them are imported anew (from the next import on): they refer to each
        other, so an unchanged module must not keep a changed one's old objects."""
        if all(self._current(module) for module in modules):
            return
        for module in modules:
            self._modules[module.name] = module
        for module in modules:
            sys.modules.pop(module.name, None)

    def _current(self, module: pb.SourceModule) -> bool:
        loaded = sys.modules.get(module.name)
        return self._modules.get(module.name) == module and (
            loaded is None or getattr(loaded.__spec__, "loader", None) is self
        )

    # importlib's finder and loader protocol

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> ModuleSpec | None:
        module = self._modules.get(fullname)
        if module is None:
            return None
        spec = importlib.util.spec_from_loader(
            fullname,
            cast("Loader", self),  # typeshed wants the ABC; importlib needs only the methods
            origin=module.filename or None,
            is_package=module.package,
        )
        assert spec is not None
        spec.loader_state = module
        if module.filename:
            spec.has_location = True  # sets __file__, and tracebacks name the client's file
            if module.package:
                spec.submodule_search_locations = [os.path.dirname(module.filename)]
        return spec

    def create_module(self, spec: ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        source: pb.SourceModule = module.__spec__.loader_state  # type: ignore[union-attr]
        filename = source.filename or f"<genja source of {source.name}>"
        exec(compile(source.source, filename, "exec", dont_inherit=True), module.__dict__)

    def get_source(self, fullname: str) -> str | None:
        """For tracebacks (linecache): the client's file need not exist here."""
        module = self._modules.get(fullname)
        return None if module is None else module.source.decode("utf-8", "replace")


class CodeCache:
    def __init__(self) -> None:
        self._blobs: dict[str, pb.CodeBlob] = {}
        self._checked: set[str] = set()
        self._sources = _SourceModules()
        sys.meta_path.insert(0, self._sources)

    def close(self) -> None:
        """Stop serving the modules blobs brought (at the end of the agent's session)."""
        if self._sources in sys.meta_path:
            sys.meta_path.remove(self._sources)

    def add(self, blob: pb.CodeBlob) -> None:
        # Imported here, not when the agent starts: the agent connects sooner, and the import
        # overlaps with the coordinator sending the run.
        from genja_rpc._code import code_digest

        if code_digest(blob.payload, blob.modules, blob.requirements) != blob.content_hash:
            raise CodeError(f"code blob does not match its hash {blob.content_hash[:12]}")
        self._blobs[blob.content_hash] = blob

    def __contains__(self, content_hash: object) -> bool:
        return content_hash in self._blobs

    def load(self, content_hash: str) -> object:
        """The task class (or instance) a blob holds; unpickled anew for every call, so runs
        never share task instances."""
        blob = self._blobs.get(content_hash)
        if blob is None:
            raise CodeError(f"no code with hash {content_hash[:12]} was sent to this agent")
        if content_hash not in self._checked:
            check_requirements(blob.requirements)
            self._checked.add(content_hash)
        self._sources.install(blob.modules)
        try:
            import cloudpickle

            return cloudpickle.loads(blob.payload)
        # Unpickling runs the task's own code (an instance's __setstate__, the modules that
        # travel with it), which may raise anything, SystemExit included: it fails the run,
        # never the agent.
        except BaseException as error:
            raise CodeError(
                f"cannot load the task code on the agent: {type(error).__name__}: {error}"
            ) from None


def check_requirements(requirements: Sequence[pb.Requirement]) -> None:
    """CodeError naming the first distribution that is missing here or at another version
    than the client's."""
    if not requirements:
        return
    from importlib import metadata  # only code that names distributions needs it

    for requirement in requirements:
        name, wanted = requirement.distribution, requirement.version
        try:
            here = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise CodeError(
                f"the task code needs {name} {wanted} (installed on the client), which is not "
                f"installed on this agent: install {name}=={wanted} here"
            ) from None
        if here != wanted:
            raise CodeError(
                f"the task code needs {name} {wanted} (the client's version), but this agent "
                f"has {name} {here}: install the same version on both"
            )


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
