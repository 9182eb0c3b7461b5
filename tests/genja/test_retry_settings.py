"""`runner.retry` and `runner.max_connection_attempts`: typed, defaulted, checked at load with
the file, the line and the key; `@task(retry=RetryConfig(...))` checked when the class is
defined."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from genja import ConfigurationError, RetryConfig, Settings, TaskDefinitionError
from genja._settings import RunnerRetrySettings
from genja.task import TaskInfo, definition_of, task


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_defaults_retry_nothing_and_bound_logins() -> None:
    runner = Settings.from_dict({}, environ={}).runner
    assert runner.retry == RunnerRetrySettings(allow=False, max_attempts=1, delay_ms=0)
    assert runner.max_connection_attempts == 3


def test_a_genja_04_runner_section_loads(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        """\
        runner:
          plugin: serial
          max_connection_attempts: 5
          retry:
            allow: yes
            max_attempts: 3
            delay_ms: 250
        """,
    )
    runner = Settings.from_file(path, environ={}).runner
    assert runner.retry == RunnerRetrySettings(allow=True, max_attempts=3, delay_ms=250)
    assert runner.max_connection_attempts == 5


@pytest.mark.parametrize(
    ("line", "value", "needle"),
    [
        ("max_attempts: 0", "0", "runner.retry.max_attempts must be a whole number from 1"),
        ("max_attempts: 2.5", "2.5", "runner.retry.max_attempts must be a whole number"),
        ("max_attempts: true", "True", "runner.retry.max_attempts must be a whole number"),
        ("delay_ms: -1", "-1", "runner.retry.delay_ms must be a whole number from 0"),
        ("delay_ms: soon", "'soon'", "runner.retry.delay_ms must be a whole number"),
        ("allow: maybe", "'maybe'", "runner.retry.allow: expected true/false"),
    ],
)
def test_a_bad_retry_value_names_file_line_and_key(
    tmp_path: Path, line: str, value: str, needle: str
) -> None:
    path = _file(tmp_path, f"# retries\nrunner:\n  worker_count: 2\n  retry:\n    {line}\n")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_file(path, environ={})
    message = str(caught.value)
    assert message.startswith(f"{path}: line 5: {needle}"), message
    assert value in message


def test_an_unknown_retry_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    path = _file(tmp_path, "runner:\n  retry:\n    max_attempt: 3\n")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_file(path, environ={})
    assert str(caught.value) == (
        f"{path}: line 3: unknown key 'runner.retry.max_attempt'; did you mean 'max_attempts'?"
    )


@pytest.mark.parametrize("value", ["[]", "3", "yes"])
def test_retry_must_be_a_mapping(tmp_path: Path, value: str) -> None:
    path = _file(tmp_path, f"runner:\n  retry: {value}\n")
    with pytest.raises(ConfigurationError, match=r"line 2: runner.retry must be a mapping"):
        Settings.from_file(path, environ={})


@pytest.mark.parametrize("value", ["-1", "1.5", "many"])
def test_a_bad_connection_attempt_bound_names_file_line_and_key(tmp_path: Path, value: str) -> None:
    path = _file(tmp_path, f"runner:\n  plugin: serial\n  max_connection_attempts: {value}\n")
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_file(path, environ={})
    assert str(caught.value).startswith(
        f"{path}: line 3: runner.max_connection_attempts must be a whole number from 0"
    )


def test_retry_settings_built_in_code_are_checked() -> None:
    assert RunnerRetrySettings(allow=True, max_attempts=2).max_attempts == 2
    with pytest.raises(ConfigurationError, match=r"settings: runner\.retry\.max_attempts must"):
        RunnerRetrySettings(max_attempts=0)
    with pytest.raises(ConfigurationError, match=r"runner\.retry\.allow must be true or false"):
        RunnerRetrySettings(allow="yes")  # type: ignore[arg-type]
    given = Settings.from_dict({"runner": {"retry": RunnerRetrySettings(allow=True)}})
    assert given.runner.retry.allow is True


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"max_attempts": 0}, "RetryConfig.max_attempts must be a whole number from 1"),
        ({"max_attempts": True}, "RetryConfig.max_attempts must be a whole number"),
        ({"delay_ms": -5}, "RetryConfig.delay_ms must be a whole number from 0"),
        ({"delay_ms": 1.5}, "RetryConfig.delay_ms must be a whole number"),
        ({"allow": "yes"}, "RetryConfig.allow must be True, False or None"),
    ],
)
def test_retry_config_checks_its_fields(fields: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        RetryConfig(**fields)


def test_task_retry_overrides_are_recorded_on_the_definition_and_task_info() -> None:
    @task(name="flaky", retry=RetryConfig(allow=True, max_attempts=3))
    class Flaky:
        def start(self, task: Any, host: Any, context: Any) -> Any: ...

    definition = definition_of(Flaky)
    assert definition.retry == RetryConfig(allow=True, max_attempts=3, delay_ms=None)
    assert TaskInfo.from_definition(definition).retry == definition.retry
    assert definition.retry.to_dict() == {"allow": True, "max_attempts": 3, "delay_ms": None}


def test_a_retry_that_is_not_a_retry_config_is_refused() -> None:
    with pytest.raises(TaskDefinitionError, match=r"Bad: retry must be a RetryConfig"):

        @task(retry={"allow": True})  # type: ignore[arg-type]
        class Bad:
            def start(self, task: Any, host: Any, context: Any) -> Any: ...
