"""Settings files: defaults, validation with file/key/line, environment fallbacks."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from genja import ConfigurationError, Settings, SettingsWarning
from genja._settings import ENV_VARIABLES, RUNNER_OPTIONS, RunnerOptions


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
    assert settings.runner.options == RunnerOptions()
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
    assert settings.runner.options == RunnerOptions(task_timeout=5.0)
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
        ("runner:\n  worker_count: 0\n", 2, "runner.worker_count must be a whole number from 1"),
        (
            "runner:\n  worker_count: 100000\n",
            2,
            "worker_count must be a whole number from 1 to 256, got 100000",
        ),
        ("runner:\n  worker_count: two\n", 2, "runner.worker_count must be a whole number"),
        ("runner:\n  max_task_depth: -1\n", 2, "runner.max_task_depth must be a whole number >= 0"),
        ("logging:\n  level: LOUD\n", 2, "logging.level must be one of CRITICAL"),
        ("logging:\n  file_size: 0\n", 2, "logging.file_size must be a whole number >= 1"),
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


# ---------------------------------------------------------------- runner.options

WHOLE_CAP = "must be a whole number from 0 to 4294967295 (0: no cap)"
SECONDS = "must be a positive number of seconds"
TEXT = "must be a non-empty string"
SIZE = "must be a size"

# (key, bad value, what the error says): every option with a wrong type and, where it has a
# range, a value outside it.
BAD_OPTIONS: list[tuple[str, Any, str]] = [
    ("coordinator", 50051, f"{TEXT}, got 50051"),
    ("coordinator", "", f"{TEXT}, got ''"),
    ("coordinator_token_file", ["client.token"], f"{TEXT}, got ['client.token']"),
    ("coordinator_token_file", "", TEXT),
    ("coordinator_tls_ca", True, f"{TEXT}, got True"),
    ("coordinator_tls_ca", "", TEXT),
    ("coordinator_tls_cert", 7, f"{TEXT}, got 7"),
    ("coordinator_tls_key", "", TEXT),
    ("host_concurrency", 0, "must be a whole number >= 1, got 0"),
    ("host_concurrency", -3, "must be a whole number >= 1, got -3"),
    ("host_concurrency", 2.5, "must be a whole number >= 1, got 2.5"),
    ("host_concurrency", "100", "must be a whole number >= 1, got '100'"),
    ("host_concurrency", True, "must be a whole number >= 1, got True"),
    ("task_timeout", 0, f"{SECONDS} (at most 315576000000), got 0"),
    ("task_timeout", -1.5, f"{SECONDS} (at most 315576000000), got -1.5"),
    ("task_timeout", "30s", f"{SECONDS} (at most 315576000000), got '30s'"),
    ("task_timeout", True, f"{SECONDS} (at most 315576000000), got True"),
    ("run_timeout", 0.0, SECONDS),
    ("run_timeout", float("inf"), f"{SECONDS} (at most 315576000000), got inf"),
    ("run_timeout", float("nan"), f"{SECONDS} (at most 315576000000), got nan"),
    ("run_timeout", 10**12, SECONDS),
    ("run_timeout", [1], SECONDS),
    ("agent_start_timeout", -60, SECONDS),
    ("agent_start_timeout", False, SECONDS),
    ("agent_start_timeout", "60", SECONDS),
    ("max_logins_per_agent", -1, f"{WHOLE_CAP}, got -1"),
    ("max_logins_per_agent", 2**32, f"{WHOLE_CAP}, got 4294967296"),
    ("max_logins_per_agent", 1.0, f"{WHOLE_CAP}, got 1.0"),
    ("max_logins_per_agent", "20", WHOLE_CAP),
    ("max_logins", -5, f"{WHOLE_CAP}, got -5"),
    ("max_logins", 99999999999999999999, f"{WHOLE_CAP}, got 99999999999999999999"),
    ("max_logins", False, f"{WHOLE_CAP}, got False"),
    ("max_result_size", "16 parsecs", "must be a size: a number of bytes, or a number with"),
    ("max_result_size", -1, "must be a size from 1 KiB to 128 MiB, got -1"),
    ("max_result_size", 1023, "must be a size from 1 KiB to 128 MiB, got 1023"),
    ("max_result_size", "129MiB", "must be a size from 1 KiB to 128 MiB, got '129MiB'"),
    ("max_result_size", 1.5, "must be a size"),
    ("max_result_size", True, "must be a size"),
    ("agent_memory_limit", -1, f"{SIZE} from 0 bytes to 1024 TiB, got -1"),
    ("agent_memory_limit", "2 gigs", SIZE),
    ("agent_memory_limit", "2G", SIZE),
    ("agent_memory_limit", 2.5, SIZE),
    ("agent_memory_limit", True, SIZE),
    ("heartbeat_timeout", 0, SECONDS),
    ("heartbeat_timeout", "10", SECONDS),
]


def test_every_runner_option_is_typed_and_checked() -> None:
    fields = {f.name for f in dataclasses.fields(RunnerOptions)}
    assert fields == set(RUNNER_OPTIONS)
    assert {key for key, _, _ in BAD_OPTIONS} == fields


def test_runner_option_defaults() -> None:
    options = Settings.from_dict({}, environ={}).runner.options
    assert options == RunnerOptions()
    assert (options.coordinator, options.coordinator_token_file, options.coordinator_tls_ca) == (
        None,
        None,
        None,
    )
    assert (options.task_timeout, options.run_timeout) == (None, None)
    assert options.host_concurrency == 100
    assert options.agent_start_timeout == 60.0
    assert options.agent_memory_limit == 2 * 1024**3
    assert options.heartbeat_timeout == 10.0
    assert (options.max_logins_per_agent, options.max_logins) == (20, 0)
    assert options.max_result_size == 16 * 1024 * 1024
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.host_concurrency = 5  # type: ignore[misc]


def test_valid_runner_options_load_typed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """        runner:
          options:
            coordinator: 127.0.0.1:50051
            coordinator_token_file: client.token
            coordinator_tls_ca: ca.pem
            coordinator_tls_cert: alice.pem
            coordinator_tls_key: alice.key
            host_concurrency: 1
            task_timeout: 30
            run_timeout: 0.5
            agent_start_timeout: 120
            max_logins_per_agent: 0
            max_logins: 4294967295
            max_result_size: 1.5 MiB
            agent_memory_limit: 1.5 GiB
            heartbeat_timeout: 3
        """,
    )
    options = Settings.from_file(path, environ={}).runner.options
    assert options == RunnerOptions(
        coordinator="127.0.0.1:50051",
        coordinator_token_file="client.token",
        coordinator_tls_ca="ca.pem",
        coordinator_tls_cert="alice.pem",
        coordinator_tls_key="alice.key",
        host_concurrency=1,
        task_timeout=30.0,
        run_timeout=0.5,
        agent_start_timeout=120.0,
        max_logins_per_agent=0,
        max_logins=2**32 - 1,
        max_result_size=1024 * 1024 * 3 // 2,
        agent_memory_limit=3 * 512 * 1024**2,
        heartbeat_timeout=3.0,
    )
    assert isinstance(options.task_timeout, float)
    assert isinstance(options.agent_start_timeout, float)


def test_a_null_runner_option_takes_its_default(tmp_path: Path) -> None:
    path = write(tmp_path, "runner:\n  options:\n    host_concurrency:\n    task_timeout: ~\n")
    assert Settings.from_file(path, environ={}).runner.options == RunnerOptions()


@pytest.mark.parametrize(("key", "value", "needle"), BAD_OPTIONS)
def test_a_bad_runner_option_names_file_line_and_key(
    tmp_path: Path, key: str, value: Any, needle: str
) -> None:
    scalar = yaml.safe_dump(value, default_flow_style=True).removesuffix("...\n").strip()
    path = tmp_path / "settings.yaml"
    path.write_text(
        f"# the runner\nrunner:\n  worker_count: 2\n  options:\n    {key}: {scalar}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_file(path, environ={})
    assert str(caught.value).startswith(f"{path}: line 5: runner.options.{key} {needle}")


@pytest.mark.parametrize(("key", "value", "needle"), BAD_OPTIONS)
def test_a_bad_runner_option_from_a_mapping_names_settings_and_key(
    key: str, value: Any, needle: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_dict({"runner": {"options": {key: value}}}, environ={})
    assert str(caught.value).startswith(f"settings: runner.options.{key} {needle}")
    with pytest.raises(ConfigurationError) as caught:
        RunnerOptions.from_dict({key: value})
    assert str(caught.value).startswith(f"settings: runner.options.{key} {needle}")


def test_a_bad_runner_option_in_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps({"runner": {"options": {"host_concurrency": 0}}}, indent=2), encoding="utf-8"
    )
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_file(path, environ={})
    assert str(caught.value) == (
        f"{path}: line 4: runner.options.host_concurrency must be a whole number >= 1, got 0"
    )


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("host_concurency", "host_concurrency"),
        ("task_timout", "task_timeout"),
        ("runtimeout", "run_timeout"),
        ("agent_start_timout", "agent_start_timeout"),
        ("max_login", "max_logins"),
        ("max_logins_per_agnt", "max_logins_per_agent"),
        ("coordinater", "coordinator"),
        ("coordinator_token", "coordinator_token_file"),
        ("coordinator_tls_cA", "coordinator_tls_ca"),
    ],
)
def test_an_unknown_runner_option_is_refused_with_a_suggestion(
    tmp_path: Path, key: str, suggestion: str
) -> None:
    path = write(tmp_path, f"runner:\n  options:\n    host_concurrency: 5\n    {key}: 1\n")
    expected = f"unknown key 'runner.options.{key}'; did you mean '{suggestion}'?"
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_file(path, environ={})
    assert str(caught.value) == f"{path}: line 4: {expected}"
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_dict({"runner": {"options": {key: 1}}}, environ={})
    assert str(caught.value) == f"settings: {expected}"


def test_an_unknown_runner_option_far_from_any_lists_the_known_ones() -> None:
    known = (
        r"known keys: coordinator, .*, max_logins, max_result_size, agent_memory_limit, "
        r"heartbeat_timeout$"
    )
    with pytest.raises(ConfigurationError, match=known):
        Settings.from_dict({"runner": {"options": {"zzz": 1}}}, environ={})


def test_runner_options_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "runner:\n  options: [task_timeout]\n")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_file(path, environ={})
    assert str(caught.value) == f"{path}: line 2: runner.options must be a mapping, got list"


def test_runner_options_built_in_code_are_kept() -> None:
    options = RunnerOptions(task_timeout=5.0, host_concurrency=4)
    settings = Settings.from_dict({"runner": {"options": options}}, environ={})
    assert settings.runner.options is options
    assert RunnerOptions.from_dict({"task_timeout": 5, "host_concurrency": 4}) == options
    assert isinstance(RunnerOptions(task_timeout=5).task_timeout, float)


@pytest.mark.parametrize(("key", "value", "needle"), BAD_OPTIONS)
def test_runner_options_built_in_code_are_checked(key: str, value: Any, needle: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RunnerOptions(**{key: value})
    assert str(caught.value).startswith(f"settings: runner.options.{key} {needle}")
    with pytest.raises(ConfigurationError) as caught:
        dataclasses.replace(RunnerOptions(), **{key: value})
    assert str(caught.value).startswith(f"settings: runner.options.{key} {needle}")


def test_a_path_with_an_unknown_user_is_a_configuration_error(tmp_path: Path) -> None:
    settings = Settings.from_dict({}, source=tmp_path / "s.yaml", environ={})
    with pytest.raises(ConfigurationError) as caught:
        settings.resolve_path("~no-such-user-9f2c/hosts.yaml")
    assert str(caught.value).startswith(
        f"{tmp_path / 's.yaml'}: cannot expand '~no-such-user-9f2c/hosts.yaml': "
    )


def test_the_readme_settings_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("### Settings file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    write(tmp_path, "Host r1\n  Port 2222\n", "ssh_config")
    settings = Settings.from_file(write(tmp_path, block), environ={})
    assert settings.runner.options == RunnerOptions(task_timeout=30.0, run_timeout=600.0)


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
        ("GENJA_RUNNER_WORKER_COUNT", "100000", ("runner", "worker_count"), None),
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

    for port in ("0", "65536", "99999999999999999999", "²"):
        write(tmp_path, f"Host r1\n  Port {port}\n", "bad_port")
        with pytest.raises(ConfigurationError, match=rf"line 2: Port must be .* got '{port}'"):
            Settings.from_dict({"ssh": {"config_file": str(tmp_path / "bad_port")}}, environ={})

    write(tmp_path, "# comment\nHost r1\n  IdentityFile\n", "no_value")
    with pytest.raises(ConfigurationError, match=r"no_value: line 3: 'IdentityFile' has no value"):
        Settings.from_dict({"ssh": {"config_file": str(tmp_path / "no_value")}}, environ={})

    with pytest.raises(ConfigurationError, match=r"ssh\.config_file: .*missing_config: file not"):
        Settings.from_dict({"ssh": {"config_file": str(tmp_path / "missing_config")}}, environ={})
    (tmp_path / "binary").write_bytes(b"Host \xff\n")
    for name, problem in [(".", "is a folder, not a file"), ("binary", "not UTF-8 text")]:
        with pytest.raises(ConfigurationError) as caught:
            Settings.from_dict({"ssh": {"config_file": str(tmp_path / name)}}, environ={})
        assert f"ssh.config_file: {tmp_path / name}: {problem}" in str(caught.value)


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


@pytest.mark.parametrize(
    ("given", "size"),
    [
        (0, 0),
        (4096, 4096),
        ("2GiB", 2 * 1024**3),
        ("512 MiB", 512 * 1024**2),
        ("1.5GB", 1_500_000_000),
        ("300kib", 300 * 1024),
    ],
)
def test_agent_memory_limit_takes_sizes(given: Any, size: int) -> None:
    assert RunnerOptions(agent_memory_limit=given).agent_memory_limit == size
