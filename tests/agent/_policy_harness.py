"""One node's task through the host pipeline with the default policies, in either driver, with
the connection cache faked (the end-to-end runs use real agents and sshd)."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

import genja
from agent._pipeline import ExecNode, HostPipeline, NodeTrace, tree_from_plan
from agent._policies import PolicySettings, default_policies
from genja._plan import plan_run
from genja._settings import RunnerRetrySettings
from genja.task import HostTaskResult

# The blocking driver runs whole trees of `start` methods in one thread; the async driver runs
# any tree (a blocking node in a worker thread). Blocking tasks are run in both.
DRIVERS = ("blocking", "async")


class FakeSession:
    """A connection: `id` tells logins apart."""

    def __init__(self, number: int) -> None:
        self.id = number

    def __repr__(self) -> str:
        return f"FakeSession({self.id})"


class Connections:
    """The connection cache, faked: one cached session per run (a single host and plugin);
    `refuse` logins are refused from now on (-1: all of them, a credential the task changed)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.refuse = 0
        self._current: FakeSession | None = None
        self._numbers = itertools.count(1)

    def connect(self, node: ExecNode, host: genja.Host) -> Any:
        if not node.info.connection_plugin_name:
            return None
        if self._current is None:
            self.calls.append("login")
            if self.refuse:
                self.refuse -= 1
                raise ConnectionRefusedError("the device refused the login")
            self._current = FakeSession(next(self._numbers))
        return self._current

    def disconnect(self, node: ExecNode, host: genja.Host) -> None:
        self.calls.append("disconnect")
        self._current = None


@dataclass(frozen=True)
class Reported:
    result: HostTaskResult
    attempts: int
    retries_exhausted: bool


def run(
    target: object,
    driver: str,
    *,
    dry_run: bool = False,
    retry: RunnerRetrySettings | None = None,
    connections: Connections | None = None,
) -> Reported:
    """The one node of `target`'s tree (depth 0), run for host `r1`."""
    connections = connections or Connections()
    settings = PolicySettings(retry=retry or RunnerRetrySettings(), dry_run=dry_run)
    pipeline = HostPipeline(
        tree_from_plan(plan_run(target, 0, dry_run=dry_run)),
        connect=connections.connect,
        disconnect=connections.disconnect,
        policies=default_policies(settings),
    )
    reported: list[Reported] = []

    def report(
        index: int, result: HostTaskResult, started: int, took: int, trace: NodeTrace | None
    ) -> None:
        attempts, exhausted = (1, False) if trace is None else trace.facts()
        reported.append(Reported(result, attempts, exhausted))

    host = genja.Host(id="r1")
    if driver == "blocking":
        assert pipeline.blocking_only
        pipeline.run_blocking(host, report)
    else:
        asyncio.run(pipeline.run_async(host, report))
    (only,) = reported
    return only
