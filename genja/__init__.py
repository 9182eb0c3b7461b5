"""genja: run Python task classes against an inventory of hosts, on a pool of agent processes.

The public names below are loaded on first use (PEP 562), not when `genja` is imported: an
agent process imports a few of genja's modules (hosts, results) without paying for settings,
inventory loading, filters and processors, which only the client uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genja._builtin_processors import (
        AuditProcessor,
        JsonlProcessor,
        ProgressProcessor,
    )
    from genja._errors import (
        ConfigurationError,
        EventLoopError,
        GenjaError,
        GenjaTimeoutError,
        InventoryError,
        RunError,
        TaskDefinitionError,
    )
    from genja._events import (
        HostFinished,
        HostStarted,
        NodeFinished,
        ProcessorFailed,
        RunEvent,
        RunFinished,
        RunStarted,
    )
    from genja._filter import (
        F,
        HasKey,
        HostFilter,
        InGroup,
        KeyMatches,
    )
    from genja._genja import Genja
    from genja._host import (
        ConnectionOptions,
        Host,
        SourceKind,
        ValueSource,
    )
    from genja._inventory import Inventory
    from genja._processors import (
        ProcessorContext,
        register_processor,
    )
    from genja._result_tree import (
        HostSummary,
        TaskResults,
        TaskSummary,
    )
    from genja._run_options import TaskRunOptions
    from genja._run_stream import RunStream
    from genja._settings import (
        CoreConfig,
        InventoryConfig,
        LoggingConfig,
        OptionsConfig,
        RunnerConfig,
        RunnerRetryConfig,
        Settings,
        SettingsWarning,
        SSHConfig,
    )
    from genja.task._definition import TaskDefinition
    from genja.task._results import (
        TaskFailureKind,
        TaskMessage,
        TaskMessageLevel,
        TaskStatus,
    )
    from genja.task._retry import RetryConfig
    from genja.task._session import SessionVerificationConfig

__version__ = "0.1.0"

# Where each public name lives.
_HOMES = {
    "AuditProcessor": "genja._builtin_processors",
    "JsonlProcessor": "genja._builtin_processors",
    "ProgressProcessor": "genja._builtin_processors",
    "ConfigurationError": "genja._errors",
    "EventLoopError": "genja._errors",
    "GenjaError": "genja._errors",
    "GenjaTimeoutError": "genja._errors",
    "InventoryError": "genja._errors",
    "RunError": "genja._errors",
    "TaskDefinitionError": "genja._errors",
    "HostFinished": "genja._events",
    "HostStarted": "genja._events",
    "NodeFinished": "genja._events",
    "ProcessorFailed": "genja._events",
    "RunEvent": "genja._events",
    "RunFinished": "genja._events",
    "RunStarted": "genja._events",
    "F": "genja._filter",
    "HasKey": "genja._filter",
    "HostFilter": "genja._filter",
    "InGroup": "genja._filter",
    "KeyMatches": "genja._filter",
    "Genja": "genja._genja",
    "ConnectionOptions": "genja._host",
    "Host": "genja._host",
    "SourceKind": "genja._host",
    "ValueSource": "genja._host",
    "Inventory": "genja._inventory",
    "ProcessorContext": "genja._processors",
    "register_processor": "genja._processors",
    "HostSummary": "genja._result_tree",
    "TaskResults": "genja._result_tree",
    "TaskSummary": "genja._result_tree",
    "RunStream": "genja._run_stream",
    "CoreConfig": "genja._settings",
    "InventoryConfig": "genja._settings",
    "LoggingConfig": "genja._settings",
    "OptionsConfig": "genja._settings",
    "RunnerConfig": "genja._settings",
    "RunnerRetryConfig": "genja._settings",
    "TaskRunOptions": "genja._run_options",
    "Settings": "genja._settings",
    "SettingsWarning": "genja._settings",
    "SSHConfig": "genja._settings",
    "TaskDefinition": "genja.task._definition",
    "TaskFailureKind": "genja.task._results",
    "TaskMessage": "genja.task._results",
    "TaskMessageLevel": "genja.task._results",
    "TaskStatus": "genja.task._results",
    "RetryConfig": "genja.task._retry",
    "IdempotencyCheckResult": "genja.task._idempotency",
    "IdempotencyMode": "genja.task._idempotency",
    "SessionVerificationConfig": "genja.task._session",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'genja' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
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
    "TaskRunOptions",
    "TaskStatus",
    "TaskSummary",
    "ValueSource",
    "__version__",
    "register_processor",
]
