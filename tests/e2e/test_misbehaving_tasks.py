"""Nothing a task does can break an agent (issue 10), on real agent processes, under `serial`,
and on a `genja-coordinator serve` shared with another client.

Each case runs guilty hosts beside innocent ones, on one agent of `CONCURRENCY` workers (more
guilty hosts than workers, so a lost worker would stall the run), and checks that:

- the run ends within its deadline plus a margin, and every host has a result;
- only the guilty hosts failed, each with the expected kind and a one-line message;
- the next run on the same `Genja` passes in full (the agent's capacity is intact);
- on the server, another client's runs meanwhile all pass.

Part a: containment per host (what a task raises, what it returns), deadlines that cancel,
result size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import genja
from genja.task import (
    Host,
    HostTaskResult,
    TaskFailureKind,
    TaskFailureResult,
    TaskInfo,
    TaskRuntimeContext,
    TaskSuccessResult,
    task,
)
from tests.conftest import MakeGenja
from tests.servers.coordinator import CoordinatorServer, start_server

pytestmark = pytest.mark.e2e

# The agents cannot import this test module: send its task classes by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


CONCURRENCY = 4  # hosts the agent works on at once
RUN_TIMEOUT = 30.0  # every run's deadline: a run that would hang fails instead
MARGIN = 30.0  # what "ends within its deadline" allows on a shared, noisy machine
MiB = 1024 * 1024


# ---------------------------------------------------------------- where the tasks run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorServer]:
    """One coordinator server for the module, with one local agent of CONCURRENCY workers:
    every case runs on the same agent, so what one case breaks, the next ones would see."""
    server = start_server(
        tmp_path_factory.mktemp("server"),
        pools=(),
        local_agents=1,
        args=["--host-concurrency", str(CONCURRENCY)],
    )
    yield server
    server.close()


def _server_settings(server: CoordinatorServer, **options: Any) -> genja.Settings:
    return genja.Settings.from_dict({"runner": {"options": server.runner_options(**options)}})


@task(name="innocent")
class Innocent:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return TaskSuccessResult(result=host.id)


@dataclass
class Bystander:
    """Another client of the same server, running no-op runs until told to stop: each of
    them must pass in full, whatever the first client's tasks do meanwhile."""

    server: CoordinatorServer
    runs: list[genja.TaskResults] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)

    def _loop(self) -> None:
        hosts = {f"other{i}": {} for i in range(2 * CONCURRENCY)}
        settings = _server_settings(self.server, run_timeout=RUN_TIMEOUT)
        try:
            with genja.Genja.from_hosts(hosts, settings) as g:
                while not self._stop.is_set():
                    self.runs.append(g.run_task(Innocent))
                    self._ready.set()
        except BaseException as error:  # reported by `running`
            self.errors.append(error)
        finally:
            self._ready.set()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        thread = threading.Thread(target=self._loop, name="bystander")
        thread.start()
        self._ready.wait(RUN_TIMEOUT + MARGIN)  # its runs go on before, during and after
        before = len(self.runs)
        try:
            yield
        finally:
            while len(self.runs) <= before + 1 and thread.is_alive():
                time.sleep(0.01)
            self._stop.set()
            thread.join(timeout=RUN_TIMEOUT + MARGIN)
        assert not thread.is_alive(), "the other client's run did not end"
        assert not self.errors, self.errors
        for results in self.runs:
            assert results.host_summary().passed == 2 * CONCURRENCY, results.to_json()


@dataclass
class Target:
    """Where a case runs: `agents` (one local agent), `serial` (the client's own thread) or
    `server` (a coordinator server's agent, while another client runs there too)."""

    name: str
    _make: Callable[..., genja.Genja]
    server: CoordinatorServer | None = None

    def make(self, hosts: Mapping[str, Any], **options: Any) -> genja.Genja:
        return self._make(hosts, **{"run_timeout": RUN_TIMEOUT, **options})

    def run(self, g: genja.Genja, task_class: object) -> genja.TaskResults:
        """A run that ends within its deadline and accounts for every host."""
        deadline = g.settings.runner.options.run_timeout
        assert deadline is not None
        started = time.monotonic()
        if self.server is None:
            results = g.run_task(task_class)
        else:
            with Bystander(self.server).running():
                results = g.run_task(task_class)
        assert time.monotonic() - started < deadline + MARGIN
        assert sorted(results.hosts) == sorted(g.hosts)
        return results

    def next_run_passes(self, g: genja.Genja) -> None:
        """Every host of `g`, more than the agent's workers, passes: nothing was lost."""
        assert len(g.hosts) > CONCURRENCY
        results = self.run(g, Innocent)
        assert results.failed_hosts == [], results.to_json(pretty=True)
        assert {h: r.result for h, r in results.hosts.items()} == {h: h for h in g.hosts}


