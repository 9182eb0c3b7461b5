"""Containment in the host pipeline: whatever a task raises or returns, whatever its
connection plugin raises, becomes that host's failure with a one-line message; only our own
cancellation, and in the client process the user's Ctrl-C, go on up."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
from collections.abc import Mapping
from typing import Any

import pytest

import genja
from agent._pipeline import (
    ExecNode,
    HostPipeline,
    NodeCall,
    PolicySteps,
    TaskLoadError,
    check,
    instantiate,
    tree_from_plan,
)
from genja._plan import plan_run
from genja.task import (
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskSuccessResult,
    task,
)

RAISED: list[BaseException] = []  # what the tasks below raise, one per test


@task(name="raises")
class Raises:
    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        raise RAISED[0]


@task(name="raises_async")
class RaisesAsync:
    async def start_async(self, task, host, context):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        raise RAISED[0]


RETURNED: list[Any] = []  # what the tasks below return


@task(name="returns")
class Returns:
    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        return RETURNED[0]


@task(name="returns_async")
class ReturnsAsync:
    async def start_async(self, task, host, context):  # type: ignore[no-untyped-def]
        return RETURNED[0]


def _pipeline(task_class: type, **kw: Any) -> HostPipeline:
    kw.setdefault("connect", lambda node, host: None)
    return HostPipeline(tree_from_plan(plan_run(task_class, 0)), **kw)


def _run(pipeline: HostPipeline, host: genja.Host | None = None) -> HostTaskResult:
    host = host or genja.Host(id="r1")
    reported: list[HostTaskResult] = []
    if pipeline.blocking_only:
        pipeline.run_blocking(host, lambda i, result, *_: reported.append(result))
    else:
        asyncio.run(pipeline.run_async(host, lambda i, result, *_: reported.append(result)))
    (result,) = reported
    return result


def _needs_cancelling() -> None:
    """A task's own CancelledError is told from ours by Task.cancelling(), new in 3.11."""
    if sys.version_info < (3, 11):
        pytest.skip("Python 3.10 takes every CancelledError on the loop for our own")


def _failure(result: HostTaskResult) -> TaskFailureResult:
    assert isinstance(result, TaskFailureResult), result
    assert "\n" not in result.message
    return result


RAISES = pytest.mark.parametrize(
    "error",
    [
        KeyboardInterrupt("ki"),
        SystemExit("se"),
        GeneratorExit("ge"),
        asyncio.CancelledError("ce"),
        RecursionError("re"),
        MemoryError("me"),
    ],
    ids=lambda e: type(e).__name__,
)
ENTRY_POINTS = pytest.mark.parametrize(
    "task_class", [Raises, RaisesAsync], ids=["start", "start_async"]
)


