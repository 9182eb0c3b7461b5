"""Nothing a task does can break an agent (issue 10), on real agent processes, under `serial`,
and on a `genja-coordinator serve` shared with another client.

Each case runs guilty hosts beside innocent ones, on one agent of `CONCURRENCY` workers (more
guilty hosts than workers, so a lost worker would stall the run), and checks that:

- the run ends within its deadline plus a margin, and every host has a result;
- only the guilty hosts failed, each with the expected kind and a one-line message;
- the next run on the same `Genja` passes in full (the agent's capacity is intact);
- on the server, another client's runs meanwhile all pass.

Part a: containment per host (what a task raises, what it returns), deadlines that cancel,
result size. Part b (at the end): supervision and liveness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
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
from genja_rpc._pool import resident_bytes
from tests.conftest import MakeGenja, _alive, agent_pids
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


# On the server only: its results cross both streams (agent to coordinator, coordinator to a
# remote client), where `agents` would test the first alone, for 9 s more; `serial` has none.
@pytest.mark.parametrize("target", ["server"], indirect=True)
@pytest.mark.timeout(240)
@pytest.mark.usefixtures("no_tracebacks")
def test_six_hosts_of_fifty_megabytes_on_one_agent_all_arrive(target: Target) -> None:
    """300 MiB from one agent (the issue saw 500 MB break the stream): more than one gRPC
    message holds (256 MiB), so the agent splits its batches by size; the same records then
    cross the coordinator's stream to the client. Every result arrives whole."""
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


# ==================================================================== part b
#
# Supervision and liveness: an agent that dies, is stuck, blocks its loop, eats memory or
# freezes is replaced under the same agent id; the hosts it was running fail with the cause,
# the hosts it had not begun move to the replacement and pass there. A frozen coordinator
# server is found by its clients' and agents' heartbeats. Each case has its own agent (or
# server): it replaces or freezes it.


def _hosts(count: int, data: dict[str, Any], **special: dict[str, Any]) -> dict[str, Any]:
    """`count` hosts h000.. with `data`, and `special` ones (name -> more data), sorted."""
    hosts: dict[str, Any] = {f"h{i:03d}": {"data": data} for i in range(count)}
    hosts.update({name: {"data": {**data, **more}} for name, more in special.items()})
    return dict(sorted(hosts.items()))


def _timed(run: Callable[[], genja.TaskResults]) -> tuple[genja.TaskResults, float]:
    started = time.monotonic()
    results = run()
    return results, time.monotonic() - started


def _failures(results: genja.TaskResults) -> dict[str, TaskFailureResult]:
    found = {}
    for host in results.failed_hosts:
        failure = results[host]
        assert isinstance(failure, TaskFailureResult)
        found[host] = failure
    return found


def _accounted(results: genja.TaskResults, hosts: dict[str, Any]) -> None:
    assert set(results.hosts) == set(hosts)
    assert set(results.passed_hosts) | set(results.failed_hosts) == set(hosts)


def _full_capacity(g: genja.Genja, hosts: dict[str, Any]) -> None:
    again = g.run_task(Innocent)
    assert again.host_summary().passed == len(hosts), _failures(again)


def _began_in(folder: Path, host: Host) -> None:
    """Leave a trace that `host` began in this process (`began-PID-HOST`)."""
    (folder / f"began-{os.getpid()}-{host.id}").touch()


def _began(folder: Path, pid: int) -> set[str]:
    return {p.name.split("-", 2)[2] for p in folder.glob(f"began-{pid}-*")}


