"""An agent's own settings file: what it may hold, where its paths point, how it combines with a
run's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from genja._agent_settings import AgentSettings, agent_keys
from genja._connection_plugins import connection_settings, local_paths_set
from genja._errors import ConfigurationError
from genja._settings import Settings


def _write(folder: Path, text: str, name: str = "agent.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_paths_resolve_against_the_files_folder_and_only_set_keys_count(tmp_path: Path) -> None:
    (tmp_path / "ssh_config").write_text("Host *\n  User ops\n", encoding="utf-8")
    path = _write(
        tmp_path,
        "ssh:\n"
        "  known_hosts: known_hosts\n"
        "  config_file: ssh_config\n"
        "runner:\n"
        "  options:\n"
        "    max_logins_per_agent: 5\n"
        "logging:\n"
        "  level: debug\n",
    )
    settings = AgentSettings.from_file(path)
    assert settings.connection_paths == {
        "ssh": {
            "known_hosts": str(tmp_path / "known_hosts"),
            "config_file": str(tmp_path / "ssh_config"),
        }
    }
    assert settings.max_logins == 5
    assert settings.host_concurrency is None  # not in the file
    assert settings.log_level == "DEBUG"


def test_an_empty_file_sets_nothing(tmp_path: Path) -> None:
    settings = AgentSettings.from_file(_write(tmp_path, ""))
    assert settings.connection_paths == {}
    assert settings.host_concurrency is settings.max_logins is settings.log_level is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "ssh:\n  known_hosts: kh\n  connect_timeout: 5\n",
            "line 3: ssh.connect_timeout is not an agent setting",
        ),
        (
            "runner:\n  options:\n    coordinator: 127.0.0.1:1\n",
            "line 3: runner.options.coordinator is not an agent setting",
        ),
        ("inventory:\n  plugin: file\n", "line 1: inventory is not an agent setting"),
        ("ssh:\n  known_host: kh\n", "line 2: unknown key 'ssh.known_host'; did you mean"),
        (
            "runner:\n  options:\n    host_concurrency: many\n",
            "line 3: runner.options.host_concurrency must be a whole number",
        ),
        ("ssh:\n  config_file: missing_config\n", "missing_config"),
    ],
)
def test_what_does_not_belong_is_refused_naming_the_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        AgentSettings.from_file(path)
    assert str(caught.value).startswith(f"{path}:")
    assert message in str(caught.value)


def test_the_agents_paths_go_over_a_runs_and_its_login_cap_bounds_the_runs() -> None:
    own = AgentSettings(connection_paths={"ssh": {"known_hosts": "/jump/kh"}}, max_logins=4)
    sent = {"ssh": {"connect_timeout": 3.0}, "netmiko": {"read_timeout": 9.0}}
    assert own.connection_settings(sent) == {
        "ssh": {"connect_timeout": 3.0, "known_hosts": "/jump/kh"},
        "netmiko": {"read_timeout": 9.0},
    }
    assert sent["ssh"] == {"connect_timeout": 3.0}  # unchanged
    assert [own.login_limit(run) for run in (0, 2, 20)] == [4, 2, 4]
    assert AgentSettings().login_limit(0) == 0


def test_the_keys_an_agent_takes_are_its_machines() -> None:
    keys = agent_keys()
    assert {"ssh.known_hosts", "ssh.config_file", "logging.level"} <= set(keys)
    assert "runner.options.host_concurrency" in keys
    assert "ssh.connect_timeout" not in keys


def test_a_client_keeps_its_paths_from_a_coordinator_servers_agents(tmp_path: Path) -> None:
    settings = Settings.from_dict(
        {"ssh": {"known_hosts": "kh", "connect_timeout": 4}}, source=tmp_path / "s.yaml"
    )
    assert connection_settings(settings)["ssh"]["known_hosts"] == str(tmp_path / "kh")
    remote = connection_settings(settings, paths=False)["ssh"]
    assert "known_hosts" not in remote
    assert "config_file" not in remote
    assert remote["connect_timeout"] == 4.0
    assert local_paths_set(settings) == ["ssh.known_hosts"]