@pytest.fixture(params=["agents", "serial", "server"])
def target(request: pytest.FixtureRequest, make_genja: MakeGenja) -> Iterator[Target]:
    name = request.param
    if name != "server":

        def make(hosts: Mapping[str, Any], **options: Any) -> genja.Genja:
            return make_genja(
                hosts, runner=name, workers=1, host_concurrency=CONCURRENCY, **options
            )

        yield Target(name, make)
        return
    server: CoordinatorServer = request.getfixturevalue("server")
    made: list[genja.Genja] = []

    def make_on_server(hosts: Mapping[str, Any], **options: Any) -> genja.Genja:
        made.append(genja.Genja.from_hosts(hosts, _server_settings(server, **options)))
        return made[-1]

    yield Target(name, make_on_server, server)
    for g in made:
        g.close()


def _guilty_then_innocent(guilty: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The guilty hosts first (they take every worker), then CONCURRENCY innocent ones."""
    hosts: dict[str, Any] = {name: {"data": dict(data)} for name, data in guilty.items()}
    hosts.update({f"fine{i}": {} for i in range(CONCURRENCY)})
    return hosts


def _only_guilty_failed(
    results: genja.TaskResults,
    guilty: Mapping[str, tuple[TaskFailureKind, str]],
    checked: Collection[str] = (),
) -> None:
    """The guilty hosts failed with their kind and a one-line message holding their text;
    the others passed, each with its own id as result (but those `checked` already)."""
    assert sorted(results.failed_hosts) == sorted(guilty), results.to_json(pretty=True)
    for host_id, result in results.hosts.items():
        if host_id in checked:
            continue
        if host_id not in guilty:
            assert result == TaskSuccessResult(result=host_id), result
            continue
        kind, text = guilty[host_id]
        assert isinstance(result, TaskFailureResult)
        assert result.kind is kind, (host_id, result.message)
        assert text in result.message
        assert "\n" not in result.message
        assert "Traceback" not in str(result.details)


def _grpc_many_loops(record: logging.LogRecord) -> bool:
    """grpc.aio's poller calling into an event loop closed meanwhile, logged by asyncio: seen
    when one process runs grpc.aio on several short-lived loops in several threads (the
    bystander's runs beside the test's). grpc.aio binds its poller to every loop that used it
    (grpc/grpc#23377); the runs are unharmed."""
    return record.name == "asyncio" and "PollerCompletionQueue" in record.getMessage()


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Nothing logged at warning or above carries a traceback (the agents' records reach the
    client's logging too)."""
    caplog.set_level(logging.WARNING)
    yield
    records = caplog.get_records("call") + caplog.records  # the test's, then its teardown's
    assert not [
        r
        for r in records
        if ("Traceback" in r.getMessage() or r.exc_info) and not _grpc_many_loops(r)
    ]


# ---------------------------------------------------------------- what a task raises

_RAISED: dict[str, type[BaseException]] = {
    "KeyboardInterrupt": KeyboardInterrupt,
    "SystemExit": SystemExit,
    "GeneratorExit": GeneratorExit,
    "CancelledError": asyncio.CancelledError,
}


def _raise_if_guilty(host: Host) -> None:
    name = host.data.get("raise")
    if name:
        raise _RAISED[name](f"{name} from {host.id}")


@task(name="raises")
class Raises:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        _raise_if_guilty(host)
        return TaskSuccessResult(result=host.id)


@task(name="raises_async")
class RaisesAsync:
    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> HostTaskResult:
        await asyncio.sleep(0)
        _raise_if_guilty(host)
        return TaskSuccessResult(result=host.id)


def _raising_hosts(target: Target, task_class: type) -> dict[str, dict[str, str]]:
    """Two hosts per exception. A KeyboardInterrupt on the client's own thread is the user's
    Ctrl-C, not a host's failure (see the serial test below): in-process runners skip it. A
    coroutine's own CancelledError is told from ours by Task.cancelling(), new in 3.11."""
    names = [n for n in _RAISED if target.name != "serial" or n != "KeyboardInterrupt"]
    if sys.version_info < (3, 11) and task_class is RaisesAsync:
        names.remove("CancelledError")
    return {f"{name}-{i}": {"raise": name} for name in names for i in range(2)}


@pytest.mark.parametrize("task_class", [Raises, RaisesAsync], ids=["start", "start_async"])
@pytest.mark.timeout(180)
@pytest.mark.usefixtures("no_tracebacks")
def test_base_exceptions_a_task_raises_fail_only_its_host(target: Target, task_class: type) -> None:
    guilty = _raising_hosts(target, task_class)
    g = target.make(_guilty_then_innocent(guilty))
    results = target.run(g, task_class)
    name = task_class.__name__.lower().replace("async", "_async")
    _only_guilty_failed(
        results,
        {
            host_id: (
                TaskFailureKind.INTERNAL,
                f"task {name!r} raised {data['raise']}: {data['raise']} from {host_id}",
            )
            for host_id, data in guilty.items()
        },
    )
    target.next_run_passes(g)


@pytest.mark.parametrize(
    ("runner", "task_class"),
    [("serial", Raises), ("serial", RaisesAsync), ("threaded", RaisesAsync)],
    ids=["serial-start", "serial-start_async", "threaded-start_async"],
)
@pytest.mark.timeout(120)
def test_a_keyboard_interrupt_on_the_callers_own_thread_reaches_the_caller(
    make_genja: MakeGenja, runner: str, task_class: type
) -> None:
    """In the client process, the caller's own thread is where Ctrl-C lands: there a
    KeyboardInterrupt stops the run as Ctrl-C would (a blocking `start` under `serial`, a
    coroutine on the caller's loop). Elsewhere (the threaded runner's worker threads) it is
    the task's mistake, as on agents. The next run passes in full."""
    hosts = _guilty_then_innocent({"ctrl-c": {"raise": "KeyboardInterrupt"}})
    g = make_genja(hosts, runner=runner, host_concurrency=CONCURRENCY)
    with pytest.raises(KeyboardInterrupt):
        g.run_task(task_class)
    if runner == "threaded":
        results = g.run_task(Raises)
        _only_guilty_failed(
            results,
            {
                "ctrl-c": (
                    TaskFailureKind.INTERNAL,
                    "task 'raises' raised KeyboardInterrupt: KeyboardInterrupt from ctrl-c",
                )
            },
        )
    results = g.run_task(Innocent)
    assert results.host_summary().passed == len(g.hosts)


# ---------------------------------------------------------------- what a task returns


class Opaque:
    """Not JSON."""


def _returned(host: Host) -> HostTaskResult:
    """Guilty hosts return a value nested `depth` levels deep, `text_mib` MiB of text, or an
    object JSON cannot carry."""
    data = host.data
    if "depth" in data:
        nested: list[Any] = []
        for _ in range(data["depth"]):
            nested = [nested]
        return TaskSuccessResult(result=nested)
    if "text_mib" in data:
        return TaskSuccessResult(result=host.id + "x" * int(data["text_mib"] * MiB))
    if "opaque" in data:
        return TaskSuccessResult(result={"value": Opaque()})
    return TaskSuccessResult(result=host.id)


@task(name="returns")
class Returns:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> HostTaskResult:
        return _returned(host)


@task(name="returns_async")
class ReturnsAsync:
    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> HostTaskResult:
        return _returned(host)


_RETURN_TASKS = pytest.mark.parametrize(
    "task_class", [Returns, ReturnsAsync], ids=["start", "start_async"]
)


@_RETURN_TASKS
@pytest.mark.timeout(180)
@pytest.mark.usefixtures("no_tracebacks")
def test_a_result_too_deep_or_not_json_fails_only_its_host(
    target: Target, task_class: type
) -> None:
    near = sys.getrecursionlimit() - 5  # may pass the check, then fail a later step
    guilty = {
        "deep0": {"depth": 100_000},
        "deep1": {"depth": 100_000},
        "near0": {"depth": near},
        "near1": {"depth": near},
        "opaque0": {"opaque": True},
        "opaque1": {"opaque": True},
    }
    hosts = _guilty_then_innocent(guilty)
    # Hosts with a password: their results are masked, which walks the result too.
    for host_id in ("deep1", "near1", "fine0"):
        hosts[host_id]["password"] = "hunter2-secret"
    g = target.make(hosts)
    results = target.run(g, task_class)
    expected = {
        host_id: (TaskFailureKind.INTERNAL, "returned a result that is not JSON-serializable")
        for host_id in guilty
    }
    # A result just below the recursion limit either arrives whole, or fails its host at
    # whichever step ran out of stack.
    for host_id in ("near0", "near1"):
        result = results[host_id]
        if isinstance(result, TaskSuccessResult):
            value = result.result
            for _ in range(near):
                (value,) = value
            assert value == []
            del expected[host_id]
        else:
            expected[host_id] = (TaskFailureKind.INTERNAL, "maximum recursion depth exceeded")
    _only_guilty_failed(results, expected, checked=("near0", "near1"))
    assert "recursion" in results["deep1"].message
    assert "Opaque" in results["opaque0"].message
    target.next_run_passes(g)


@pytest.mark.parametrize("size", ["default", "1KiB"])
@pytest.mark.timeout(180)
@pytest.mark.usefixtures("no_tracebacks")
def test_a_result_over_max_result_size_fails_its_host_as_validation(
    target: Target, size: str
) -> None:
    """The default limit is 16 MiB; a node result over it fails its host with kind
    `validation`, naming its size and the limit."""
    if size == "default":
        guilty = {f"big{i}": {"text_mib": 17} for i in range(2)}
        options: dict[str, Any] = {}
        limit = "16 MiB"
    else:
        guilty = {f"big{i}": {"text_mib": 0.01} for i in range(2 * CONCURRENCY)}
        options = {"max_result_size": size}
        limit = "1 KiB"
    g = target.make(_guilty_then_innocent(guilty), **options)
    results = target.run(g, Returns)
    _only_guilty_failed(
        results,
        {
            host_id: (TaskFailureKind.VALIDATION, f"(runner.options.max_result_size: {limit})")
            for host_id in guilty
        },
    )
    message = results["big0"].message
    assert message.startswith("task 'returns' returned a result of "), message
    target.next_run_passes(g)


@pytest.mark.timeout(240)
@pytest.mark.usefixtures("no_tracebacks")
def test_six_hosts_of_fifty_megabytes_on_one_agent_all_arrive(target: Target) -> None:
    """300 MiB from one agent (the issue saw 500 MB break the stream): more than one gRPC
    message holds (256 MiB), so the agent splits its batches by size. Every result arrives
    whole."""
    if target.name == "serial":
        pytest.skip("no agent, no messages: serial keeps results in the process")
    hosts = {f"big{i}": {"data": {"text_mib": 50}} for i in range(6)}
    g = target.make(hosts, max_result_size="64MiB")
    results = target.run(g, Returns)
    assert results.failed_hosts == [], results.to_json()
    for host_id, result in results.hosts.items():
        value = result.result
        assert len(value) == len(host_id) + 50 * MiB
        assert value.startswith(host_id)
    del results, value
    target.next_run_passes(g)


# ---------------------------------------------------------------- deadlines that cancel


@task(name="sleeps_async")
class SleepsAsync:
    """Guilty hosts sleep for an hour; they leave a file behind when they start, and another
    when they are cancelled."""

    async def start_async(
        self, task: TaskInfo, host: Host, context: TaskRuntimeContext
    ) -> HostTaskResult:
        folder = host.data.get("folder")
        if folder:
            Path(folder, f"started-{host.id}").touch()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                Path(folder, f"cancelled-{host.id}").touch()
                raise
        return TaskSuccessResult(result=host.id)


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.parametrize("deadline", ["run_timeout", "task_timeout"])
@pytest.mark.timeout(180)
@pytest.mark.usefixtures("no_tracebacks")
def test_deadlines_cancel_coroutines_still_running(
    target: Target, deadline: str, tmp_path: Path
) -> None:
    """CONCURRENCY sleepers take every worker of the agent until the deadline cancels them;
    the innocent hosts run first. Had they been left running, the next run would find no
    worker free."""
    sleepers = {f"sleeper{i}": {"data": {"folder": str(tmp_path)}} for i in range(CONCURRENCY)}
    hosts = {**{f"fine{i}": {} for i in range(CONCURRENCY)}, **sleepers}
    seconds = 3.0 if deadline == "run_timeout" else 1.0  # serial: one sleeper after another
    g = target.make(hosts, **{deadline: seconds})
    results = target.run(g, SleepsAsync)
    if deadline == "run_timeout":
        text = f"the run did not finish within {seconds:g}s"
    else:
        text = "did not finish on host"
    _only_guilty_failed(results, {h: (TaskFailureKind.TIMEOUT, text) for h in sleepers})
    # Every sleeper that started is cancelled (under `serial`, those after the first one
    # never start: the run's deadline passed).
    started = [h for h in sleepers if (tmp_path / f"started-{h}").exists()]
    assert started
    _wait_for(lambda: all((tmp_path / f"cancelled-{h}").exists() for h in started))
    target.next_run_passes(g)
