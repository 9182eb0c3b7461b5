"""Finding the task class a `genja run` names: `tasks.py:CollectFacts` or `pkg.module:Class`."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from genja._errors import ConfigurationError
from genja.task._definition import definition_of, is_task


def load_task(spec: str) -> type:
    """The @task class `spec` names. Without `:Class`, the module's only root task (a task
    that is no other task's sub-task) is used.

    A file is imported under its own name with its folder first on `sys.path`: agents inherit
    the client's import path, so they import the same module the same way.
    """
    where, _, attribute = spec.partition(":")
    if not where:
        raise ConfigurationError(f"{spec!r}: name a file or module, like tasks.py:CollectFacts")
    module = _import_file(Path(where)) if _looks_like_file(where) else _import_module(where)
    if attribute:
        target: object = module
        for part in attribute.split("."):
            target = getattr(target, part, None)
            if target is None:
                raise ConfigurationError(
                    f"{where} has no {attribute!r}; its tasks: {_listing(module)}"
                )
        if not (isinstance(target, type) and is_task(target)):
            raise ConfigurationError(f"{where}:{attribute} is not a @task class")
        return target
    roots = _root_tasks(module)
    if len(roots) != 1:
        raise ConfigurationError(
            f"{where} has {len(roots) or 'no'} root tasks; name one, like "
            f"{where}:{roots[0].__name__ if roots else 'CollectFacts'} (tasks: {_listing(module)})"
        )
    return roots[0]


def _looks_like_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or Path(where).is_file()


def _import_file(path: Path) -> ModuleType:
    if path.is_dir():
        raise ConfigurationError(f"{path}: is a folder; name a .py file or a module")
    if not path.is_file():
        raise ConfigurationError(f"{path}: file not found")
    name = path.stem
    if not name.isidentifier():
        raise ConfigurationError(
            f"{path}: the file name must be a Python identifier to be imported (rename it)"
        )
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    loaded = sys.modules.get(name)
    if (
        loaded is not None
        and Path(getattr(loaded, "__file__", "") or "").resolve() == path.resolve()
    ):
        return loaded
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigurationError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except _IMPORT_ERRORS as error:
        del sys.modules[name]
        raise ConfigurationError(f"{path}: importing it failed: {_describe(error)}") from error
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except _IMPORT_ERRORS as error:
        raise ConfigurationError(f"cannot import {name!r}: {_describe(error)}") from error


# What a module may raise while it is imported. `genja run` turns SIGINT into its own
# exception while it runs, so a KeyboardInterrupt here comes from the module's code.
_IMPORT_ERRORS = (Exception, SystemExit, KeyboardInterrupt)


def _describe(error: BaseException) -> str:
    if isinstance(error, SyntaxError):
        return f"line {error.lineno}: {error.msg}" if error.lineno else str(error.msg)
    # The line in the user's code, not in importlib's machinery or here.
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith(("<frozen ", _IMPORTLIB, __file__))
    ]
    where = f" (line {frames[-1].lineno})" if frames else ""
    text = f": {error}" if str(error) else ""
    return f"{type(error).__name__}{text}{where}"


_IMPORTLIB = str(Path(importlib.__file__).parent)


def _tasks(module: ModuleType) -> list[type]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type) and is_task(value) and value.__module__ == module.__name__
    ]


def _root_tasks(module: ModuleType) -> list[type]:
    tasks = _tasks(module)
    children = {sub for cls in tasks for sub in definition_of(cls).sub_tasks}
    return [cls for cls in tasks if cls not in children]


def _listing(module: ModuleType) -> str:
    return ", ".join(cls.__name__ for cls in _tasks(module)) or "none"
