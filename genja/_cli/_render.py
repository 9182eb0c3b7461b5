"""What the `genja` command prints: the result tree, the summary line, the inventory and agents
tables.

Everything is built from rich `Text` objects, never from markup strings, so a task's summary
or a device's error message is shown as it is, brackets included.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from genja._events import ProcessorFailed
from genja._host import Host
from genja._result_tree import TaskResults
from genja._secrets import mask
from genja._status import CoordinatorStatus
from genja.task._results import (
    HostTaskResult,
    TaskFailureResult,
    TaskStatus,
    TaskSuccessResult,
)

STYLES = {
    TaskStatus.PASSED: "green",
    TaskStatus.PASSED_WITH_WARNINGS: "green",
    TaskStatus.FAILED: "bold red",
    TaskStatus.SKIPPED: "yellow",
}
MARKS = {
    TaskStatus.PASSED: "✓",
    TaskStatus.PASSED_WITH_WARNINGS: "✓",
    TaskStatus.FAILED: "✗",
    TaskStatus.SKIPPED: "-",
}


def detail(result: HostTaskResult) -> str:
    """One line about a result: the summary, the failure's kind and message, or the skip."""
    if isinstance(result, TaskSuccessResult):
        return result.summary or ""
    if isinstance(result, TaskFailureResult):
        retry = " (retryable)" if result.retryable else ""
        return f"{result.kind.value}: {result.message}{retry}"
    return " - ".join(part for part in (result.reason, result.message) if part)


def duration(seconds: float) -> str:
    """`850µs`, `12ms`, `1.25s`, `3m04s`: short, and precise where it matters."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def status_text(status: TaskStatus) -> Text:
    return Text(f"{MARKS[status]} {status.value}", style=STYLES[status])


def _counts(results: TaskResults) -> Text:
    summary = results.task_summary().hosts
    text = Text()
    for status, count in (
        (TaskStatus.PASSED, summary.passed),
        (TaskStatus.FAILED, summary.failed),
        (TaskStatus.SKIPPED, summary.skipped),
    ):
        if text:
            text.append(", ", style="dim")
        text.append(f"{count} {status.value}", style=STYLES[status] if count else "dim")
    return text


def _host_line(host_id: str, result: HostTaskResult) -> Text:
    line = Text()
    line.append(f"{MARKS[result.status]} ", style=STYLES[result.status])
    line.append(host_id, style="bold")
    about = detail(result)
    if about:
        line.append("  ")
        line.append(about, style="red" if result.status is TaskStatus.FAILED else "")
    if isinstance(result, TaskSuccessResult) and result.changed:
        line.append("  changed", style="cyan")
    execution = result.execution_metadata
    if execution is not None:
        line.append(f"  {duration(execution.duration)}", style="dim")
        if execution.retried:
            line.append(f"  {execution.attempts} attempts", style="dim")
        if execution.retries_exhausted:
            line.append("  retries exhausted", style="yellow")
    warnings = () if result.status is TaskStatus.SKIPPED else result.warnings  # type: ignore[union-attr]
    for warning in warnings:
        line.append(f"\n  warning: {warning}", style="yellow")
    return line


def result_tree(results: TaskResults, *, failed_only: bool = False) -> Tree:
    """Each task node with its counts, its hosts below (coloured status, summary or failure),
    then its sub-tasks, indented."""
    label = Text.assemble((results.task_name, "bold"), "  ", _counts(results))
    tree = Tree(label, guide_style="dim")
    _fill(tree, results, failed_only)
    return tree


def _fill(tree: Tree, results: TaskResults, failed_only: bool) -> None:
    for host_id, result in results.hosts.items():
        if failed_only and result.status is not TaskStatus.FAILED:
            continue
        tree.add(_host_line(host_id, result))
    for sub in results.sub_tasks.values():
        branch = tree.add(Text.assemble((sub.task_name, "bold"), "  ", _counts(sub)))
        _fill(branch, sub, failed_only)


def summary_line(results: TaskResults, seconds: float, *, dry_run: bool = False) -> Text:
    """`4 hosts: 3 passed, 1 failed, 0 skipped in 2.3s`, over each host's whole tree; a dry
    run says so."""
    hosts = results.host_summary()
    text = Text.assemble(
        (f"{hosts.total} host{'s' if hosts.total != 1 else ''}: ", "bold"),
    )
    for status, count in (
        (TaskStatus.PASSED, hosts.passed),
        (TaskStatus.FAILED, hosts.failed),
        (TaskStatus.SKIPPED, hosts.skipped),
    ):
        if status is not TaskStatus.PASSED:
            text.append(", ")
        text.append(f"{count} {status.value}", style=STYLES[status] if count else "")
    text.append(f" in {seconds:.1f}s")
    if dry_run:
        text.append(" (dry run)", style="bold")
    return text


def processor_failures(failures: Iterable[ProcessorFailed]) -> RenderableType:
    lines = []
    for failure in failures:
        where = f"task {failure.task_name!r}"
        if failure.host_id is not None:
            where += f", host {failure.host_id!r}"
        lines.append(
            Text.assemble(
                ("processor error: ", "bold yellow"),
                f"{failure.processor}.{failure.hook} ({where}): {failure.error}",
            )
        )
    return Group(*lines)


# ---------------------------------------------------------------- inventory


def host_record(host: Host) -> dict[str, Any]:
    """A host's resolved fields for display, with every secret masked (genja._secrets)."""
    record: dict[str, Any] = {
        "hostname": host.hostname,
        "port": host.port,
        "username": host.username,
        "password": host.password,
        "platform": host.platform,
        "groups": list(host.groups),
        "data": dict(host.data),
    }
    if host.connection_options:
        record["connection_options"] = {
            plugin: {
                "hostname": options.hostname,
                "port": options.port,
                "username": options.username,
                "password": options.password,
                "platform": options.platform,
                "extras": dict(options.extras),
            }
            for plugin, options in host.connection_options.items()
        }
    masked: dict[str, Any] = mask(record, host.secret_values())
    return masked


