"""The commands: `run`, `inventory`, `agents` and `version`. Each returns the exit status."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from rich.console import Console

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
from genja._errors import ConfigurationError
from genja._events import NodeFinished, ProcessorFailed, RunFinished
from genja._genja import Genja
from genja._inventory import Inventory
from genja._result_tree import TaskResults
from genja._run_options import TaskRunOptions
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
    out, err = _consoles()
    settings = _settings(args)
    task = load_task(args.task)
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
        jsonl = None
        if args.jsonl is not None:
            from genja._builtin_processors import JsonlProcessor

            Path(args.jsonl).parent.mkdir(parents=True, exist_ok=True)
            Path(args.jsonl).write_text("", encoding="utf-8")
            jsonl = JsonlProcessor(args.jsonl)
        display: Display = ProgressBar(err) if err.is_terminal else PlainLines(err)
        failures: list[ProcessorFailed] = []
        results: TaskResults | None = None
        started = time.monotonic()
        try:
            with display:
                dry_run = TaskRunOptions(dry_run=args.dry_run)
                events = selected.stream_task(
                    task, args.max_depth, options=options, run_options=dry_run
                )
                for event in events:
                    display.update(event)
                    if isinstance(event, NodeFinished) and jsonl is not None:
                        jsonl.write(event.host_id, event.task_path, event.result)
                    elif isinstance(event, ProcessorFailed):
                        failures.append(event)
                    elif isinstance(event, RunFinished):
                        results = event.results
        finally:
            if jsonl is not None:
                jsonl.close()
    assert results is not None
    seconds = time.monotonic() - started
    json_to_stdout = args.json == "-"
    if args.json is not None:
        text = results.to_json(pretty=True) + "\n"
        if json_to_stdout:
            sys.stdout.write(text)
        else:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(text, encoding="utf-8")
    report = err if json_to_stdout else out
    if args.show != "none":
        report.print(result_tree(results, failed_only=args.show == "failed"))
    if failures:
        report.print(processor_failures(failures))
    report.print(summary_line(results, seconds, dry_run=args.dry_run), highlight=False)
    return EXIT_FAILED if results.failed_hosts else EXIT_OK


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
    settings = _settings(args)
    if not settings.runner.options.coordinator:
        raise ConfigurationError(
            f"{settings.source or 'settings'}: runner.options.coordinator is not set: "
            "`genja agents` lists the agents of a coordinator server (genja-coordinator serve)"
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