def _replaced_mid_run(
    g: genja.Genja,
    task_class: type,
    folder: Path,
    *,
    guilty: str,
    message: str,
    deadline: float,
    at_least: int,
) -> None:
    """Run `task_class` on `g` (one local agent, host_concurrency 4), whose host `guilty` gets
    the agent replaced mid-run, and check: the run ends within `deadline` plus a margin, every
    host is accounted for, the agent was replaced under the same id, only hosts that had begun
    on it failed (or that its workers had just taken, a moment before their task code left a
    trace: at most one per worker), each with kind internal and a message matching `message`
    (a regex; {pid} is the old agent's pid), never ran on the replacement, and the hosts it had
    not begun (at least `at_least`) ran on the replacement and passed. Then the next run has
    full capacity."""
    hosts = list(g.hosts)
    g.run_task(Innocent)
    [before] = agent_pids(g).values()

    results, took = _timed(lambda: g.run_task(task_class))

    assert took < deadline + 60
    _accounted(results, dict.fromkeys(hosts))
    [after] = agent_pids(g).values()
    assert after != before, "replaced, under the same agent id"
    failures = _failures(results)
    assert guilty in failures
    began_before, began_after = _began(folder, before), _began(folder, after)
    assert not set(failures) & began_after
    assert len(set(failures) - began_before) <= 4
    queued = set(hosts) - began_before - set(failures)
    assert len(queued) >= at_least
    assert queued <= began_after & set(results.passed_hosts)
    pattern = re.compile(message.replace("{pid}", str(before)))
    for failure in failures.values():
        assert failure.kind is TaskFailureKind.INTERNAL
        assert pattern.fullmatch(failure.message), failure.message
    _full_capacity(g, dict.fromkeys(hosts))


@task(name="exits")
class ExitsTheAgent:
    """Host `boom` ends its agent process at once, before any report about it can leave."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        _began_in(Path(host.data["folder"]), host)
        if host.data.get("boom"):
            os._exit(1)
        time.sleep(0.05)
        return TaskSuccessResult()


def test_an_agent_that_exits_fails_only_its_running_hosts_and_the_queued_ones_move(
    make_genja: MakeGenja, tmp_path: Path
) -> None:
    hosts = _hosts(40, {"folder": str(tmp_path)}, h004x={"boom": True})
    _replaced_mid_run(
        make_genja(hosts, workers=1, host_concurrency=4),
        ExitsTheAgent,
        tmp_path,
        guilty="h004x",
        message=r"agent local-0 \(pid {pid}\) exited with status 1 while running this host",
        deadline=0,
        at_least=20,
    )


@task(name="hangs")
class HangsForever:
    """A blocking `start` that never returns on hosts marked `hang`."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        if host.data.get("hang"):
            time.sleep(10**6)
        return TaskSuccessResult()


def test_stuck_workers_get_their_agent_replaced_and_the_next_run_has_full_capacity(
    make_genja: MakeGenja,
) -> None:
    # More hosts that hang than the agent works on at once: each hang costs a thread for good.
    hangs = {f"h00{i}x": {"hang": True} for i in range(6)}
    hosts = _hosts(300, {}, **hangs)
    g = make_genja(hosts, workers=1, host_concurrency=4, task_timeout=2)
    g.run_task(Innocent)
    [before] = agent_pids(g).values()

    results, took = _timed(lambda: g.run_task(HangsForever))

    assert took < 2 * 6 + 60
    _accounted(results, hosts)
    # The agent was drained (no new hosts) once its stuck threads reached the limit, and
    # replaced when the hosts it was running were through: only the hangs failed, as timeouts.
    failures = _failures(results)
    assert set(failures) == set(hangs)
    for host, failure in failures.items():
        assert failure.kind is TaskFailureKind.TIMEOUT
        assert failure.message == f"task 'hangs' did not finish on host {host!r} within 2s"
    assert agent_pids(g)["local-0"] != before
    _full_capacity(g, hosts)


