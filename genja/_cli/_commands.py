"""The commands: `run`, `attach`, `inventory`, `agents` and `version`. Each returns the exit
status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from rich.console import Console

from genja._builtin_processors import JsonlProcessor
from genja._cli._loading import load_task
from genja._cli._options import run_options
from genja._cli._progress import Display, PlainLines, ProgressBar
from genja._cli._render import (
    agents_table,
    host_record,
    inventory_table,
    processor_failures,
    result_tree,
    summary_line,
)
from genja._cli._selection import apply_filters
from genja._cli._signals import RunSignals
from genja._errors import ConfigurationError, RunError
from genja._events import NodeFinished, ProcessorFailed, RunFinished, RunStarted
from genja._genja import Genja
from genja._inventory import Inventory
from genja._result_tree import TaskResults
from genja._run_options import TaskRunOptions
from genja._run_stream import RunStream
from genja._runtimes import DEFAULT_RUNNER, load_runner
from genja._settings import Settings
from genja._status import StatusSource

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

SETTINGS_ENV = "GENJA_SETTINGS"


def _consoles() -> tuple[Console, Console]:
    """stdout for results, stderr for progress and messages. Off a terminal, lines are not
    wrapped at 80 columns (logs are read in editors, not in the terminal that wrote them)."""
    out = Console()
    err = Console(stderr=True)
    for console in (out, err):
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console.width = 200
    return out, err


def _settings(args: argparse.Namespace) -> Settings:
    path = args.settings or os.environ.get(SETTINGS_ENV)
    if path is None:
        if not Path("settings.yaml").is_file():
            raise ConfigurationError(
                "no settings file: pass -s settings.yaml (or set GENJA_SETTINGS)"
            )
        path = "settings.yaml"
    settings = Settings.from_file(path)
    workers = getattr(args, "workers", None)
    if workers is not None:
        settings = dataclasses.replace(
            settings, runner=dataclasses.replace(settings.runner, worker_count=workers)
        )
    return settings


def _selected(genja: Genja, filters: list[str]) -> Genja:
    return apply_filters(genja, filters)


# ---------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    with RunSignals() as signals:
        status = _run(args, signals)
        signals.check()
    return status


def _run(args: argparse.Namespace, signals: RunSignals) -> int:
    _, err = _consoles()
    settings = _settings(args)
    task = load_task(args.task)
    outputs = _Outputs(args)  # before any agent starts: a wrong path fails fast
    options = run_options(args.options, args.options_file)
    genja = Genja.from_settings(settings)  # agents start while the inventory loads
    with genja:
        selected = _selected(genja, args.filter)
        if not selected.hosts:
            raise ConfigurationError(
                f"no hosts selected: the filters match none of the {len(genja.hosts)} hosts"
                if args.filter
                else f"{settings.source}: the inventory has no hosts"
            )
        dry_run = TaskRunOptions(dry_run=args.dry_run)
        signals.stream = selected.stream_task(
            task, args.max_depth, options=options, run_options=dry_run
        )
        shown = _follow(signals.stream, err, outputs)
    return _report(args, outputs, shown)


@dataclasses.dataclass
class _Shown:
    """What a run's events left for the report."""

    results: TaskResults | None = None
    failures: list[ProcessorFailed] = dataclasses.field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0


def _follow(stream: RunStream, err: Console, outputs: _Outputs) -> _Shown:
    """Show a run's progress as its events come, writing --jsonl as they do."""
    display: Display = ProgressBar(err) if err.is_terminal else PlainLines(err)
    shown = _Shown()
    started = time.monotonic()
    try:
        with display:
            for event in stream:
                display.update(event)
                if isinstance(event, NodeFinished):
                    outputs.node(event)
                elif isinstance(event, ProcessorFailed):
                    shown.failures.append(event)
                elif isinstance(event, RunStarted):
                    shown.dry_run = event.dry_run
                elif isinstance(event, RunFinished):
                    shown.results = event.results
    finally:
        outputs.close()
    shown.seconds = time.monotonic() - started
    return shown


def _report(args: argparse.Namespace, outputs: _Outputs, shown: _Shown) -> int:
    """The tree (--show, --json), processor failures and the summary line; the exit status."""
    out, err = _consoles()
    results = shown.results
    assert results is not None
    outputs.tree(results)
    report = err if outputs.json_to_stdout else out
    if args.show != "none":
        report.print(result_tree(results, failed_only=args.show == "failed"))
    if shown.failures:
        report.print(processor_failures(shown.failures))
    report.print(summary_line(results, shown.seconds, dry_run=shown.dry_run), highlight=False)
    outputs.check()
    return EXIT_FAILED if results.failed_hosts else EXIT_OK


