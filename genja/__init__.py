"""genja: run Python task classes against an inventory of hosts, on a pool of agent processes."""

from genja._builtin_processors import AuditProcessor, JsonlProcessor, ProgressProcessor
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
from genja._filter import F, HasKey, HostFilter, InGroup, KeyMatches
from genja._genja import Genja
from genja._host import ConnectionOptions, Host, SourceKind, ValueSource
from genja._inventory import Inventory
from genja._processors import ProcessorContext, register_processor
from genja._result_tree import HostSummary, TaskResults, TaskSummary
from genja._settings import Settings, SettingsWarning
from genja.task._results import TaskMessage, TaskMessageLevel
from genja.task._retry import RetryConfig

__version__ = "0.1.0"

__all__ = [
    "AuditProcessor",
    "ConfigurationError",
    "ConnectionOptions",
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
    "InGroup",
    "Inventory",
    "InventoryError",
    "JsonlProcessor",
    "KeyMatches",
    "NodeFinished",
    "ProcessorContext",
    "ProcessorFailed",
    "ProgressProcessor",
    "RetryConfig",
    "RunError",
    "RunEvent",
    "RunFinished",
    "RunStarted",
    "Settings",
    "SettingsWarning",
    "SourceKind",
    "TaskDefinitionError",
    "TaskMessage",
    "TaskMessageLevel",
    "TaskResults",
    "TaskSummary",
    "ValueSource",
    "__version__",
    "register_processor",
]
