"""Argument parsing, and the one place where errors become messages and exit statuses:

0  every host passed or was skipped
1  some host failed, or the run could not be carried out
2  usage or configuration error (bad option, settings, inventory, task or processor name)
128 + N  stopped by signal N (130 SIGINT, 143 SIGTERM), after showing the partial results
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from genja._cli import _commands
from genja._cli._commands import EXIT_FAILED, EXIT_USAGE
from genja._cli._signals import Interrupted
from genja._errors import ConfigurationError, GenjaError, TaskDefinitionError
from genja._settings import MAX_WORKER_COUNT

_DESCRIPTION = """\
Run Python task classes against an inventory of network devices and servers, on a pool of
local agent processes."""

_RUN_EPILOG = """\
examples:
  genja run tasks.py:CollectFacts -s settings.yaml
  genja run tasks.py:DeployConfig -s settings.yaml --filter data.site.name=^dc --max-depth 1
  genja run mypkg.tasks:Backup -s settings.yaml --workers 8 --json results.json
  genja run tasks.py:Backup -s settings.yaml -o path=/backups -o keep=7 -o ssh.port=2222
  genja run tasks.py:Backup -s settings.yaml --options-file backup.yaml -o keep=30
  genja run tasks.py:DeployConfig -s settings.yaml --dry-run

filters are KEY=REGEX, searched (re.search) in a host field or its data: platform=^ios,
groups=core, data.site.name=^dc (or site.name=^dc). Repeat --filter to require several.

options (-o KEY=VALUE, --options-file) are merged over the task's declared options for this
run; the task reads them as task.options. VALUE is JSON when it parses (3, true, [1, 2]),
else a string; a dotted KEY sets a nested value. -o goes over the file, later -o over earlier.

exit status: 0 every host passed or was skipped, 1 some host failed, 2 usage or
configuration error, 130 / 143 stopped by SIGINT (Ctrl-C) / SIGTERM: unfinished hosts are
cancelled and the results so far are shown and written."""


def _parser() -> argparse.ArgumentParser:
    from genja import __version__

    parser = argparse.ArgumentParser(
        prog="genja",
        description=_DESCRIPTION,
        epilog="Run 'genja COMMAND --help' for a command's options.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"genja {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def settings_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "-s",
            "--settings",
            metavar="FILE",
            help="settings file, YAML or JSON (default: $GENJA_SETTINGS, else ./settings.yaml)",
        )
        command.add_argument(
            "-f",
            "--filter",
            metavar="KEY=REGEX",
            action="append",
            default=[],
            help="select hosts whose KEY matches REGEX; repeat to require several",
        )

    run = commands.add_parser(
        "run",
        help="run a task over the selected hosts and show the results",
        description="Run a task (and its sub-tasks) over the selected hosts, showing progress\n"
        "as hosts finish, then the result tree and a summary.",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "task",
        metavar="TASK",
        help="the task class: FILE.py:Class or package.module:Class "
        "(the class may be left out when the module has one root task)",
    )
    settings_option(run)
    run.add_argument(
        "--max-depth",
        type=_natural(0),
        metavar="N",
        help="run sub-tasks down to depth N; 0 runs only TASK (default: runner.max_task_depth)",
    )
    run.add_argument(
        "-o",
        "--option",
        dest="options",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a task option for this run (VALUE: JSON, else a string); repeatable",
    )
    run.add_argument(
        "--options-file",
        metavar="FILE",
        help="task options for this run from a YAML or JSON mapping (-o goes over it)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="call each task's dry_run instead of start: report what would change, change "
        "nothing (a task without dry-run support fails its hosts)",
    )
    run.add_argument(
        "--workers",
        type=_natural(1, MAX_WORKER_COUNT),
        metavar="N",
        help="number of local agent processes (default: runner.worker_count, else CPU count)",
    )
    _result_options(run)
    run.set_defaults(handler=_commands.run)

    attach = commands.add_parser(
        "attach",
        help="follow a run of a coordinator server again, and show its results",
        description="Attach to a run this client's identity started on the coordinator server "
        "that runner.options.coordinator names (after the client that started it was killed or "
        "lost its network): the results it had are shown again, then the rest as hosts finish, "
        "then the whole result tree and a summary, as `genja run` shows them. `genja run` "
        "prints each run's id when it starts; the server keeps a finished run for its "
        "--keep-runs (default 1h). Ctrl-C detaches: the run goes on.",
    )
    attach.add_argument("run_id", metavar="RUN_ID", help="the run's id")
    _coordinator_settings_option(attach)
    _result_options(attach)
    attach.set_defaults(handler=_commands.attach)

    inventory = commands.add_parser(
        "inventory",
        help="list the selected hosts with their resolved fields",
        description="List the selected hosts with the fields they resolve to after groups and "
        "defaults are applied. Passwords are masked.",
    )
    settings_option(inventory)
    inventory.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inventory.set_defaults(handler=_commands.inventory)

    agents = commands.add_parser(
        "agents",
        help="list a coordinator server's pools and agents, and what each is doing",
        description="List the pools of the coordinator server that runner.options.coordinator "
        "names, the agents connected to it (id, host, genja version, protocol, pid, connected "
        "since) and, per agent, the hosts it works on and the connections it holds open.",
    )
    _coordinator_settings_option(agents)
    agents.add_argument("--json", action="store_true", help="print JSON instead of a table")
    agents.set_defaults(handler=_commands.agents)

    version = commands.add_parser("version", help="show genja's version and its runtime's")
    version.set_defaults(handler=_commands.version)
    return parser


def _coordinator_settings_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "-s",
        "--settings",
        metavar="FILE",
        help="settings file naming the coordinator (default: $GENJA_SETTINGS, else "
        "./settings.yaml)",
    )


def _result_options(command: argparse.ArgumentParser) -> None:
    output = command.add_mutually_exclusive_group()
    output.add_argument(
        "--json",
        metavar="FILE",
        help="also write the result tree as JSON to FILE ('-': to stdout, the tree goes to stderr)",
    )
    output.add_argument(
        "--jsonl",
        metavar="FILE",
        help="also write one JSON line per host and task to FILE, as results arrive",
    )
    command.add_argument(
        "--show",
        choices=("all", "failed", "none"),
        default="all",
        help="hosts to list in the result tree (default: all)",
    )


def _natural(minimum: int, maximum: int | None = None) -> type[int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {value}")
        return value

    return parse  # type: ignore[return-value]


def _error(prefix: str, message: str) -> None:
    Console(stderr=True).print(
        Text.assemble((f"genja: {prefix}: ", "bold red"), message),
        highlight=False,
        soft_wrap=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except (ConfigurationError, TaskDefinitionError) as error:
        _error("error", str(error))
        return EXIT_USAGE
    except GenjaError as error:
        _error("run failed", str(error))
        return EXIT_FAILED
    except Interrupted as interrupted:
        _error("interrupted", interrupted.message)
        return interrupted.status
    except KeyboardInterrupt:  # outside a run's signal handling
        _error("interrupted", "SIGINT")
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
