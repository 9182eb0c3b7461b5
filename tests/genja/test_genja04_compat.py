"""Genja 0.4's Python API, where it does not contradict the Tasks reference: its settings
classes, its host, definition and result spellings, its names exported from `genja`."""

from __future__ import annotations

from pathlib import Path

import pytest

import genja
from genja import (
    ConfigurationError,
    CoreConfig,
    InventoryConfig,
    InventoryError,
    LoggingConfig,
    OptionsConfig,
    RunnerConfig,
    RunnerRetryConfig,
    Settings,
    SSHConfig,
    TaskDefinitionError,
)
from genja.task import (
    ExecutionMetadata,
    Host,
    TaskDefinition,
    TaskFailureKind,
    TaskFailureResult,
    TaskMessage,
    TaskMessageLevel,
    TaskSkipResult,
    TaskStatus,
    TaskSuccessResult,
    task,
)

# ---------------------------------------------------------------- settings classes


def test_settings_classes_are_genjas_own_under_04_names() -> None:
    from agent.connections.ssh import SSHSettings  # the ssh plugin's section
    from genja._settings import (
        CoreSettings,
        InventoryOptions,
        InventorySettings,
        LoggingSettings,
        RunnerRetrySettings,
        RunnerSettings,
    )

    assert CoreConfig is CoreSettings
    assert InventoryConfig is InventorySettings
    assert OptionsConfig is InventoryOptions
    assert SSHConfig is SSHSettings
    assert RunnerConfig is RunnerSettings
    assert RunnerRetryConfig is RunnerRetrySettings
    assert LoggingConfig is LoggingSettings


def test_settings_built_as_04_builds_them(tmp_path: Path) -> None:
    """Every argument of 0.4's constructors, None meaning the default, as 0.4 takes it."""
    settings = Settings(
        core=CoreConfig(raise_on_error=None),
        inventory=InventoryConfig(
            plugin="FileInventoryPlugin",
            options=OptionsConfig(hosts_file=str(tmp_path / "hosts.yaml")),
            transform_function=None,
            transform_function_options=None,
        ),
        ssh=SSHConfig(config_file=None),
        runner=RunnerConfig(
            plugin="serial",
            worker_count=None,
            max_task_depth=None,
            max_connection_attempts=5,
            retry=RunnerRetryConfig(allow=True, max_attempts=3, delay_ms=None),
        ),
        logging=LoggingConfig(level="debug", enabled=None, file_size=None),
    )
    settings.validate()
    assert settings.core.raise_on_error is False
    assert settings.inventory.options.hosts_file == str(tmp_path / "hosts.yaml")
    assert settings.inventory.options["hosts_file"] == str(tmp_path / "hosts.yaml")
    assert settings.inventory.options.get("groups_file") is None
    assert dict(settings.inventory.options) == {"hosts_file": str(tmp_path / "hosts.yaml")}
    assert settings.inventory.transform_function_options == {}
    assert settings.runner.max_task_depth == 10
    assert settings.runner.retry.max_attempts == 3
    assert settings.runner.retry.delay_ms == 0
    assert settings.logging.level == "DEBUG"
    assert settings.logging.file_size == LoggingConfig().file_size
    assert Settings(None, None, None, None, None) == Settings()