@task(name="blocks_the_loop")
class BlocksTheLoop:
    """`time.sleep` in `start_async` on host `block`: the agent's event loop stops."""

    async def start_async(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        _began_in(Path(host.data["folder"]), host)
        if host.data.get("block"):
            time.sleep(120)
        await asyncio.sleep(0.05)
        return TaskSuccessResult()


def test_a_blocked_event_loop_is_found_by_the_watchdog_and_the_agent_replaced(
    make_genja: MakeGenja, tmp_path: Path
) -> None:
    hosts = _hosts(40, {"folder": str(tmp_path)}, h004x={"block": True})
    _replaced_mid_run(
        make_genja(hosts, workers=1, host_concurrency=4, heartbeat_timeout=3),
        BlocksTheLoop,
        tmp_path,
        guilty="h004x",
        message=r"agent local-0 \(pid {pid}\) was replaced while running this host: "
        r"event loop blocked for \d+ s in host h004x",
        deadline=3,
        at_least=20,
    )


@task(name="eats_memory")
class EatsMemory:
    """Host `hog` allocates (and touches) 20 MiB every 20 ms, up to 1.5 GiB."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        _began_in(Path(host.data["folder"]), host)
        if host.data.get("hog"):
            chunks = []
            for _ in range(75):
                chunks.append(b"x" * (20 * 2**20))
                time.sleep(0.02)
            return TaskSuccessResult(summary="the memory limit never came")
        time.sleep(0.05)
        return TaskSuccessResult()


def test_an_agent_past_its_memory_limit_is_replaced(make_genja: MakeGenja, tmp_path: Path) -> None:
    hosts = _hosts(100, {"folder": str(tmp_path)}, h004x={"hog": True})
    g = make_genja(hosts, workers=1, host_concurrency=4, agent_memory_limit="300MiB")
    g.run_task(Innocent)
    resting = resident_bytes(agent_pids(g)["local-0"])
    assert 0 < resting < 300 * 2**20
    _replaced_mid_run(
        g,
        EatsMemory,
        tmp_path,
        guilty="h004x",
        # The hog is named among the hosts that were running (in run order, it comes first).
        message=r"agent local-0 \(pid {pid}\) was replaced while running this host: "
        r"memory limit 300 MiB exceeded \(resident [\d.]+ MiB\) while running hosts? "
        r"(h00[0-4], )*h004x\b.*",
        deadline=0,
        at_least=50,
    )


@task(name="gated")
class Gated:
    """Begins, then waits for the test to open the gate."""

    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        folder = Path(host.data["folder"])
        _began_in(folder, host)
        deadline = time.monotonic() + 60
        while not (folder / "gate").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return TaskSuccessResult()


class _Running:
    """A run on another thread."""

    def __init__(self, run: Callable[[], genja.TaskResults]) -> None:
        self._outcome: dict[str, genja.TaskResults] = {}
        self._thread = threading.Thread(target=lambda: self._outcome.update(r=run()))
        self._thread.start()

    def results(self, timeout: float = 120) -> genja.TaskResults:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the run did not end"
        return self._outcome["r"]


@contextlib.contextmanager
def _stopped(pid: int) -> Iterator[None]:
    """SIGSTOP `pid`; SIGCONT it at the end whatever happens (if it still exists)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def test_a_frozen_agent_is_found_by_its_heartbeat_killed_and_replaced(
    make_genja: MakeGenja, tmp_path: Path
) -> None:
    hosts = _hosts(30, {"folder": str(tmp_path)})
    g = make_genja(hosts, workers=1, host_concurrency=4, heartbeat_timeout=3)
    g.run_task(Innocent)
    [before] = agent_pids(g).values()
    run = _Running(lambda: g.run_task(Gated))
    _wait_for(lambda: len(_began(tmp_path, before)) == 4)

    with _stopped(before):
        frozen = time.monotonic()
        _wait_for(lambda: agent_pids(g)["local-0"] != before, timeout=3 + 60)
        found = time.monotonic() - frozen
    assert found < 3 + 60
    assert not _alive(before), "the frozen agent was killed"
    (tmp_path / "gate").touch()
    results = run.results()

    _accounted(results, hosts)
    failures = _failures(results)
    assert set(failures) == _began(tmp_path, before)
    pattern = re.compile(
        rf"agent local-0 \(pid {before}\) stopped answering (\d+) s ago and was replaced "
        "while running this host"
    )
    for failure in failures.values():
        assert failure.kind is TaskFailureKind.INTERNAL
        match = pattern.fullmatch(failure.message)
        assert match, failure.message
        assert int(match.group(1)) >= 3
    assert set(results.passed_hosts) == set(hosts) - set(failures)
    _full_capacity(g, hosts)


@task(name="pid")
class Pid:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> Any:
        return TaskSuccessResult(metadata={"pid": os.getpid()})


@pytest.fixture
def coordinator_server(tmp_path: Path) -> Iterator[CoordinatorServer]:
    """`genja-coordinator serve` with one local agent, taking remote agents of pool jump1,
    with a heartbeat timeout of 3 s; woken up (SIGCONT) before it is stopped."""
    server = start_server(tmp_path / "server", local_agents=1, args=["--heartbeat-timeout", "3"])
    try:
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.process.pid, signal.SIGCONT)
        server.close()