def inventory_table(hosts: Mapping[str, Host], total: int) -> Table:
    table = Table(
        title=f"{len(hosts)} of {total} host{'s' if total != 1 else ''}",
        title_justify="left",
        header_style="bold",
    )
    for column in ("host", "hostname", "port", "platform", "username", "password", "groups"):
        table.add_column(column, overflow="fold")
    table.add_column("data", overflow="fold")
    for host_id, host in hosts.items():
        record = host_record(host)
        table.add_row(
            Text(host_id, style="bold"),
            Text(record["hostname"] or ""),
            Text("" if record["port"] is None else str(record["port"])),
            Text(record["platform"] or ""),
            Text(record["username"] or ""),
            Text(record["password"] or "", style="dim"),
            Text(", ".join(record["groups"])),
            Text(json.dumps(record["data"], default=str) if record["data"] else ""),
        )
    return table


def _age(seconds: float) -> str:
    """`42s`, `3m04s`, `2h05m`, `3d04h`."""
    seconds = max(int(seconds), 0)
    for unit, size, small, small_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}{seconds % size // small_size:02d}{small}"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _count(value: int | None) -> Text:
    return Text("?", style="yellow") if value is None else Text(str(value))


def agents_table(status: CoordinatorStatus) -> RenderableType:
    """A heading line, then one row per agent, by pool; a pool without agents gets a row that
    says so. Counts an agent did not give in time show as `?`."""
    agents, pools = len(status.agents), len(status.pools)
    heading = Text(
        f"coordinator {status.address} (genja {status.version}, protocol {status.protocol}): "
        f"{agents} agent{'s' if agents != 1 else ''} in {pools} pool{'s' if pools != 1 else ''}, "
        f"{status.runs} run{'s' if status.runs != 1 else ''} in progress"
    )
    table = Table(header_style="bold")
    for column in ("pool", "agent", "host", "genja", "protocol", "pid", "connected since"):
        table.add_column(column, overflow="fold")
    for column in ("in flight", "connections", "runs"):
        table.add_column(column, justify="right")
    now = datetime.datetime.now(datetime.timezone.utc)
    for pool in status.pools:
        members = status.agents_of(pool)
        if not members:
            table.add_row(Text(pool, style="bold"), Text("no agent connected", style="dim"))
        for agent in members:
            since = agent.connected_since
            table.add_row(
                Text(pool, style="bold"),
                Text(agent.agent_id),
                Text(agent.hostname),
                Text(agent.version),
                Text(str(agent.protocol)),
                Text(str(agent.pid)),
                Text(f"{since:%Y-%m-%d %H:%M:%S} UTC ({_age((now - since).total_seconds())} ago)"),
                _count(agent.hosts_in_flight),
                _count(agent.open_connections),
                _count(agent.runs),
            )
    return Group(heading, table)
