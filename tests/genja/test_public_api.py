"""The exported names are the public contract: changing them is a deliberate act."""

import genja
import genja.task


def test_genja_exports() -> None:
    assert sorted(genja.__all__) == sorted(
        [
            "AuditProcessor",
            "ConfigurationError",
            "ConnectionOptions",
            "CoreConfig",
            "EventLoopError",
            "F",
            "Genja",
            "GenjaError",
            "GenjaTimeoutError",
            "HasKey",
            "Host",
            "HostFilter",
            "HostFinished",
            "HostStarted",
            "HostSummary",
            "IdempotencyCheckResult",
            "IdempotencyMode",
            "InGroup",
            "Inventory",
            "InventoryConfig",
            "InventoryError",
            "JsonlProcessor",
            "KeyMatches",
            "LoggingConfig",
            "NodeFinished",
            "OptionsConfig",
            "ProcessorContext",
            "ProcessorFailed",
            "ProgressProcessor",
            "RetryConfig",
            "RunError",
            "RunEvent",
            "RunFinished",
            "RunStarted",
            "RunStream",
            "RunnerConfig",
            "RunnerRetryConfig",
            "SSHConfig",
            "SessionVerificationConfig",
            "Settings",
            "SettingsWarning",
            "SourceKind",
            "TaskDefinition",
            "TaskDefinitionError",
            "TaskFailureKind",
            "TaskMessage",
            "TaskMessageLevel",
            "TaskResults",
            "TaskStatus",
            "TaskRunOptions",
            "TaskSummary",
            "ValueSource",
            "__version__",
            "register_processor",
        ]
    )
    for name in genja.__all__:
        assert hasattr(genja, name), name


def test_genja_task_exports() -> None:
    assert sorted(genja.task.__all__) == sorted(
        [
            "ConnectionOptions",
            "ExecutionMetadata",
            "Host",
            "HostTaskResult",
            "ParseError",
            "IdempotencyCheckResult",
            "IdempotencyMode",
            "RetryConfig",
            "SessionVerificationConfig",
            "TaskDefinition",
            "TaskError",
            "TaskFailureKind",
            "TaskFailureResult",
            "TaskInfo",
            "TaskMessage",
            "TaskMessageLevel",
            "TaskRuntimeContext",
            "TaskSkipResult",
            "TaskStatus",
            "TaskSuccessResult",
            "definition_of",
            "is_task",
            "task",
        ]
    )


def test_genja_settings_exports() -> None:
    """Genja 0.4's settings module: its names, the same classes as genja's."""
    import genja.settings

    assert sorted(genja.settings.__all__) == sorted(
        [
            "CoreConfig",
            "InventoryConfig",
            "LoggingConfig",
            "OptionsConfig",
            "RunnerConfig",
            "RunnerRetryConfig",
            "SSHConfig",
            "Settings",
        ]
    )
    for name in genja.settings.__all__:
        assert getattr(genja.settings, name) is getattr(genja, name), name


def test_error_tree() -> None:
    assert issubclass(genja.GenjaTimeoutError, TimeoutError)
    assert issubclass(genja.TaskDefinitionError, TypeError)
    assert issubclass(genja.InventoryError, genja.ConfigurationError)
    assert issubclass(genja.EventLoopError, genja.RunError)
    for name in ("ConfigurationError", "TaskDefinitionError", "RunError", "GenjaTimeoutError"):
        assert issubclass(getattr(genja, name), genja.GenjaError)


def test_host_repr_hides_the_password() -> None:
    host = genja.Host(id="r1", password="hunter2-secret")
    assert "hunter2-secret" not in repr(host)
    assert host.hostname == "r1"