def test_a_client_finds_a_frozen_coordinator_server_by_its_heartbeat(
    coordinator_server: CoordinatorServer, tmp_path: Path
) -> None:
    server, address = coordinator_server.process, coordinator_server.address
    settings = genja.Settings.from_dict(
        {"runner": {"options": coordinator_server.runner_options(heartbeat_timeout=3)}}
    )
    hosts = _hosts(6, {"folder": str(tmp_path)})
    with genja.Genja.from_hosts(hosts, settings) as g:
        warm = g.run_task(Pid)
        assert warm.host_summary().passed == len(hosts)
        run = _Running(lambda: g.run_task(Gated))
        _wait_for(lambda: len(list(tmp_path.glob("began-*"))) == len(hosts))
        with _stopped(server.pid):
            frozen = time.monotonic()
            results = run.results()
            found = time.monotonic() - frozen
        assert found < 3 + 60
        _accounted(results, hosts)
        assert set(results.failed_hosts) == set(hosts)
        for failure in _failures(results).values():
            assert failure.kind is TaskFailureKind.INTERNAL
            assert re.fullmatch(
                rf"the coordinator at {re.escape(address)} stopped answering (\d+) s ago; "
                r"if it comes back, the run goes on there: `genja attach \w+` gets its "
                r"results before this host finished",
                failure.message,
            ), failure.message
        # Awake again, it serves the next run in full, on the same agent: the agent was
        # heard all along, only the coordinator was not listening.
        (tmp_path / "gate").touch()
        again = g.run_task(Pid)
        assert again.host_summary().passed == len(hosts)
        pids = {again[h].metadata["pid"] for h in hosts}  # type: ignore[union-attr]
        assert pids == {warm[h].metadata["pid"] for h in hosts}  # type: ignore[union-attr]


def test_a_remote_agent_that_stops_hearing_its_coordinator_reconnects(
    coordinator_server: CoordinatorServer,
) -> None:
    server = coordinator_server
    agent = server.start_agent("jump1-0", "jump1", cwd=Path(__file__).parents[2])
    said = server.folder / "agent-jump1-0.log"
    settings = genja.Settings.from_dict({"runner": {"options": server.runner_options()}})
    hosts = {f"edge{i}": {"data": {"agent_pool": "jump1"}} for i in range(4)}

    def passes(g: genja.Genja) -> bool:
        return g.run_task(Pid).host_summary().passed == len(hosts)

    with genja.Genja.from_hosts(hosts, settings) as g:
        assert passes(g)
        with _stopped(server.process.pid):
            _wait_for(lambda: "stopped answering" in said.read_text())
        _wait_for(lambda: passes(g))
    assert agent.poll() is None, "the same agent process reconnected"
    assert f"the coordinator at {server.address} stopped answering" in said.read_text()
    assert "Traceback" not in said.read_text()
