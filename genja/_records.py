"""Host records: how a runtime reports one host's results at once, and how they are read lazily.

Every host runs the whole planned tree, node after node in run order (a pre-order walk of the
plan, children in declared order), so what a host has finished is always a prefix of the plan's
nodes. A `HostRecord` carries a contiguous slice of that prefix: usually the whole tree at once
(`first_node == 0`, `done`), one node at a time when results are streamed as they happen.

A record's `statuses` (one status code per node) are readable without decoding anything else:
summaries and the host views of `TaskResults` use only them. A result that passed with warnings
has the PASSED code: the code says how a host counts, the result says what it carries.
`results()` decodes the node results (with their execution metadata) the first time someone
reads them, so a run over 10,000 hosts does not build 130,000 result objects until they are
wanted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from genja.task._results import (
    ExecutionMetadata,
    HostTaskResult,
    TaskFailureResult,
    TaskStatus,
    TaskSuccessResult,
)

# Status codes, one byte per node in a record. They match `genja.v1.NodeStatus`.
MISSING, PASSED, FAILED, SKIPPED = 0, 1, 2, 3
STATUS_OF_CODE = {PASSED: TaskStatus.PASSED, FAILED: TaskStatus.FAILED, SKIPPED: TaskStatus.SKIPPED}


def status_code(result: HostTaskResult) -> int:
    if isinstance(result, TaskSuccessResult):
        return PASSED
    if isinstance(result, TaskFailureResult):
        return FAILED
    return SKIPPED


class HostRecord:
    """Results of nodes `first_node .. first_node + len(statuses) - 1` of one host.

    `done` marks the host's last record: its whole tree is accounted for. Subclasses say how
    `results()` gets the result objects (already made, or decoded from the wire)."""

    __slots__ = ("done", "first_node", "host_id", "statuses")

    def __init__(self, host_id: str, first_node: int, statuses: bytes, done: bool) -> None:
        self.host_id = host_id
        self.first_node = first_node
        self.statuses = statuses
        self.done = done

    @property
    def end_node(self) -> int:
        return self.first_node + len(self.statuses)

    def results(self) -> Sequence[HostTaskResult]:
        """One result per node of the record, in run order, with execution metadata."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.host_id!r}, nodes {self.first_node}..{self.end_node - 1}"
            f"{', done' if self.done else ''})"
        )


class DecodedRecord(HostRecord):
    """A record made in this process: the results exist already; timing is attached on first
    read (attaching copies each result, which the hot path should not pay for)."""

    __slots__ = (
        "_agent",
        "_attempts",
        "_dry_run",
        "_durations",
        "_exhausted",
        "_results",
        "_started",
    )

    def __init__(
        self,
        host_id: str,
        first_node: int,
        results: Sequence[HostTaskResult],
        done: bool,
        *,
        started_ns: Sequence[int] = (),
        durations_ns: Sequence[int] = (),
        attempts: Sequence[int] = (),
        exhausted: Sequence[bool] = (),
        agent: str | None = None,
        dry_run: bool = False,
    ) -> None:
        """`attempts` and `exhausted` (retries ran out), one per node, may be empty: every
        node ran once. `dry_run`: the nodes ran in a dry run."""
        super().__init__(host_id, first_node, bytes(map(status_code, results)), done)
        self._results: Sequence[HostTaskResult] = results
        self._started = started_ns
        self._durations = durations_ns
        self._attempts = attempts
        self._exhausted = exhausted
        self._agent = agent
        self._dry_run = dry_run

    def results(self) -> Sequence[HostTaskResult]:
        if self._started:
            count = len(self._results)
            attempts = self._attempts or (1,) * count
            exhausted = self._exhausted or (False,) * count
            self._results = tuple(
                with_timing(
                    result,
                    started,
                    took,
                    self._agent,
                    attempts=tries,
                    exhausted=ran_out,
                    dry_run=self._dry_run,
                )
                for result, started, took, tries, ran_out in zip(
                    self._results, self._started, self._durations, attempts, exhausted, strict=True
                )
            )
            self._started = ()
        return self._results


def with_timing(
    result: HostTaskResult,
    started_ns: int,
    duration_ns: int,
    agent: str | None,
    *,
    attempts: int = 1,
    exhausted: bool = False,
    dry_run: bool = False,
) -> HostTaskResult:
    """`result` with its execution metadata: started at `started_ns` (Unix time, ns), lasting
    `duration_ns`, after `attempts` calls (`exhausted`: retries ran out), in a dry run or
    not."""
    metadata = ExecutionMetadata(
        started_at=datetime.fromtimestamp(started_ns / 1e9, tz=timezone.utc),
        duration=duration_ns / 1e9,
        agent=agent,
        attempts=attempts,
        retries_exhausted=exhausted,
        dry_run=dry_run,
    )
    return with_metadata(result, metadata)


def with_metadata(result: HostTaskResult, metadata: ExecutionMetadata | None) -> HostTaskResult:
    """A copy of `result` carrying `metadata`."""
    # Results are frozen and validated at construction; their fields are valid already, so
    # the copy skips __init__.
    copy = object.__new__(type(result))
    for name in type(result).__slots__:
        object.__setattr__(copy, name, getattr(result, name))
    object.__setattr__(copy, "execution_metadata", metadata)
    return copy


def failure_record(
    host_id: str, first_node: int, node_count: int, failure: TaskFailureResult
) -> DecodedRecord:
    """The same failure for nodes `first_node ..` of a host (the rest of its tree)."""
    return DecodedRecord(host_id, first_node, (failure,) * (node_count - first_node), True)
