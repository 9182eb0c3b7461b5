"""Client-side checks of connection plugin names and ssh settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from genja import ConfigurationError, Settings
from genja._connection_plugins import (
    check_connection_plugins,
    connection_settings,
    known_connection_plugins,
)
from genja._plan import plan_run
from genja.task import TaskSuccessResult, task


@task(name="needs_telnet", connection_plugin_name="telnet9000")
class NeedsTelnet:
    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        return TaskSuccessResult()


@task(name="parent", sub_tasks=[NeedsTelnet])
class Parent:
    def start(self, task, host, context):  # type: ignore[no-untyped-def]
        return TaskSuccessResult()


def test_ssh_is_a_known_plugin():
    assert "ssh" in known_connection_plugins()


def test_unknown_plugin_in_a_sub_task_names_task_plugin_and_known_ones():
    with pytest.raises(ConfigurationError) as caught:
        check_connection_plugins(plan_run(Parent, 1))
    message = str(caught.value)
    assert "'needs_telnet'" in message
    assert "'telnet9000'" in message
    assert "ssh" in message


def test_ssh_settings_travel_with_absolute_paths(tmp_path: Path):
    source = tmp_path / "settings.yaml"
    (tmp_path / "ssh_config").write_text("Host *\n  User admin\n")
    source.write_text(
        "ssh:\n  config_file: ssh_config\n  known_hosts: kh\n  connect_timeout: 3\n"
        "  host_key_policy: strict\n"
    )
    ssh = connection_settings(Settings.from_file(source))["ssh"]
    assert ssh["config_file"] == str(tmp_path / "ssh_config")
    assert ssh["known_hosts"] == str(tmp_path / "kh")
    assert ssh["connect_timeout"] == 3
    assert ssh["host_key_policy"] == "strict"


def test_bad_host_key_policy_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="host_key_policy must be one of"):
        Settings.from_dict({"ssh": {"host_key_policy": "yolo"}})