class _Outputs:
    """`--json` and `--jsonl`. Their files are checked before the run, so a wrong path costs
    no results; one that fails later (a full disk) is reported after the results are shown."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.json_to_stdout = args.json == "-"
        self._json = None if args.json in (None, "-") else _writable(args.json, "--json")
        self._jsonl: JsonlProcessor | None = None
        if args.jsonl is not None:
            self._jsonl = JsonlProcessor(_writable(args.jsonl, "--jsonl", truncate=True))
        self._failed: list[str] = []

    def node(self, event: NodeFinished) -> None:
        if self._jsonl is not None:
            try:
                self._jsonl.write(event.host_id, event.task_path, event.result)
            except OSError as error:
                self._fail("--jsonl", self._jsonl.path, error)
                jsonl, self._jsonl = self._jsonl, None
                with contextlib.suppress(OSError):  # the same error again
                    jsonl.close()

    def close(self) -> None:
        if self._jsonl is not None:
            try:
                self._jsonl.close()
            except OSError as error:
                self._fail("--jsonl", self._jsonl.path, error)

    def tree(self, results: TaskResults) -> None:
        if self.json_to_stdout:
            sys.stdout.write(results.to_json(pretty=True) + "\n")
        elif self._json is not None:
            try:
                self._json.write_text(results.to_json(pretty=True) + "\n", encoding="utf-8")
            except OSError as error:
                self._fail("--json", self._json, error)

    def check(self) -> None:
        if self._failed:
            raise RunError(f"cannot write {'; '.join(self._failed)} (the results are shown above)")

    def _fail(self, option: str, path: Path, error: OSError) -> None:
        self._failed.append(f"{option} {path}: {error.strerror or error}")


def _writable(text: str, option: str, *, truncate: bool = False) -> Path:
    """`text` as a path that can be written (made empty with `truncate`), its folder made."""
    path = Path(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w" if truncate else "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise ConfigurationError(f"{option} {path}: cannot write: {error.strerror}") from None
    return path


# ---------------------------------------------------------------- attach


def attach(args: argparse.Namespace) -> int:
    detached = "detached from the run, which goes on at the coordinator; the results are partial"
    with RunSignals(stopped=detached) as signals:
        status = _attach(args, signals)
        signals.check()
    return status


def _attach(args: argparse.Namespace, signals: RunSignals) -> int:
    _, err = _consoles()
    settings = _coordinator_settings(args, "`genja attach` follows a run of a coordinator server")
    outputs = _Outputs(args)
    with Genja(settings=settings) as genja:
        signals.stream = genja.stream_attach(args.run_id)
        shown = _follow(signals.stream, err, outputs)
    return _report(args, outputs, shown)


def _coordinator_settings(args: argparse.Namespace, what: str) -> Settings:
    settings = _settings(args)
    if not settings.runner.options.coordinator:
        raise ConfigurationError(
            f"{settings.source or 'settings'}: runner.options.coordinator is not set: {what} "
            "(genja-coordinator serve)"
        )
    return settings


# ---------------------------------------------------------------- inventory


def inventory(args: argparse.Namespace) -> int:
    out, _ = _consoles()
    settings = _settings(args)
    genja = Genja(Inventory.from_settings(settings), settings)
    selected = _selected(genja, args.filter)
    if args.json:
        records = {host_id: host_record(host) for host_id, host in selected.hosts.items()}
        sys.stdout.write(json.dumps(records, indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        out.print(inventory_table(selected.hosts, len(genja.hosts)))
    return EXIT_OK


# ---------------------------------------------------------------- agents


def agents(args: argparse.Namespace) -> int:
    out, _ = _consoles()
    settings = _coordinator_settings(
        args, "`genja agents` lists the agents of a coordinator server"
    )
    runtime = load_runner(DEFAULT_RUNNER)(settings)
    try:
        if not isinstance(runtime, StatusSource):
            raise ConfigurationError(f"runner {DEFAULT_RUNNER!r} cannot list its agents")
        status = asyncio.run(runtime.status())
    finally:
        runtime.close()
    if args.json:
        sys.stdout.write(json.dumps(status.to_dict(), indent=2) + "\n")
    else:
        out.print(agents_table(status))
    return EXIT_OK


# ---------------------------------------------------------------- version


def version(args: argparse.Namespace) -> int:
    from genja import __version__

    parts = [f"python {platform.python_version()}"]
    for dist in ("grpcio", "protobuf", "rich"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    sys.stdout.write(f"genja {__version__} ({', '.join(parts)})\n")
    return EXIT_OK