def test_sections_given_as_mappings_are_built() -> None:
    settings = Settings(
        runner={"plugin": "serial", "retry": {"allow": True}},  # type: ignore[arg-type]
        inventory=InventoryConfig(options={"hosts_file": "h.yaml"}),  # type: ignore[arg-type]
    )
    assert settings.runner.retry.allow is True
    assert settings.inventory.options.hosts_file == "h.yaml"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RunnerConfig(plugin="parallel"), "runner.plugin must name an installed runner"),
        (lambda: RunnerConfig(max_task_depth=-1), "runner.max_task_depth must be a whole number"),
        (lambda: RunnerRetryConfig(max_attempts=True), "runner.retry.max_attempts must be"),
        (lambda: RunnerRetryConfig(allow="yes"), "runner.retry.allow must be true or false"),
        (lambda: LoggingConfig(level="loud"), "logging.level must be one of"),
        (lambda: OptionsConfig(hosts_file=3), "inventory.options.hosts_file must be a path"),
        (lambda: InventoryConfig(options={"host_file": "h"}), "did you mean 'hosts_file'?"),
        (lambda: RunnerConfig(retry=[1]), "runner.retry must be a mapping"),
    ],
)
def test_sections_built_in_code_are_checked(build: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^settings: ") as caught:
        build()  # type: ignore[operator]
    assert message in str(caught.value)


def test_file_inventory_plugin_by_its_04_name(tmp_path: Path) -> None:
    (tmp_path / "hosts.yaml").write_text("router1:\n  hostname: 127.0.0.1\n", encoding="utf-8")
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(
        "inventory:\n  plugin: FileInventoryPlugin\n  options:\n    hosts_file: hosts.yaml\n"
        "runner:\n  plugin: threaded\n",
        encoding="utf-8",
    )
    with genja.Genja.from_settings(Settings.from_file(settings_file, environ={})) as g:
        assert g.host_ids() == ["router1"]
        assert g.hosts["router1"].hostname == "127.0.0.1"


def test_from_settings_validates_settings_built_in_code(tmp_path: Path) -> None:
    settings = Settings(ssh=SSHConfig(config_file=str(tmp_path / "missing_config")))
    with pytest.raises(ConfigurationError, match=r"ssh\.config_file: .*missing_config: file not"):
        genja.Genja.from_settings(settings)


# ---------------------------------------------------------------- hosts


def test_a_host_without_an_id_takes_its_key() -> None:
    unkeyed = Host(hostname="10.0.0.1", data=None)
    assert unkeyed.id == ""
    g = genja.Genja.from_hosts({"router1": unkeyed, "router2": Host(platform="ios")})
    assert g.host_ids() == ["router1", "router2"]
    assert g.hosts["router1"].id == "router1"
    assert g.hosts["router1"].hostname == "10.0.0.1"
    assert g.hosts["router1"].data == {}
    assert g.hosts["router2"].hostname == "router2"  # no hostname: the id, as before


def test_a_host_whose_id_is_another_key_is_refused() -> None:
    with pytest.raises(InventoryError, match="host 'router1' is a Host whose id is 'r9'"):
        genja.Genja.from_hosts({"router1": Host(id="r9")})
    with pytest.raises(InventoryError, match="has no id"):
        genja.Genja.from_hosts([Host(hostname="10.0.0.1")])
    with pytest.raises(InventoryError, match="whose id is 'r9'"):
        genja.Inventory(hosts={"router1": Host(id="r9")})


# ---------------------------------------------------------------- tasks and results


def test_task_definition_from_python_class() -> None:
    @task(name="collect")
    class Collect:
        def start(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    definition = TaskDefinition.from_python_class(Collect)
    assert definition.name == "collect"
    assert genja.TaskDefinition is TaskDefinition
    with pytest.raises(TaskDefinitionError, match="takes a @task class"):
        TaskDefinition.from_python_class(Collect())  # type: ignore[arg-type]
    with pytest.raises(TaskDefinitionError, match="is not a task"):
        TaskDefinition.from_python_class(int)


def test_a_task_name_by_position() -> None:
    @task("collect")
    class Collect:
        def start(self, task, host, context):  # type: ignore[no-untyped-def]
            return TaskSuccessResult()

    assert TaskDefinition.from_python_class(Collect).name == "collect"
    with pytest.raises(TaskDefinitionError, match="write @task"):

        @task  # type: ignore[arg-type]
        class Bare:
            def start(self, task, host, context):  # type: ignore[no-untyped-def]
                return TaskSuccessResult()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "   "}, "name must be a non-blank string, got '   '"),
        ({"name": ""}, "name must be a non-blank string"),
        ({"connection_plugin_name": " "}, "connection_plugin_name must be a non-blank string"),
        ({"processors": ["audit", "\t"]}, "processor names must be non-blank strings"),
    ],
)
def test_blank_names_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(TaskDefinitionError, match=message):

        @task(**options)  # type: ignore[arg-type]
        class Blank:
            def start(self, task, host, context):  # type: ignore[no-untyped-def]
                return TaskSuccessResult()


def test_results_read_like_mappings() -> None:
    passed = TaskSuccessResult(summary="ok", result={"a": 1}, warnings=["careful"])
    assert passed["summary"] == "ok"
    assert passed["result"] == {"a": 1}
    assert passed["status"] is TaskStatus.PASSED_WITH_WARNINGS
    assert passed.get("diff") is None
    assert passed.get("nope", 5) == 5
    assert "summary" in passed
    assert "start" not in passed
    assert dict(passed)["changed"] is False
    with pytest.raises(KeyError, match="nope"):
        passed["nope"]
    with pytest.raises(KeyError):
        passed["__class__"]  # fields and listed properties only, never attributes at large

    failed = TaskFailureResult(message="down", kind=TaskFailureKind.CONNECTION)
    assert failed["kind"] is TaskFailureKind.CONNECTION
    assert failed["status"] is TaskStatus.FAILED
    skipped = TaskSkipResult(reason="unsupported_platform")
    assert skipped["reason"] == "unsupported_platform"
    message = TaskMessage("hello", level=TaskMessageLevel.WARNING)
    assert message["level"] is TaskMessageLevel.WARNING
    from datetime import datetime, timezone

    metadata = ExecutionMetadata(
        started_at=datetime(2026, 1, 1, tzinfo=timezone.utc), duration=1.5, attempts=2
    )
    assert metadata["retried"] is True
    assert metadata["finished_at"] == metadata.finished_at


def test_enums_exported_from_genja() -> None:
    assert genja.TaskStatus is TaskStatus
    assert genja.TaskFailureKind is TaskFailureKind
    assert genja.TaskMessageLevel is TaskMessageLevel
