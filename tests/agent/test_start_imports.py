"""What a starting agent loads: only what every run needs. Every run of a cold `Genja` waits for
its agents to start, so a module that an agent may never use is loaded when it is first
needed (a plugin when a task opens a connection, YAML when --settings names a file).

This pins the modules, not the time: start-up time is measured in bench/, never in tests.
A real `python -m agent` reports what it imported (`-X importtime`, on stderr) until it dials
its coordinator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

# Device libraries and connection plugins: loaded when a task's node names a plugin.
_PLUGINS = {
    "paramiko",
    "netmiko",
    "scrapli",
    "ncclient",
    "agent.connections.ssh",
    "agent.connections.netmiko",
    "agent.connections.scrapli",
    "agent.connections.netconf",
}
# Loaded when they are needed: entry points when a plugin is resolved, task code when a run
# sends some, the settings model when a run starts, files only with --settings.
_LATER = {
    "importlib.metadata",
    "cloudpickle",
    "genja._settings",
    "genja._loader",
    "yaml",
}
# The client's side: an agent never needs them.
_CLIENT = {"genja._logging", "genja._status", "genja._inventory", "genja._genja", "rich"}


def _modules_loaded_by_agent_start(tmp_path: Path) -> set[str]:
    """What `python -m agent` imported by the time it dials its coordinator: a listening
    socket stands in for one, and the agent is stopped once it has connected."""
    address = tmp_path / "coordinator.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(address))
        listener.listen()
        listener.settimeout(60)
        command = [
            sys.executable, "-X", "importtime", "-m", "agent",
            "--coordinator", f"unix:{address}",
            "--agent-id", "probe",
            "--exit-with-parent", str(os.getpid()),
        ]  # fmt: skip
        agent = subprocess.Popen(
            command,
            env={**os.environ, "GENJA_AGENT_TOKEN": "probe-token"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            connection, _ = listener.accept()
            connection.close()
        finally:
            agent.terminate()
            _, report = agent.communicate(timeout=60)
    return {
        line.split("|")[2].strip()
        for line in report.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


def test_an_agent_starts_without_plugins_settings_or_client_modules(tmp_path: Path) -> None:
    loaded = _modules_loaded_by_agent_start(tmp_path)
    assert {"agent._agent", "grpc"} <= loaded  # the report covers the agent's start
    assert sorted(loaded & (_PLUGINS | _LATER | _CLIENT)) == []
