"""A warning logged by a task on an agent process lands in the client's log file, and the
task sees inherited values with their sources."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import genja
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task

pytestmark = pytest.mark.e2e


@task(name="warn_and_report")
class WarnAndReport:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        logging.getLogger("e2e.tasks").warning("agent-side warning for %s", host.id)
        source = host.source_of("port")
        return TaskSuccessResult(
            summary=f"port {host.port} from {source}",
            metadata={"all_groups": list(host.all_groups), "site": host.data.get("site")},
        )


@pytest.fixture(autouse=True)
def clean_genja_logger() -> Iterator[None]:
    logger = logging.getLogger("genja")
    before = list(logger.handlers)
    level = logger.level
    yield
    for handler in list(logger.handlers):
        if handler not in before:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)


@pytest.mark.timeout(300)  # starts agent processes; generous for busy machines
def test_agent_warnings_reach_the_client_log_file(tmp_path: Path) -> None:
    (tmp_path / "hosts.yaml").write_text(
        "r1:\n  groups: [site]\nr2:\n  port: 2022\n  groups: [site]\n", encoding="utf-8"
    )
    (tmp_path / "groups.yaml").write_text(
        "site:\n  groups: [region]\n  port: 22\nregion:\n  data:\n    site: ams\n",
        encoding="utf-8",
    )
    (tmp_path / "settings.yaml").write_text(
        "inventory:\n  options:\n    hosts_file: hosts.yaml\n    groups_file: groups.yaml\n"
        "runner:\n  worker_count: 2\n  options:\n    run_timeout: 240\n"
        "logging:\n  enabled: true\n  level: INFO\n  log_file: logs/run.log\n",
        encoding="utf-8",
    )
    with genja.Genja.from_settings_file(tmp_path / "settings.yaml") as runner:
        results = runner.run_task(WarnAndReport)
    assert results.host_summary().passed == 2
    data = results.to_dict()
    assert data["hosts"]["r1"]["summary"] == "port 22 from group:site"
    assert data["hosts"]["r2"]["summary"] == "port 2022 from host"
    assert data["hosts"]["r1"]["metadata"] == {"all_groups": ["site", "region"], "site": "ams"}
    for handler in logging.getLogger("genja").handlers:
        handler.flush()
    text = (tmp_path / "logs" / "run.log").read_text(encoding="utf-8")
    for host_id in ("r1", "r2"):
        lines = [line for line in text.splitlines() if f"agent-side warning for {host_id}" in line]
        assert len(lines) == 1, text
        assert "WARNING e2e.tasks" in lines[0]
        assert "[agent local-" in lines[0]
    assert "genja.coordinator" in text  # the client's own records share the file
    assert "INFO genja.inventory" in text
    assert "loaded 2 hosts and 2 groups" in text
