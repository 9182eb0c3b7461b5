"""Settings files: defaults, validation with file/key/line, environment fallbacks."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from genja import ConfigurationError, Settings, SettingsWarning
from genja._settings import ENV_VARIABLES, RUNNER_OPTIONS


def write(tmp_path: Path, text: str, name: str = "settings.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = Settings.from_dict({}, environ={})
    assert settings.core.raise_on_error is False
    assert settings.inventory.plugin == "file"
    assert settings.runner.plugin == "agents"
    assert settings.runner.worker_count is None
    assert settings.runner.max_task_depth == 10
    assert settings.runner.options == {}
    assert settings.logging.enabled is False
    assert settings.logging.level == "INFO"
    assert settings.logging.file_size == 10 * 1024 * 1024
    assert settings.logging.max_file_count == 5
    assert settings.ssh.config_file is None


def test_runner_options_keys_are_kept() -> None:
    assert {"task_timeout", "run_timeout", "host_concurrency"} <= set(RUNNER_OPTIONS)


def test_full_yaml_file(tmp_path: Path) -> None:
    write(tmp_path, "Host r1\n  HostName 127.0.0.1\n  Port 2222\n", "ssh_config")
    path = write(
        tmp_path,
        """\
        core:
          raise_on_error: true
        inventory:
          plugin: file
          options:
            hosts_file: inv/hosts.yaml
            groups_file: inv/groups.yaml
        ssh:
          config_file: ssh_config
        runner:
          worker_count: 3
          max_task_depth: 2
          options:
            task_timeout: 5
        logging:
          enabled: yes
          level: debug
          log_file: logs/genja.log
          to_console: off
          file_size: 1000
          max_file_count: 2
        """,
    )
    settings = Settings.from_file(path, environ={})
    assert settings.core.raise_on_error is True
    assert settings.runner.worker_count == 3
    assert settings.runner.max_task_depth == 2
    assert settings.runner.options == {"task_timeout": 5}
    assert settings.logging.level == "DEBUG"
    assert settings.logging.file_size == 1000
    assert settings.resolve_path(settings.inventory.options["hosts_file"]) == (
        tmp_path / "inv" / "hosts.yaml"
    )
    assert settings.source == path


def test_json_file_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"runner": {"worker_count": 2}}), encoding="utf-8")
    assert Settings.from_file(path, environ={}).runner.worker_count == 2
    empty = write(tmp_path, "", "empty.yaml")
    assert Settings.from_file(empty, environ={}).runner.worker_count is None


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            "runner:\n  worker_cont: 2\n",
            2,
            "unknown key 'runner.worker_cont'; did you mean 'worker_count'?",
        ),
        ("runer:\n  worker_count: 2\n", 1, "unknown key 'runer'; did you mean 'runner'?"),
        ("logging:\n  enabled: maybe\n", 2, "logging.enabled: expected true/false"),
        ("runner:\n  worker_count: 0\n", 2, "runner.worker_count must be >= 1"),
        ("runner:\n  worker_count: two\n", 2, "runner.worker_count must be a whole number"),
        ("runner:\n  max_task_depth: -1\n", 2, "runner.max_task_depth must be >= 0"),
        ("logging:\n  level: LOUD\n", 2, "logging.level: expected one of CRITICAL"),
        ("logging:\n  file_size: 0\n", 2, "logging.file_size must be >= 1"),
        ("runner:\n  options:\n    task_timout: 1\n", 3, "did you mean 'task_timeout'?"),
        ("inventory:\n  options:\n    host_file: h.yaml\n", 3, "did you mean 'hosts_file'?"),
        (
            "inventory:\n  options:\n    hosts_file: 3\n",
            3,
            "inventory.options.hosts_file must be a path",
        ),
        ("core: [1]\n", 1, "core must be a mapping"),
        ("inventory:\n  plugin: 5\n", 2, "inventory.plugin must be a string"),
    ],
)
def test_invalid_values_name_file_key_and_line(
    tmp_path: Path, text: str, line: int, needle: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_file(path, environ={})
    message = str(caught.value)
    assert message.startswith(f"{path}: line {line}: "), message
    assert needle in message


def test_a_non_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="the top level must be a mapping"):
        Settings.from_file(write(tmp_path, "- a\n"), environ={})


def test_errors_without_a_file_name_settings() -> None:
    with pytest.raises(ConfigurationError, match=r"^settings: unknown key 'nope'"):
        Settings.from_dict({"nope": 1}, environ={})


# ---------------------------------------------------------------- environment


def test_environment_fills_missing_fields() -> None:
    environ = {
        "GENJA_CORE_RAISE_ON_ERROR": "yes",
        "GENJA_INVENTORY_PLUGIN": "SimpleInventory",
        "GENJA_RUNNER_PLUGIN": "agents",
        "GENJA_RUNNER_WORKER_COUNT": "7",
        "GENJA_LOGGING_LEVEL": "warning",
        "GENJA_LOGGING_LOG_FILE": "/tmp/x.log",
        "GENJA_LOGGING_TO_CONSOLE": "1",
    }
    assert set(environ) == set(ENV_VARIABLES)
    settings = Settings.from_dict({}, environ=environ)
    assert settings.core.raise_on_error is True
    assert settings.inventory.plugin == "SimpleInventory"
    assert settings.runner.worker_count == 7
    assert settings.logging.level == "WARNING"
    assert settings.logging.log_file == "/tmp/x.log"
    assert settings.logging.to_console is True


def test_the_file_wins_over_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        core: {raise_on_error: false}
        runner: {worker_count: 2}
        logging: {level: ERROR, to_console: false}
        """,
    )
    environ = {
        "GENJA_CORE_RAISE_ON_ERROR": "true",
        "GENJA_RUNNER_WORKER_COUNT": "9",
        "GENJA_LOGGING_LEVEL": "DEBUG",
        "GENJA_LOGGING_TO_CONSOLE": "true",
    }
    settings = Settings.from_file(path, environ=environ)
    assert settings.core.raise_on_error is False
    assert settings.runner.worker_count == 2
    assert settings.logging.level == "ERROR"
    assert settings.logging.to_console is False


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENJA_RUNNER_WORKER_COUNT", "5")
    assert Settings.from_dict({}).runner.worker_count == 5


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("true", True), ("TRUE", True), ("True", True), ("1", True), ("yes", True),
        ("YES", True), ("on", True), ("On", True),
        ("false", False), ("FALSE", False), ("0", False), ("no", False), ("No", False),
        ("off", False), ("OFF", False), (" true ", True),
    ],
)  # fmt: skip
def test_environment_booleans_in_every_spelling(spelling: str, expected: bool) -> None:
    settings = Settings.from_dict(
        {}, environ={"GENJA_LOGGING_TO_CONSOLE": spelling, "GENJA_CORE_RAISE_ON_ERROR": spelling}
    )
    assert settings.logging.to_console is expected
    assert settings.core.raise_on_error is expected


