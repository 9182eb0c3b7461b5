"""The @task decorator and the frozen metadata it attaches to a task class.

The decorator validates the class once, when it is defined, and stores a `TaskDefinition` on it
as `__genja_task__`. There is no registry: a task tree is reached from its root class.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from genja._errors import TaskDefinitionError
from genja.task._idempotency import IdempotencyMode
from genja.task._retry import RetryConfig
from genja.task._session import SessionVerificationConfig

_ATTRIBUTE = "__genja_task__"

T = TypeVar("T", bound=type)


@dataclass(frozen=True, slots=True)
class TaskDefinition:
    """What @task recorded about a task class."""

    name: str
    task_class: type
    is_async: bool
    connection_plugin_name: str | None = None
    processors: tuple[str, ...] = ()
    sub_tasks: tuple[type, ...] = ()
    options: Any = None
    retry: RetryConfig | None = None
    supports_dry_run: bool = False
    idempotency: IdempotencyMode = IdempotencyMode.DISABLED
    session_verification: SessionVerificationConfig | None = None

    @property
    def sub_task_definitions(self) -> tuple[TaskDefinition, ...]:
        return tuple(definition_of(sub) for sub in self.sub_tasks)

    @classmethod
    def from_python_class(cls, task_class: type) -> TaskDefinition:
        """The definition @task recorded on `task_class` (Genja 0.4's spelling of
        `definition_of`); TaskDefinitionError when it is not a @task class."""
        if not isinstance(task_class, type):
            raise TaskDefinitionError(
                f"TaskDefinition.from_python_class takes a @task class, got {_describe(task_class)}"
            )
        return definition_of(task_class)


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """The task metadata a task receives: its definition, not the host or the run."""

    name: str
    options: Any = None
    processors: tuple[str, ...] = ()
    connection_plugin_name: str | None = None
    sub_tasks: tuple[TaskInfo, ...] = field(default=())
    retry: RetryConfig | None = None
    supports_dry_run: bool = False
    idempotency: IdempotencyMode = IdempotencyMode.DISABLED
    session_verification: SessionVerificationConfig | None = None

    @classmethod
    def from_definition(cls, definition: TaskDefinition) -> TaskInfo:
        return cls(
            name=definition.name,
            options=definition.options,
            processors=definition.processors,
            connection_plugin_name=definition.connection_plugin_name,
            sub_tasks=tuple(cls.from_definition(d) for d in definition.sub_task_definitions),
            retry=definition.retry,
            supports_dry_run=definition.supports_dry_run,
            idempotency=definition.idempotency,
            session_verification=definition.session_verification,
        )


def is_task(obj: object) -> bool:
    """Whether `obj` is a @task class or an instance of one."""
    cls = obj if isinstance(obj, type) else type(obj)
    return _ATTRIBUTE in vars(cls)


def definition_of(obj: object) -> TaskDefinition:
    """The definition of a @task class (or of an instance of one); TaskDefinitionError if none."""
    cls = obj if isinstance(obj, type) else type(obj)
    definition = vars(cls).get(_ATTRIBUTE)
    if not isinstance(definition, TaskDefinition):
        raise TaskDefinitionError(
            f"{_describe(obj)} is not a task: decorate its class with @task(name=...)"
        )
    return definition


def task(
    name: str | None = None,
    *,
    connection_plugin_name: str | None = None,
    processors: Iterable[str] = (),
    sub_tasks: Iterable[type] = (),
    options: Any = None,
    retry: RetryConfig | None = None,
    supports_dry_run: bool = False,
    idempotency: IdempotencyMode = IdempotencyMode.DISABLED,
    session_verification: SessionVerificationConfig | None = None,
) -> Callable[[T], T]:
    """Declare a task class.

    The class defines exactly one entry point: `start(self, task, host, context)` for blocking
    work (run in an agent's thread pool) or `async start_async(self, task, host, context)` (run
    on an agent's event loop). `name` defaults to the class name (and may be given by
    position, `@task("backup")`, as Genja 0.4 allows); `options` must be
    JSON-serializable; `sub_tasks` are @task classes run after this one for the same host;
    `retry` overrides the runner's retry defaults for this task (see `RetryConfig`).

    `supports_dry_run=True` declares a dry-run entry point, `dry_run(...)` (or
    `async dry_run_async(...)` beside `start_async`), called instead of `start` in a dry run
    (`TaskRunOptions(dry_run=True)`). `idempotency` asks the runtime to call the task's
    `check(...)` (or `async check_async(...)`) around `start` (see `IdempotencyMode`).
    `session_verification` logs in anew after a change (see `SessionVerificationConfig`); it
    needs a `connection_plugin_name`. These methods take the same arguments as `start`.
    """
    if isinstance(name, type):  # `@task` without its parentheses
        raise TaskDefinitionError(
            f"{_describe(name)}: write @task(...) with parentheses, e.g. @task(name=...)"
        )

    def decorate(cls: T) -> T:
        if not isinstance(cls, type):
            raise TaskDefinitionError(f"@task decorates classes, not {_describe(cls)}")
        task_name = cls.__name__ if name is None else name
        where = f"task class {cls.__qualname__}"
        if not _is_name(task_name):
            raise TaskDefinitionError(f"{where}: name must be a non-blank string, got {name!r}")
        is_async = _check_entry_point(cls, where)
        if connection_plugin_name is not None and not _is_name(connection_plugin_name):
            raise TaskDefinitionError(
                f"{where}: connection_plugin_name must be a non-blank string (or None), "
                f"got {connection_plugin_name!r}"
            )
        processor_names = _check_processors(processors, where)
        children = _check_sub_tasks(sub_tasks, where)
        _check_options(options, where)
        if retry is not None and not isinstance(retry, RetryConfig):
            raise TaskDefinitionError(
                f"{where}: retry must be a RetryConfig (or None), got {_describe(retry)}"
            )
        _check_policies(
            cls,
            where,
            is_async,
            supports_dry_run=supports_dry_run,
            idempotency=idempotency,
            session_verification=session_verification,
            connection_plugin_name=connection_plugin_name,
        )
        definition = TaskDefinition(
            name=task_name,
            task_class=cls,
            is_async=is_async,
            connection_plugin_name=connection_plugin_name,
            processors=processor_names,
            sub_tasks=children,
            options=options,
            retry=retry,
            supports_dry_run=supports_dry_run,
            idempotency=idempotency,
            session_verification=session_verification,
        )
        setattr(cls, _ATTRIBUTE, definition)
        return cls

    return decorate


def _is_name(value: object) -> bool:
    """A name shown in results and looked up by plugins: a string with something in it."""
    return isinstance(value, str) and bool(value.strip())


def _check_entry_point(cls: type, where: str) -> bool:
    start = getattr(cls, "start", None)
    start_async = getattr(cls, "start_async", None)
    if start is not None and start_async is not None:
        raise TaskDefinitionError(f"{where} defines both start and start_async; define exactly one")
    if start is None and start_async is None:
        raise TaskDefinitionError(f"{where} defines neither start nor start_async; define one")
    if start is not None:
        if not callable(start):
            raise TaskDefinitionError(f"{where}: start must be a method")
        if inspect.iscoroutinefunction(start):
            raise TaskDefinitionError(
                f"{where}: start is async; name it start_async, or make it a plain def"
            )
        return False
    if not inspect.iscoroutinefunction(start_async):
        raise TaskDefinitionError(f"{where}: start_async must be defined with 'async def'")
    return True


_METHOD_ARGUMENTS = "self, task, host, context"


def _check_policies(
    cls: type,
    where: str,
    is_async: bool,
    *,
    supports_dry_run: object,
    idempotency: object,
    session_verification: object,
    connection_plugin_name: str | None,
) -> None:
    """The dry-run, idempotency and session verification declarations, and the methods they
    need (worded as Genja 0.4 words them)."""
    if not isinstance(supports_dry_run, bool):
        raise TaskDefinitionError(f"{where}: supports_dry_run must be True or False")
    if not isinstance(idempotency, IdempotencyMode):
        raise TaskDefinitionError(
            f"{where}: idempotency must be an IdempotencyMode, got {_describe(idempotency)}"
        )
    if session_verification is not None:
        if not isinstance(session_verification, SessionVerificationConfig):
            raise TaskDefinitionError(
                f"{where}: session_verification must be a SessionVerificationConfig (or None), "
                f"got {_describe(session_verification)}"
            )
        if connection_plugin_name is None:
            raise TaskDefinitionError(
                f"{where}: session_verification requires connection_plugin_name (there is no "
                "session to verify without one)"
            )
    if supports_dry_run:
        _check_method(cls, where, is_async, "dry_run", _DRY_RUN_WORDS)
    if idempotency is not IdempotencyMode.DISABLED:
        _check_method(cls, where, is_async, "check", _CHECK_WORDS)


# (what declares the method, what the method is, what it is short): Genja 0.4's wording.
_DRY_RUN_WORDS = ("with supports_dry_run=True", "a dry-run method", "dry-run support")
_CHECK_WORDS = ("with idempotency enabled", "an idempotency check method", "idempotency support")


def _check_method(
    cls: type, where: str, is_async: bool, base: str, words: tuple[str, str, str]
) -> None:
    """The `base` method a declaration needs: `base_async` (a coroutine function) beside
    `start_async`, `base` (a plain one) beside `start`."""
    declared, method_kind, support = words
    kind = "an async" if is_async else "a sync"
    wanted, other = (f"{base}_async", base) if is_async else (base, f"{base}_async")
    method = getattr(cls, wanted, None)
    if method is None:
        if getattr(cls, other, None) is not None:
            raise TaskDefinitionError(
                f"{where} is {kind} task, so {support} requires {method_kind} named "
                f"'{wanted}({_METHOD_ARGUMENTS})', not '{other}'"
            )
        raise TaskDefinitionError(
            f"{where} is {kind} task {declared}, so it must define {method_kind} named "
            f"'{wanted}({_METHOD_ARGUMENTS})'"
        )
    if not callable(method):
        raise TaskDefinitionError(f"{where}: {wanted} must be a method")
    if inspect.iscoroutinefunction(method) != is_async:
        how = "with 'async def'" if is_async else "as a plain 'def' (it is not async)"
        raise TaskDefinitionError(f"{where}: {wanted} must be defined {how}")


def _check_processors(processors: Iterable[str], where: str) -> tuple[str, ...]:
    if isinstance(processors, str):
        raise TaskDefinitionError(f"{where}: processors must be a list of names, not a string")
    names = tuple(processors)
    for item in names:
        if not _is_name(item):
            raise TaskDefinitionError(
                f"{where}: processor names must be non-blank strings, got {item!r}"
            )
    return names


def _check_sub_tasks(sub_tasks: Iterable[type], where: str) -> tuple[type, ...]:
    children = tuple(sub_tasks)
    seen: dict[str, type] = {}
    for child in children:
        if not isinstance(child, type) or not is_task(child):
            raise TaskDefinitionError(
                f"{where}: sub_tasks must be @task classes, got {_describe(child)}"
            )
        child_name = definition_of(child).name
        if child_name in seen:
            raise TaskDefinitionError(
                f"{where}: two sub-tasks are named {child_name!r}; sub-task names must be unique "
                "among siblings because results are keyed by name"
            )
        seen[child_name] = child
    return children


def _check_options(options: Any, where: str) -> None:
    if options is not None and not isinstance(options, Mapping):
        raise TaskDefinitionError(f"{where}: options must be a mapping (a JSON object)")
    try:
        json.dumps(options)
    except (TypeError, ValueError) as error:
        raise TaskDefinitionError(f"{where}: options are not JSON-serializable: {error}") from None


def _describe(obj: object) -> str:
    if isinstance(obj, type):
        return f"class {obj.__qualname__}"
    return f"{type(obj).__name__} {obj!r}"[:120]
