"""One host's task tree, node after node: the pipeline every runtime runs hosts through.

The agents (over gRPC) and the in-process runners (`serial`, `threaded`) all call this code, so
they agree on what a run means:

- the nodes run in run order: the root, then each sub-task in declared order, depth first;
  every planned node runs for every host (a failed or skipped parent does not skip its
  children), and a node's result is reported before the next node starts; a sub-task's
  context carries its parent's result for the host (`context.parent_result`), as reported;
- a node's connection (its `connection_plugin_name`) is opened before its entry point is
  called; a failure to open it is the node's result, classified by kind;
- `start` runs in the calling thread (a worker thread, or the caller's own under `serial`),
  `start_async` on the event loop; `task_timeout` bounds each call;
- whatever a task raises or returns becomes a result: an exception (BaseExceptions too:
  KeyboardInterrupt, SystemExit, GeneratorExit, a CancelledError of its own), a value that is
  not a result, a result whose values are not JSON-serializable (or nested too deep to
  encode), a result larger than `max_result_size` all become that host's failure, with a
  one-line message, never an error of the run; the traceback is logged at debug level only.
  Two things pass through instead: our own cancellation of a coroutine (a deadline, a
  cancelled run), and, in the client process (`caller_interrupts`), a KeyboardInterrupt on
  the main thread, where the user's Ctrl-C lands;
- a result shows none of the host's secrets (`Host.secret_values`): a task that returns its
  password, or raises an exception quoting it, has it masked (genja._secrets).

The pipeline produces domain results with their timing (`Report`); turning them into records,
or into protobuf, is the caller's business.

## Per-node policies

Retry, dry-run, idempotency checks and session verification are layers around the call of one
node, in the spirit of Temporal's interceptors: each is a `NodePolicy`, chosen per node when a
run starts (`applies`), and written once as a generator of instructions (`around`) that both
drivers (blocking and async) carry out:

    class CountAttempts:
        name = "count"
        def applies(self, node): return True
        def around(self, call):
            result = yield Proceed(call)          # the inner layers, then the entry point
            if result.status is TaskStatus.FAILED and call.attempt < 3:
                yield Pause(0.5)                  # time.sleep or asyncio.sleep, as the driver runs
                result = yield Proceed(replace(call, attempt=call.attempt + 1))
            return result

Besides `Proceed` and `Pause`, a policy may yield `Check(call)` (call the task's idempotency
check, not its entry point; the reply is an `IdempotencyCheckResult`, or the failure that kept
the check from answering), `Reconnect()` (close the host's cached connection of the node's
plugin, so the next `Proceed` logs in anew; `Reconnect(login=True)` also logs in at once and
replies with the failure to, or None) and `Note(...)` (facts for the node's execution metadata,
such as retries that ran out). Policies usually go through the typed helpers `proceed`,
`check` and `reconnect` (`result = yield from proceed(call)`). A call with `dry_run=True`
calls the task's dry-run entry point instead of `start`. The pipeline reports each node with
how many attempts ran (the highest `NodeCall.attempt` that reached the entry point or an
idempotency check), which the task sees as `context.current_attempt`.

Policies are given to `HostPipeline(policies=...)` outermost first; `default_policies` (in
`agent._policies`) is the list runtimes use. A node no policy applies to is called directly: the
common path pays nothing for the mechanism.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypeVar

from genja._host import Host
from genja._plan import PlannedTask, RunPlan, TaskPath
from genja._secrets import mask, mask_result
from genja._sizes import format_size
from genja.task._context import TaskRuntimeContext
from genja.task._definition import TaskInfo
from genja.task._errors import TaskError
from genja.task._idempotency import IdempotencyCheckResult
from genja.task._results import (
    RESULT_TYPES,
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskMessage,
    TaskSuccessResult,
)

log = logging.getLogger("genja.agent")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, eq=False)
class ExecNode:
    """One node of the tree as it runs: `index` is its position in run order."""

    index: int
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


class TaskLoadError(Exception):
    """A task that cannot run at all on this side (its class cannot be instantiated, its code
    cannot be loaded): every host of the run fails with this message."""


def instantiate(target: object, name: str, *, caller_interrupts: bool = False) -> Any:
    """The object whose entry points run: a task class is instantiated once per run (its hosts
    share the instance), a task instance is used as it is. Whatever its constructor raises
    is a TaskLoadError (but an interrupt, see `HostPipeline`)."""
    if not isinstance(target, type):
        return target
    try:
        return target()
    except BaseException as error:
        if _is_interrupt(error, caller_interrupts):
            raise
        raise TaskLoadError(
            f"task {name!r} could not be instantiated: {type(error).__name__}: "
            f"{_one_line(_text_of(error))}"
        ) from None


def tree_from_plan(plan: RunPlan) -> ExecNode:
    """The ExecNode tree of a plan, for runtimes that run tasks in this process (where a
    Ctrl-C while a constructor runs stops the run: `caller_interrupts`)."""
    indexes = {node.path: index for index, node in enumerate(plan.nodes())}

    def build(node: PlannedTask) -> ExecNode:
        return ExecNode(
            indexes[node.path],
            node.path,
            node.info(),
            instantiate(node.target, node.name, caller_interrupts=True),
            node.definition.is_async,
            tuple(build(child) for child in node.children),
        )

    return build(plan.root)


# ---------------------------------------------------------------- policies


@dataclass(frozen=True, slots=True)
class NodeCall:
    """One call of a node's entry point for one host, as policies see and vary it.
    `attempt` is 1-based; `dry_run` calls `dry_run` / `dry_run_async` instead of `start`;
    `parent_result` is the result the node's parent reported for the host (None for the
    root)."""

    node: ExecNode
    host: Host
    attempt: int = 1
    parent_result: HostTaskResult | None = None
    dry_run: bool = False

    def context(self, connection: Any) -> TaskRuntimeContext:
        """The context the entry point (or a check) receives for this call."""
        return TaskRuntimeContext(
            connection,
            current_attempt=self.attempt,
            dry_run=self.dry_run,
            parent_result=self.parent_result,
        )


@dataclass(frozen=True, slots=True)
class Proceed:
    """Run the inner layers (in the end, the entry point) for `call`; the reply is its result."""

    call: NodeCall


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait `seconds` (blocking or async, as the driver runs); the reply is None."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Check:
    """Call the task's idempotency check (`check` / `check_async`) for `call`, through its
    connection and under `task_timeout`; the reply is its `IdempotencyCheckResult`, or the
    `TaskFailureResult` that kept it from answering (it raised, its connection did not open)."""

    call: NodeCall


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Close the host's cached connection of the node's plugin (if any), so the next `Proceed`
    opens a new one: a retry after a failure on the connection must not reuse it. The reply is
    None. With `login`, also open the new connection now: the reply is None when it opened,
    else the failure to open it (classified as a failed `start` would be)."""

    login: bool = False


