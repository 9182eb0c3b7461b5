"""Live progress of a run: a rich progress bar on a terminal, plain lines anywhere else.

Both read the run's events; neither holds results back. They write to stderr, so stdout keeps
only the result tree (or JSON) and can be piped.
"""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from genja._cli._render import STYLES, detail
from genja._events import HostFinished, NodeFinished, RunEvent, RunStarted
from genja.task._results import HostTaskResult, TaskFailureResult, TaskStatus


class Display(Protocol):
    def __enter__(self) -> Display: ...
    def __exit__(self, *exc: object) -> None: ...
    def update(self, event: RunEvent) -> None: ...


class _Counts:
    """Hosts by outcome, and the one result per host worth a line: its first failure, else
    its root result."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.by_status = dict.fromkeys(TaskStatus, 0)
        self.shown: dict[str, tuple[tuple[str, ...], HostTaskResult]] = {}

    def update(self, event: RunEvent) -> HostFinished | None:
        if isinstance(event, RunStarted):
            self.total = len(event.host_ids)
        elif isinstance(event, NodeFinished):
            first = event.host_id not in self.shown
            if first or (
                isinstance(event.result, TaskFailureResult)
                and not isinstance(self.shown[event.host_id][1], TaskFailureResult)
            ):
                self.shown[event.host_id] = (event.task_path, event.result)
        elif isinstance(event, HostFinished):
            self.done += 1
            self.by_status[TaskStatus.PASSED if event.status.passed else event.status] += 1
            return event
        return None


class PlainLines:
    """One line per finished host, for logs and pipes:

    [ 2/10] failed   router2  deploy/validate: command: show run failed
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._counts = _Counts()

    def __enter__(self) -> PlainLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            self._counts.update(event)
            self._console.print(
                f"running {event.task_name} on {len(event.host_ids)} hosts{_run(event)}",
                highlight=False,
            )
            return
        finished = self._counts.update(event)
        if finished is None:
            return
        counts = self._counts
        width = len(str(counts.total))
        path, result = counts.shown[finished.host_id]
        about = detail(result)
        if len(path) > 1 and result.status is TaskStatus.FAILED:
            about = f"{'/'.join(path[1:])}: {about}"
        line = Text(f"[{counts.done:>{width}}/{counts.total}] ")
        line.append(f"{finished.status.value:<8}", style=STYLES[finished.status])
        line.append(f" {finished.host_id}")
        if about:
            line.append(f"  {about}")
        self._console.print(line, highlight=False, soft_wrap=True)


def _run(event: RunStarted) -> str:
    """`, run ID`: the id `genja attach` takes."""
    return f", run {event.run_id}" if event.run_id else ""


class _Rate(ProgressColumn):
    """Hosts finished per second since the run started (steadier than rich's sampled speed
    when hosts finish in bursts)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed
        if not elapsed or not task.completed:
            return Text("")
        return Text(f"{task.completed / elapsed:.1f} hosts/s", style="cyan")


class _Outcomes(ProgressColumn):
    def __init__(self, counts: _Counts) -> None:
        super().__init__()
        self._counts = counts

    def render(self, task: Task) -> Text:
        by = self._counts.by_status
        return Text.assemble(
            (f"✓ {by[TaskStatus.PASSED]}", STYLES[TaskStatus.PASSED]),
            "  ",
            (f"✗ {by[TaskStatus.FAILED]}", STYLES[TaskStatus.FAILED]),
            "  ",
            (f"- {by[TaskStatus.SKIPPED]}", STYLES[TaskStatus.SKIPPED]),
        )


class ProgressBar:
    """hosts done / total, passed / failed / skipped, rate, elapsed and ETA; each failure is
    printed above the bar as it happens."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._counts = _Counts()
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _Outcomes(self._counts),
            _Rate(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=8,
        )
        self._task = self._progress.add_task("starting", total=None)

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.refresh()
        self._progress.stop()

    def update(self, event: RunEvent) -> None:
        finished = self._counts.update(event)
        if isinstance(event, RunStarted):
            self._progress.update(self._task, description=event.task_name, total=self._counts.total)
            if event.run_id:
                self._progress.console.print(f"run {event.run_id}", highlight=False)
            return
        if finished is None:
            return
        self._progress.update(self._task, completed=self._counts.done)
        if finished.status is TaskStatus.FAILED:
            path, result = self._counts.shown[finished.host_id]
            where = "/".join(path[1:])
            self._progress.console.print(
                Text.assemble(
                    ("✗ ", STYLES[TaskStatus.FAILED]),
                    (finished.host_id, "bold"),
                    f"  {where + ': ' if where else ''}{detail(result)}",
                )
            )