@RAISES
@ENTRY_POINTS
@pytest.mark.parametrize("task_timeout", [None, 30.0], ids=["no-timeout", "task_timeout"])
def test_whatever_a_task_raises_fails_its_host(
    task_class: type,
    error: BaseException,
    task_timeout: float | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With a task_timeout, the call runs in a task of its own (asyncio.wait_for) or in a
    thread: the same containment holds there."""
    if isinstance(error, asyncio.CancelledError) and task_class is RaisesAsync:
        _needs_cancelling()
    RAISED[:] = [error]
    name = type(error).__name__
    with concurrent.futures.ThreadPoolExecutor(1) as threads:
        pipeline = _pipeline(task_class, task_timeout=task_timeout, threads=threads)
        failure = _failure(_run(pipeline))
    task_name = "raises_async" if task_class is RaisesAsync else "raises"
    assert failure.kind is TaskFailureKind.INTERNAL
    assert failure.message == f"task {task_name!r} raised {name}: {error}"
    assert failure.details["exception_type"].endswith(name)
    assert not caplog.records  # the traceback is for debug logging only


@ENTRY_POINTS
def test_the_traceback_is_logged_at_debug_level(
    task_class: type, caplog: pytest.LogCaptureFixture
) -> None:
    RAISED[:] = [SystemExit("bye")]
    with caplog.at_level(logging.DEBUG, logger="genja.agent"):
        _run(_pipeline(task_class))
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG
    assert "Traceback" in record.getMessage()
    assert "SystemExit: bye" in record.getMessage()


def test_a_keyboard_interrupt_on_the_callers_main_thread_stops_the_run() -> None:
    """In the client process (`caller_interrupts`), Ctrl-C lands on the main thread: there a
    KeyboardInterrupt is the user's; on any other thread it is the task's."""
    RAISED[:] = [KeyboardInterrupt()]
    with pytest.raises(KeyboardInterrupt):
        _run(_pipeline(Raises, caller_interrupts=True))
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        result = thread.submit(_run, _pipeline(Raises, caller_interrupts=True)).result()
    assert _failure(result).kind is TaskFailureKind.INTERNAL
    RAISED[:] = [SystemExit()]  # a task's mistake wherever it runs
    assert _failure(_run(_pipeline(Raises, caller_interrupts=True))).message.startswith(
        "task 'raises' raised SystemExit"
    )


def test_our_own_cancellation_of_a_coroutine_goes_on_up() -> None:
    started = asyncio.Event()

    @task(name="sleeps")
    class Sleeps:
        async def start_async(self, task, host, context):  # type: ignore[no-untyped-def]
            started.set()
            await asyncio.sleep(3600)

    reported: list[HostTaskResult] = []

    async def go() -> None:
        running = asyncio.create_task(
            _pipeline(Sleeps).run_async(genja.Host(id="r1"), lambda i, r, *_: reported.append(r))
        )
        await started.wait()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(go())
    assert reported == []


@task(name="connects", connection_plugin_name="ssh")
class Connects:
    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        return TaskSuccessResult()


@task(name="connects_async", connection_plugin_name="ssh")
class ConnectsAsync:
    async def start_async(self, task, host, context):  # type: ignore[no-untyped-def]
        return TaskSuccessResult()


@pytest.mark.parametrize("connect_error", [SystemExit("plugin"), KeyboardInterrupt("plugin")])
@pytest.mark.parametrize("task_class", [Connects, ConnectsAsync], ids=["start", "start_async"])
def test_what_opening_a_connection_raises_fails_the_host(
    task_class: type, connect_error: BaseException
) -> None:
    def connect(node: ExecNode, host: genja.Host) -> Any:
        raise connect_error

    failure = _failure(_run(_pipeline(task_class, connect=connect)))
    assert failure.kind is TaskFailureKind.CONNECTION
    assert f"failed: {type(connect_error).__name__}: plugin" in failure.message


class CheckFirst:
    """A policy that asks the task's idempotency check."""

    name = "check-first"

    def __init__(self) -> None:
        self.found: list[Any] = []

    def applies(self, node: ExecNode) -> bool:
        return True

    def around(self, call: NodeCall) -> PolicySteps:
        self.found.append((yield from check(call)))
        return TaskSuccessResult()


@task(name="checked")
class Checked:
    def check(self, task, host, context):  # type: ignore[no-untyped-def]
        raise RAISED[0]

    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        return TaskSuccessResult()


def test_what_an_idempotency_check_raises_is_its_failure() -> None:
    RAISED[:] = [SystemExit("no")]
    policy = CheckFirst()
    assert _run(_pipeline(Checked, policies=[policy])) == TaskSuccessResult()
    (found,) = policy.found
    assert _failure(found).message == "task 'checked' (check) raised SystemExit: no"


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


class Unreadable(dict):  # type: ignore[type-arg]
    """JSON encodes it (its items), but walking its values fails."""

    def values(self) -> Any:
        raise RuntimeError("values are gone")


class Exploding(Mapping[str, Any]):
    """A mapping whose own methods fail."""

    def __getitem__(self, key: str) -> Any:
        raise SystemExit("getitem")

    def __iter__(self) -> Any:
        raise SystemExit("iter")

    def __len__(self) -> int:
        raise SystemExit("len")


@pytest.mark.parametrize("task_class", [Returns, ReturnsAsync], ids=["start", "start_async"])
@pytest.mark.parametrize(
    ("returned", "kind", "text"),
    [
        (_deep(100_000), "internal", "not JSON-serializable: result: maximum recursion depth"),
        ({"a": {1, 2}}, "internal", "not JSON-serializable: result: Object of type set"),
        (float("nan"), "internal", "not JSON-serializable: result: Out of range float"),
        ("x" * 2000, "validation", "returned a result of 2.0 KiB (2002 bytes), more than"),
        (Unreadable(a=1), "internal", "could not be searched for the host's secrets: Runtime"),
        ("ok", "", ""),
    ],
    ids=["deep", "set", "nan", "large", "unmaskable", "fine"],
)
def test_a_result_that_cannot_travel_fails_its_host(
    task_class: type, returned: Any, kind: str, text: str
) -> None:
    RETURNED[:] = [TaskSuccessResult(result=returned)]
    host = genja.Host(id="r1", password="hunter2")
    result = _run(_pipeline(task_class, max_result_size=1024), host)
    if not kind:
        assert result == RETURNED[0]
        return
    failure = _failure(result)
    assert (failure.kind.value, text in failure.message) == (kind, True), failure.message


def test_a_result_whose_own_code_fails_while_checked_fails_its_host() -> None:
    RETURNED[:] = [TaskSuccessResult(metadata=Exploding())]
    failure = _failure(_run(_pipeline(Returns)))
    assert failure.message == (
        "task 'returns' returned a result that could not be checked: SystemExit: len"
    )


@pytest.mark.parametrize(
    ("result", "size"),
    [
        (TaskSuccessResult(), 0),
        (TaskSuccessResult(result="abc"), 5),  # "abc" as JSON
        (TaskSuccessResult(result="é"), 8),  # "\u00e9"
        (TaskSuccessResult(diff="é", summary="ab"), 4),  # UTF-8 bytes
        (TaskSuccessResult(warnings=("w",), messages=()), 49),
        (TaskFailureResult(message="boom", details={"a": 1}), 12),
    ],
)
def test_a_results_size_counts_its_json_and_its_text(result: HostTaskResult, size: int) -> None:
    RETURNED[:] = [result]
    assert _run(_pipeline(Returns, max_result_size=1024)) == result
    if size:
        RETURNED[:] = [result]
        failure = _failure(_run(_pipeline(Returns, max_result_size=size - 1)))
        assert f"({size} bytes)" in failure.message


class Unprintable(Exception):
    def __str__(self) -> str:
        raise SystemExit("no text")


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ValueError("line one\n  line two\n"), "ValueError: line one line two"),
        (ValueError("x" * 5000), f"ValueError: {'x' * 1000}... (4000 more characters)"),
        (Unprintable(), "Unprintable: <Unprintable whose text cannot be shown>"),
    ],
)
def test_an_exceptions_text_becomes_one_short_line(error: BaseException, shown: str) -> None:
    RAISED[:] = [error]
    failure = _failure(_run(_pipeline(Raises)))
    assert failure.message == f"task 'raises' raised {shown}"


def test_a_constructor_that_raises_is_a_load_error() -> None:
    class Exits:
        def __init__(self) -> None:
            raise SystemExit("in __init__")

    with pytest.raises(TaskLoadError, match="could not be instantiated: SystemExit: in __init__"):
        instantiate(Exits, "exits")
    with pytest.raises(TaskLoadError, match="KeyboardInterrupt"):
        instantiate(type("Interrupts", (), {"__init__": _interrupt}), "interrupts")
    with pytest.raises(KeyboardInterrupt):  # the user's Ctrl-C, in the client process
        instantiate(type("Interrupts", (), {"__init__": _interrupt}), "i", caller_interrupts=True)


def _interrupt(self: object) -> None:
    raise KeyboardInterrupt