@dataclass(frozen=True, slots=True)
class Note:
    """Facts about the node's execution, for its execution metadata; the reply is None."""

    retries_exhausted: bool = False


Instruction: TypeAlias = Proceed | Pause | Check | Reconnect | Note
Reply: TypeAlias = HostTaskResult | IdempotencyCheckResult | None
PolicySteps: TypeAlias = Generator[Instruction, Reply, HostTaskResult]


def proceed(call: NodeCall) -> Generator[Instruction, Reply, HostTaskResult]:
    """`result = yield from proceed(call)`: the inner layers' result for `call`."""
    reply = yield Proceed(call)
    assert isinstance(reply, RESULT_TYPES)
    return reply


def check(
    call: NodeCall,
) -> Generator[Instruction, Reply, IdempotencyCheckResult | TaskFailureResult]:
    """`found = yield from check(call)`: the task's idempotency check, or why it did not answer."""
    reply = yield Check(call)
    assert isinstance(reply, IdempotencyCheckResult | TaskFailureResult)
    return reply


def reconnect(*, login: bool = False) -> Generator[Instruction, Reply, TaskFailureResult | None]:
    """`failure = yield from reconnect(login=True)`: a new session now, or why not."""
    reply = yield Reconnect(login)
    assert reply is None or isinstance(reply, TaskFailureResult)
    return reply


class NodePolicy(Protocol):
    """A layer around the call of one node; see the module docstring."""

    name: str

    def applies(self, node: ExecNode) -> bool:
        """Whether this policy wraps `node` in this run (asked once per node per run)."""
        ...

    def around(self, call: NodeCall) -> PolicySteps:
        """Instructions for the driver; returns the node's result."""
        ...


# ---------------------------------------------------------------- results


