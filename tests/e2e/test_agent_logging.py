"""A warning logged by a task on an agent process lands in the client's log file, and the
task sees inherited values with their sources; a remote agent's records for a run reach that
run's client through a coordinator server, secrets masked."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import genja
from genja.task import Host, TaskInfo, TaskRuntimeContext, TaskSuccessResult, task
from tests.servers.coordinator import start_server, wait_for

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


REMOTE_PASSWORD = "s3cr3t-pass-xyz"


@task(name="log_remotely")
class LogRemotely:
    def start(self, task: TaskInfo, host: Host, context: TaskRuntimeContext) -> TaskSuccessResult:
        log = logging.getLogger("e2e.remote")
        log.info("remote info for %s, password %s", host.id, host.password)
        # A thread of the task's own is not the host's: its records are the agent's.
        background = threading.Thread(target=log.warning, args=("background of %s", host.id))
        background.start()
        background.join()
        return TaskSuccessResult()


def test_a_remote_agents_records_for_a_run_reach_that_runs_client(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server")
    try:
        home = tmp_path / "agent-home"
        home.mkdir()
        agent = server.start_agent("jump1-0", "jump1", cwd=home)  # logs at WARNING itself
        settings = genja.Settings.from_dict(
            {
                "runner": {"options": server.runner_options()},
                "logging": {"enabled": True, "level": "INFO", "log_file": str(tmp_path / "c.log")},
            }
        )
        hosts = {
            f"r{i}": {"password": REMOTE_PASSWORD, "data": {"agent_pool": "jump1"}}
            for i in range(2)
        }
        with genja.Genja.from_hosts(hosts, settings) as g:
            assert g.run_task(LogRemotely).host_summary().passed == 2
        for handler in logging.getLogger("genja").handlers:
            handler.flush()
        client = (tmp_path / "c.log").read_text(encoding="utf-8")
        for host_id in ("r0", "r1"):
            lines = [x for x in client.splitlines() if f"remote info for {host_id}," in x]
            assert len(lines) == 1, client
            assert "INFO e2e.remote" in lines[0]
            assert f"[pid {agent.pid} " in lines[0]
            assert f"[agent jump1-0] remote info for {host_id}, password ********" in lines[0]
        assert REMOTE_PASSWORD not in client
        # Not tied to the run: the coordinator's log only.
        assert "background of" not in client
        wait_for(lambda: "background of r1" in server.log_text(), "the coordinator's log")
        assert REMOTE_PASSWORD not in server.log_text()
        # The agent's console kept its own level.
        assert "remote info" not in (server.folder / "agent-jump1-0.log").read_text()
    finally:
        server.close()
