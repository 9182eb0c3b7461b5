"""Running one host's task tree on an agent.

The root runs first, then each sub-task in declared order, depth first; every node's result is
handed to the outbox as soon as it exists. A node that raises, returns something that is not a
task result, returns values that are not JSON-serializable or overruns its timeout becomes a
failed result for that host: nothing a task does stops the other hosts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genja._host import Host
from genja._plan import TaskPath
from genja.task._context import TaskRuntimeContext
from genja.task._definition import TaskInfo
from genja.task._errors import TaskError
from genja.task._results import RESULT_TYPES, HostTaskResult, TaskFailureKind, TaskFailureResult
from genja_rpc._convert import fill_outcome
from genja_rpc._pb import pb

log = logging.getLogger("genja.agent")


@dataclass(frozen=True, slots=True)
class ExecNode:
    path: TaskPath
    info: TaskInfo
    instance: Any
    is_async: bool
    children: tuple[ExecNode, ...]

    def walk(self) -> list[ExecNode]:
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


def _failure(message: str, kind: TaskFailureKind, **extra: Any) -> TaskFailureResult:
    return TaskFailureResult(message=message, kind=kind, **extra)


def _checked(node: ExecNode, value: object) -> HostTaskResult:
    if isinstance(value, RESULT_TYPES):
        return value
    return _failure(
        f"task {node.info.name!r} returned {type(value).__name__}; expected TaskSuccessResult, "
        "TaskFailureResult or TaskSkipResult",
        TaskFailureKind.INTERNAL,
    )


def _classified(error: TaskError) -> HostTaskResult:
    """A connection, command or parse failure: its own kind, retryability and message (which
    names the host and the cause, and no secret)."""
    kind = type(error)
    return _failure(
        str(error),
        error.kind,
        retryable=error.retryable,
        details={"exception_type": f"{kind.__module__}.{kind.__qualname__}"},
    )


def _connect_failed(node: ExecNode, host: Host, error: BaseException) -> HostTaskResult:
    if isinstance(error, TaskError):
        return _classified(error)
    log.debug("opening a connection for host %r failed", host.id, exc_info=error)
    return _failure(
        f"opening connection {node.info.connection_plugin_name!r} for task {node.info.name!r} "
        f"on host {host.id!r} failed: {type(error).__name__}: {error}",
        TaskFailureKind.CONNECTION,
        retryable=True,
    )


def _raised(node: ExecNode, host: Host, error: BaseException) -> HostTaskResult:
    if isinstance(error, TaskError):
        return _classified(error)
    log.debug("task %r raised on host %r", node.info.name, host.id, exc_info=error)
    kind = type(error)
    return _failure(
        f"task {node.info.name!r} raised {kind.__name__}: {error}",
        TaskFailureKind.INTERNAL,
        details={
            "exception_type": f"{kind.__module__}.{kind.__qualname__}",
            "exception_message": str(error),
        },
    )


def _timed_out(node: ExecNode, host: Host, seconds: float) -> HostTaskResult:
    return _failure(
        f"task {node.info.name!r} did not finish on host {host.id!r} within {seconds:g}s",
        TaskFailureKind.TIMEOUT,
        retryable=True,
    )


def to_message(node: ExecNode, host_id: str, result: HostTaskResult) -> pb.NodeResult:
    message = pb.NodeResult(host_id=host_id, task_path=node.path, depth=len(node.path))
    try:
        fill_outcome(message, result)
    except (TypeError, ValueError) as error:
        message = pb.NodeResult(host_id=host_id, task_path=node.path, depth=len(node.path))
        fill_outcome(
            message,
            _failure(
                f"task {node.info.name!r} returned a result that is not JSON-serializable: {error}",
                TaskFailureKind.INTERNAL,
            ),
        )
    return message


Emit = Callable[[pb.NodeResult], None]


class HostRunner:
    """Runs task trees for one run; shared by all of that run's hosts on this agent."""

    def __init__(
        self,
        root: ExecNode,
        threads: concurrent.futures.ThreadPoolExecutor,
        task_timeout: float | None,
        open_connection: Callable[[ExecNode, Host], Any],
    ) -> None:
        self.root = root
        self._threads = threads
        self._timeout = task_timeout
        self._open_connection = open_connection
        nodes = root.walk()
        # One hop to a worker thread per host instead of one per node, when nothing in the
        # tree needs the event loop or a deadline.
        self.blocking_only = task_timeout is None and not any(n.is_async for n in nodes)

    # ---------------------------------------------------------------- blocking trees

    def run_blocking(self, host: Host, emit: Emit) -> None:
        """The whole tree in the calling (worker) thread."""
        for node in self.root.walk():
            emit(to_message(node, host.id, self._call_blocking(node, host)))

    def _call_blocking(self, node: ExecNode, host: Host) -> HostTaskResult:
        try:
            connection = self._open_connection(node, host)
        except Exception as error:
            return _connect_failed(node, host, error)
        try:
            context = TaskRuntimeContext(connection)
            return _checked(node, node.instance.start(node.info, host, context))
        except Exception as error:
            return _raised(node, host, error)

    # ---------------------------------------------------------------- trees with async nodes

    async def run_async(self, host: Host, emit: Emit) -> None:
        for node in self.root.walk():
            emit(to_message(node, host.id, await self._call_async(node, host)))

    async def _call_async(self, node: ExecNode, host: Host) -> HostTaskResult:
        loop = asyncio.get_running_loop()
        try:
            if node.is_async:
                return await asyncio.wait_for(self._start_async(node, host), self._timeout)
            future = loop.run_in_executor(self._threads, self._call_blocking, node, host)
            return await asyncio.wait_for(future, self._timeout)
        except TaskError as error:  # before TimeoutError: some of these are timeouts
            return _classified(error)
        except asyncio.TimeoutError as error:
            if self._timeout is None:  # the task's own TimeoutError, not our deadline
                return _raised(node, host, error)
            return _timed_out(node, host, self._timeout)
        except Exception as error:
            return _raised(node, host, error)

    async def _start_async(self, node: ExecNode, host: Host) -> HostTaskResult:
        loop = asyncio.get_running_loop()
        connection = None
        if node.info.connection_plugin_name:
            try:
                connection = await loop.run_in_executor(
                    self._threads, self._open_connection, node, host
                )
            except Exception as error:
                return _connect_failed(node, host, error)
            view = getattr(connection, "async_view", None)
            if view is not None:
                connection = view()
        value = await node.instance.start_async(node.info, host, TaskRuntimeContext(connection))
        return _checked(node, value)