def _log_traceback(what: str, host: Host, error: BaseException) -> None:
    """The traceback at debug level, with the host's secrets masked: an exception's text (a
    library's, or a task's own) may quote one."""
    if log.isEnabledFor(logging.DEBUG):
        try:
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        except BaseException as failure:  # an exception whose text cannot be made
            text = f"(no traceback: {type(failure).__name__})"
        log.debug("%s failed on host %r:\n%s", what, host.id, mask(text, host.secret_values()))


# What a task may raise by mistake, besides Exceptions: each fails its host like any error.
# Any other BaseException does too, except where `HostPipeline._propagates` says.
_TASK_MISTAKES = (Exception, SystemExit, GeneratorExit, asyncio.CancelledError)

# An exception's text in a failure message: one line, and not a megabyte of it.
_MESSAGE_CHARS = 1000
# The whole text, in the failure's details.
_DETAILS_CHARS = 64 * 1024


def _text_of(error: BaseException) -> str:
    """str(error), which runs the exception's own code and may fail too (with anything)."""
    try:
        return str(error)
    except BaseException:
        return f"<{type(error).__name__} whose text cannot be shown>"


def _one_line(text: str, limit: int = _MESSAGE_CHARS) -> str:
    """`text` on one line (runs of whitespace, newlines included, become one space), cut
    at `limit` characters."""
    line = " ".join(text.split()) if ("\n" in text or "\r" in text) else text
    if len(line) > limit:
        line = f"{line[:limit]}... ({len(line) - limit} more characters)"
    return line


def _is_interrupt(error: BaseException, caller_interrupts: bool) -> bool:
    """Whether `error` is the user's interrupt rather than a task's mistake: in the client
    process (`caller_interrupts`), a KeyboardInterrupt (or another BaseException a signal
    handler raises) on the main thread, where Ctrl-C lands."""
    return (
        caller_interrupts
        and not isinstance(error, _TASK_MISTAKES)
        and threading.current_thread() is threading.main_thread()
    )


def _our_cancellation() -> bool:
    """Whether the CancelledError at hand, on the event loop, is our own cancellation of the
    coroutine (a deadline, a cancelled run, the agent stopping) rather than one the task's
    code raised. Python 3.10 cannot tell: there, every one counts as ours, and the executor
    fails the rest of the host."""
    current = asyncio.current_task()
    cancelling = getattr(current, "cancelling", None)
    return cancelling is None or cancelling() > 0


def _failure(message: str, kind: TaskFailureKind, **extra: Any) -> TaskFailureResult:
    return TaskFailureResult(message=message, kind=kind, **extra)


# What a message or a warning costs besides its text (level, code, timestamp, framing), in
# bytes: enough that a million empty messages count as the megabytes they are on the wire.
_ITEM_BYTES = 48


def _text_bytes(text: str | None) -> int:
    if not text:
        return 0
    # isascii() is O(1) in CPython; only other text is encoded to count its bytes.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _json_bytes(value: Any) -> int:
    """The size of `value` as JSON; raises TypeError, ValueError (not JSON: a set, NaN) or
    RecursionError (nested deeper than the encoder goes)."""
    return 0 if value is None else len(json.dumps(value, allow_nan=False))  # ASCII: 1 B/char


def _items_bytes(warnings: tuple[str, ...], messages: tuple[TaskMessage, ...]) -> int:
    size = sum(_text_bytes(warning) + _ITEM_BYTES for warning in warnings)
    return size + sum(_text_bytes(message.text) + _ITEM_BYTES for message in messages)


def _size_or_problem(result: HostTaskResult) -> int | str:
    """The size of a result in bytes (its JSON values as JSON, its texts as UTF-8), or why
    its values cannot travel as JSON. Written for the common case, which runs for every node:
    a result that carries nothing costs a few attribute reads."""
    field = ""
    try:
        if isinstance(result, TaskSuccessResult):
            field = "result"
            size = _json_bytes(result.result)
            if result.metadata:
                field = "metadata"
                size += _json_bytes(result.metadata)
            if result.diff or result.summary:
                size += _text_bytes(result.diff) + _text_bytes(result.summary)
            if result.warnings or result.messages:
                size += _items_bytes(result.warnings, result.messages)
            return size
        if isinstance(result, TaskFailureResult):
            field = "details"
            size = _json_bytes(result.details) + _text_bytes(result.message)
            if result.warnings or result.messages:
                size += _items_bytes(result.warnings, result.messages)
            return size
        return _text_bytes(result.reason) + _text_bytes(result.message)
    except (TypeError, ValueError, RecursionError) as error:
        return f"{field}: {_one_line(_text_of(error))}"