@pytest.mark.parametrize(
    ("variable", "value", "field", "default"),
    [
        ("GENJA_LOGGING_TO_CONSOLE", "maybe", ("logging", "to_console"), False),
        ("GENJA_CORE_RAISE_ON_ERROR", "2", ("core", "raise_on_error"), False),
        ("GENJA_RUNNER_WORKER_COUNT", "many", ("runner", "worker_count"), None),
        ("GENJA_RUNNER_WORKER_COUNT", "0", ("runner", "worker_count"), None),
        ("GENJA_LOGGING_LEVEL", "chatty", ("logging", "level"), "INFO"),
    ],
)
def test_an_invalid_environment_value_warns_and_uses_the_default(
    variable: str, value: str, field: tuple[str, str], default: object
) -> None:
    with pytest.warns(SettingsWarning, match=rf"ignoring {variable}="):
        settings = Settings.from_dict({}, environ={variable: value})
    assert getattr(getattr(settings, field[0]), field[1]) == default


def test_an_empty_environment_value_is_ignored() -> None:
    assert (
        Settings.from_dict({}, environ={"GENJA_RUNNER_WORKER_COUNT": ""}).runner.worker_count
        is None
    )


# ---------------------------------------------------------------- ssh config


def test_ssh_config_file_is_validated(tmp_path: Path) -> None:
    write(tmp_path, "Host r1\n  HostName 127.0.0.1\n  Port=22\n  ProxyJump bastion\n", "ok_config")
    settings = Settings.from_dict(
        {"ssh": {"config_file": "ok_config"}}, source=tmp_path / "s.yaml", environ={}
    )
    assert settings.resolve_path(settings.ssh.config_file or "") == tmp_path / "ok_config"

    write(tmp_path, "Host r1\n  Port twenty\n", "bad_port")
    with pytest.raises(ConfigurationError, match=r"bad_port: line 2: Port must be a number"):
        Settings.from_dict({"ssh": {"config_file": str(tmp_path / "bad_port")}}, environ={})

    write(tmp_path, "# comment\nHost r1\n  IdentityFile\n", "no_value")
    with pytest.raises(ConfigurationError, match=r"no_value: line 3: 'IdentityFile' has no value"):
        Settings.from_dict({"ssh": {"config_file": str(tmp_path / "no_value")}}, environ={})

    with pytest.raises(ConfigurationError, match=r"ssh\.config_file: .*missing_config: file not"):
        Settings.from_dict({"ssh": {"config_file": str(tmp_path / "missing_config")}}, environ={})


def test_ssh_numbers_and_policy_are_checked(tmp_path: Path) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text(
        "ssh:\n  connect_timeout: 30\n  keepalive_interval: 15\n  host_key_policy: strict\n"
    )
    ssh = Settings.from_file(ok).ssh
    assert ssh.connect_timeout == 30.0
    assert (ssh.keepalive_interval, ssh.host_key_policy) == (15, "strict")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ssh:\n  connect_timeout: -1\n")
    with pytest.raises(ConfigurationError, match=r"ssh.connect_timeout must be a positive number"):
        Settings.from_file(bad)
    bad.write_text("ssh:\n  host_key_policy: trust-me\n")
    with pytest.raises(ConfigurationError, match=r"host_key_policy must be one of"):
        Settings.from_file(bad)