def checked(node: ExecNode, value: object, max_size: int | None = None) -> HostTaskResult:
    """What a node returned, as a result: itself, or the failure that says why it cannot be
    (not a result, not JSON, larger than `max_size` bytes). Raises only what the value's own
    code raises (a mapping whose methods fail)."""
    if not isinstance(value, RESULT_TYPES):
        return _failure(
            f"task {node.info.name!r} returned {type(value).__name__}; expected "
            "TaskSuccessResult, TaskFailureResult or TaskSkipResult",
            TaskFailureKind.INTERNAL,
        )
    found = _size_or_problem(value)
    if isinstance(found, str):
        return _failure(
            f"task {node.info.name!r} returned a result that is not JSON-serializable: {found}",
            TaskFailureKind.INTERNAL,
        )
    if max_size is not None and found > max_size:
        return _failure(
            f"task {node.info.name!r} returned a result of {format_size(found)} ({found} "
            f"bytes), more than allowed (runner.options.max_result_size: "
            f"{format_size(max_size)})",
            TaskFailureKind.VALIDATION,
        )
    return value


def checked_check(
    node: ExecNode, value: object, max_size: int | None = None
) -> IdempotencyCheckResult | TaskFailureResult:
    """What a node's idempotency check returned: itself, or the failure that says why it
    cannot be used. Its details are not sent as they are: `max_size` does not apply."""
    if not isinstance(value, IdempotencyCheckResult):
        return _failure(
            f"the idempotency check of task {node.info.name!r} returned {type(value).__name__}; "
            "expected IdempotencyCheckResult.converged(...) or .change_required(...)",
            TaskFailureKind.INTERNAL,
        )
    try:
        json.dumps(value.details, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        return _failure(
            f"the idempotency check of task {node.info.name!r} returned details that are not "
            f"JSON-serializable: {_one_line(_text_of(error))}",
            TaskFailureKind.INTERNAL,
        )
    return value


_R = TypeVar("_R")  # what a method's result is validated into
_CHECK = "check"  # the (blocking) name of the idempotency check method


def _entry_point(call: NodeCall) -> str:
    """The (blocking) name of the method a call runs: `start`, or `dry_run` in a dry run."""
    return "dry_run" if call.dry_run else "start"


def _doing(node: ExecNode, method: str) -> str:
    """The call a failure message names: the task (its entry point), or one of its methods."""
    name = f"task {node.info.name!r}"
    return name if method.startswith("start") else f"{name} ({method})"


def _classified(error: TaskError) -> TaskFailureResult:
    """A connection, command or parse failure: its own kind, retryability and message (which
    names the host and the cause, and no secret)."""
    kind = type(error)
    return _failure(
        str(error),
        error.kind,
        retryable=error.retryable,
        details={"exception_type": f"{kind.__module__}.{kind.__qualname__}"},
    )


def _connect_failed(node: ExecNode, host: Host, error: BaseException) -> TaskFailureResult:
    if isinstance(error, TaskError):
        return _classified(error)
    _log_traceback("opening a connection", host, error)
    return _failure(
        f"opening connection {node.info.connection_plugin_name!r} for task {node.info.name!r} "
        f"on host {host.id!r} failed: {type(error).__name__}: {_one_line(_text_of(error))}",
        TaskFailureKind.CONNECTION,
        retryable=True,
    )


def _raised(node: ExecNode, host: Host, error: BaseException, method: str) -> TaskFailureResult:
    if isinstance(error, TaskError):
        return _classified(error)
    doing = _doing(node, method)
    _log_traceback(doing, host, error)
    kind = type(error)
    text = _text_of(error)
    return _failure(
        f"{doing} raised {kind.__name__}: {_one_line(text)}",
        TaskFailureKind.INTERNAL,
        details={
            "exception_type": f"{kind.__module__}.{kind.__qualname__}",
            "exception_message": text[:_DETAILS_CHARS],
        },
    )


def _unreadable(node: ExecNode, host: Host, error: BaseException, what: str) -> TaskFailureResult:
    """A result whose own code failed while we read it (`what`: checked, masked)."""
    _log_traceback(f"reading the result of task {node.info.name!r}", host, error)
    return _failure(
        f"task {node.info.name!r} returned a result that could not be {what}: "
        f"{type(error).__name__}: {_one_line(_text_of(error))}",
        TaskFailureKind.INTERNAL,
    )


def _timed_out(node: ExecNode, host: Host, seconds: float, method: str) -> TaskFailureResult:
    return _failure(
        f"{_doing(node, method)} did not finish on host {host.id!r} within {seconds:g}s",
        TaskFailureKind.TIMEOUT,
        retryable=True,
    )


def _policy_failed(policy: NodePolicy, call: NodeCall, error: BaseException) -> HostTaskResult:
    _log_traceback(f"policy {policy.name!r}", call.host, error)
    return _failure(
        f"policy {policy.name!r} failed around task {call.node.info.name!r}: "
        f"{type(error).__name__}: {_one_line(_text_of(error))}",
        TaskFailureKind.INTERNAL,
    )


# ---------------------------------------------------------------- the pipeline


class NodeTrace:
    """What the policies around one node's call did, for its report: how many attempts ran
    (reached the entry point or the idempotency check), and whether its retries ran out."""

    __slots__ = ("attempts", "retries_exhausted")

    def __init__(self) -> None:
        self.attempts = 1
        self.retries_exhausted = False

    def note(self, note: Note) -> None:
        self.retries_exhausted = self.retries_exhausted or note.retries_exhausted

    def facts(self) -> tuple[int, bool]:
        return self.attempts, self.retries_exhausted


# What the pipeline reports for each node: (node index, result, start as Unix time in ns,
# duration in ns, what its policies did or None when none applied). Timing covers every attempt.
Report = Callable[[int, HostTaskResult, int, int, NodeTrace | None], None]
# Opens (or returns the cached) connection of a node's plugin for a host; blocking. None when
# the node names no plugin.
Connector = Callable[[ExecNode, Host], Any]
# Closes the cached connection of a node's plugin for a host, if there is one; blocking.
Disconnector = Callable[[ExecNode, Host], None]


def _no_disconnect(node: ExecNode, host: Host) -> None:
    return None


class HostPipeline:
    """Runs one run's tree for any number of hosts (shared by the run's hosts and threads).

    `threads` runs blocking entry points for the async path; `inline_blocking` calls them on the
    event loop's thread instead, for the serial runner, where nothing else waits on the loop and
    a debugger should stop in the caller's thread (a `task_timeout` still needs a thread, so it
    turns this off). `max_result_size` bounds what one node may return (bytes, see `checked`).
    `caller_interrupts` is for runtimes in the client process: there a KeyboardInterrupt on
    the main thread is the user's Ctrl-C, and stops the run instead of failing a host."""

    def __init__(
        self,
        root: ExecNode,
        *,
        connect: Connector,
        disconnect: Disconnector = _no_disconnect,
        task_timeout: float | None = None,
        threads: concurrent.futures.Executor | None = None,
        policies: Sequence[NodePolicy] = (),
        inline_blocking: bool = False,
        max_result_size: int | None = None,
        caller_interrupts: bool = False,
    ) -> None:
        self.root = root
        self.nodes = root.walk()
        self._connect = connect
        self._disconnect = disconnect
        self._timeout = task_timeout
        self._threads = threads
        self._inline = inline_blocking and task_timeout is None
        self._max_size = max_result_size
        self._caller_interrupts = caller_interrupts
        self._layers: dict[int, tuple[NodePolicy, ...]] = {
            node.index: tuple(policy for policy in policies if policy.applies(node))
            for node in self.nodes
        }
        # A whole host in one worker thread, with no hop to the event loop per node, when
        # nothing in the tree needs the loop or a deadline.
        self.blocking_only = task_timeout is None and not any(n.is_async for n in self.nodes)

    @property
    def node_count(self) -> int:
        return len(self.nodes)

    # ---------------------------------------------------------------- containment

    def is_interrupt(self, error: BaseException) -> bool:
        """Whether `error`, raised by a task's code, is the user's Ctrl-C rather than the
        task's mistake (see `caller_interrupts`): the pipeline lets it go on up, and so must
        whoever runs the pipeline."""
        return _is_interrupt(error, self._caller_interrupts)

    def _propagates(self, error: BaseException, *, on_loop: bool = False) -> bool:
        """Whether `error`, raised by a task's code (or a connection plugin's), is to go on
        up instead of failing the host: our own cancellation of a coroutine (only `on_loop`:
        a CancelledError in a thread is the task's), or an interrupt (`is_interrupt`)."""
        if isinstance(error, asyncio.CancelledError):
            return on_loop and _our_cancellation()
        return self.is_interrupt(error)

    def _validated(
        self,
        node: ExecNode,
        host: Host,
        value: object,
        validate: Callable[[ExecNode, object, int | None], _R],
    ) -> _R | TaskFailureResult:
        try:
            return validate(node, value, self._max_size)
        except BaseException as error:  # the value's own code (a mapping's methods) failed
            if self._propagates(error):
                raise
            return _unreadable(node, host, error, "checked")

    def _masked(self, node: ExecNode, host: Host, result: HostTaskResult) -> HostTaskResult:
        """`result` with the host's secrets masked, or the failure that says it cannot be
        searched for them (it is then not sent at all)."""
        try:
            return mask_result(result, host.secret_values())
        except Exception as error:  # RecursionError (nested deeper than Python goes), ...
            return _unreadable(node, host, error, "searched for the host's secrets")

    # ---------------------------------------------------------------- blocking trees

    def run_blocking(self, host: Host, report: Report) -> None:
        """The whole tree in the calling thread (only for `blocking_only` pipelines)."""
        parents: dict[TaskPath, HostTaskResult] = {}
        for node in self.nodes:
            started = time.time_ns()
            clock = time.perf_counter_ns()
            layers = self._layers[node.index]
            call = NodeCall(node, host, parent_result=parents.get(node.path[:-1]))
            trace = NodeTrace() if layers else None
            if trace is None:
                result = self._invoke_blocking(call)
            else:
                result = self._through_blocking(layers, call, trace)
            result = self._masked(node, host, result)
            if node.children:
                parents[node.path] = result
            report(node.index, result, started, time.perf_counter_ns() - clock, trace)

    def _through_blocking(
        self, layers: tuple[NodePolicy, ...], call: NodeCall, trace: NodeTrace
    ) -> HostTaskResult:
        policy, inner = layers[0], layers[1:]
        steps = policy.around(call)
        reply: Reply = None
        try:
            while True:
                instruction = steps.send(reply)
                reply = None
                if isinstance(instruction, Proceed):
                    if inner:
                        reply = self._through_blocking(inner, instruction.call, trace)
                    else:
                        trace.attempts = max(trace.attempts, instruction.call.attempt)
                        reply = self._invoke_blocking(instruction.call)
                elif isinstance(instruction, Check):
                    trace.attempts = max(trace.attempts, instruction.call.attempt)
                    reply = self._call_blocking(instruction.call, _CHECK, checked_check)
                elif isinstance(instruction, Pause):
                    time.sleep(instruction.seconds)
                elif isinstance(instruction, Reconnect):
                    reply = self._reconnect(call.node, call.host, instruction.login)
                elif isinstance(instruction, Note):
                    trace.note(instruction)
                else:
                    raise TypeError(f"unknown instruction {instruction!r}")
        except StopIteration as stop:
            return self._validated(call.node, call.host, stop.value, checked)
        except Exception as error:
            return _policy_failed(policy, call, error)

    def _invoke_blocking(self, call: NodeCall) -> HostTaskResult:
        """Open the connection, call `start` (or `dry_run`); never raises."""
        return self._call_blocking(call, _entry_point(call), checked)

    def _call_blocking(
        self, call: NodeCall, method: str, validate: Callable[[ExecNode, object, int | None], _R]
    ) -> _R | TaskFailureResult:
        """Open the connection, call the task's `method`, `validate` what it returned; never
        raises."""
        node, host = call.node, call.host
        try:
            connection = self._connect(node, host)
        except BaseException as error:
            if self._propagates(error):
                raise
            return _connect_failed(node, host, error)
        try:
            value = getattr(node.instance, method)(node.info, host, call.context(connection))
        except BaseException as error:
            if self._propagates(error):
                raise
            return _raised(node, host, error, method)
        return self._validated(node, host, value, validate)

    def _reconnect(self, node: ExecNode, host: Host, login: bool) -> TaskFailureResult | None:
        """Drop the cached connection; with `login`, open a new one now (see `Reconnect`)."""
        self._disconnect(node, host)
        if not login:
            return None
        try:
            self._connect(node, host)
        except BaseException as error:
            if self._propagates(error):
                raise
            return _connect_failed(node, host, error)
        return None

    # ---------------------------------------------------------------- trees with async nodes

    async def run_async(self, host: Host, report: Report) -> None:
        parents: dict[TaskPath, HostTaskResult] = {}
        for node in self.nodes:
            started = time.time_ns()
            clock = time.perf_counter_ns()
            layers = self._layers[node.index]
            call = NodeCall(node, host, parent_result=parents.get(node.path[:-1]))
            trace = NodeTrace() if layers else None
            if trace is None:
                result = await self._invoke_async(call)
            else:
                result = await self._through_async(layers, call, trace)
            result = self._masked(node, host, result)
            if node.children:
                parents[node.path] = result
            report(node.index, result, started, time.perf_counter_ns() - clock, trace)

    async def _through_async(
        self, layers: tuple[NodePolicy, ...], call: NodeCall, trace: NodeTrace
    ) -> HostTaskResult:
        policy, inner = layers[0], layers[1:]
        steps = policy.around(call)
        reply: Reply = None
        try:
            while True:
                instruction = steps.send(reply)
                reply = None
                if isinstance(instruction, Proceed):
                    if inner:
                        reply = await self._through_async(inner, instruction.call, trace)
                    else:
                        trace.attempts = max(trace.attempts, instruction.call.attempt)
                        reply = await self._invoke_async(instruction.call)
                elif isinstance(instruction, Check):
                    trace.attempts = max(trace.attempts, instruction.call.attempt)
                    reply = await self._call_async(instruction.call, _CHECK, checked_check)
                elif isinstance(instruction, Pause):
                    await asyncio.sleep(instruction.seconds)
                elif isinstance(instruction, Reconnect):
                    reply = await self._in_thread(
                        self._reconnect, call.node, call.host, instruction.login
                    )
                elif isinstance(instruction, Note):
                    trace.note(instruction)
                else:
                    raise TypeError(f"unknown instruction {instruction!r}")
        except StopIteration as stop:
            return self._validated(call.node, call.host, stop.value, checked)
        except Exception as error:
            return _policy_failed(policy, call, error)

    async def _invoke_async(self, call: NodeCall) -> HostTaskResult:
        return await self._call_async(call, _entry_point(call), checked)

    async def _call_async(
        self, call: NodeCall, base: str, validate: Callable[[ExecNode, object, int | None], _R]
    ) -> _R | TaskFailureResult:
        """One call of method `base` (its `_async` form for an async task) under
        `task_timeout`; never raises. The inner calls turn everything the task does into a
        result, so a TimeoutError here is our deadline, not the task's own."""
        node = call.node
        method = f"{base}_async" if node.is_async else base
        if not node.is_async and self._inline:
            return self._call_blocking(call, method, validate)
        try:
            if node.is_async:
                coroutine = self._await_method(call, method, validate)
                return await asyncio.wait_for(coroutine, self._timeout)
            future = self._in_thread(self._call_blocking, call, method, validate)
            return await asyncio.wait_for(future, self._timeout)
        except asyncio.TimeoutError:
            assert self._timeout is not None
            return _timed_out(node, call.host, self._timeout, method)

    def _in_thread(self, function: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """`function(*args)` on the blocking threads, in this coroutine's context (so what it
        logs is known to be about the same host)."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._threads, contextvars.copy_context().run, function, *args)

    async def _await_method(
        self, call: NodeCall, method: str, validate: Callable[[ExecNode, object, int | None], _R]
    ) -> _R | TaskFailureResult:
        node, host = call.node, call.host
        connection = None
        if node.info.connection_plugin_name:
            try:
                connection = await self._in_thread(self._connect, node, host)
                view = getattr(connection, "async_view", None)
                if view is not None:
                    connection = view()
            except BaseException as error:
                if self._propagates(error, on_loop=True):
                    raise
                return _connect_failed(node, host, error)
        try:
            entry = getattr(node.instance, method)
            value = await entry(node.info, host, call.context(connection))
        except BaseException as error:
            if self._propagates(error, on_loop=True):
                raise
            return _raised(node, host, error, method)
        return self._validated(node, host, value, validate)
