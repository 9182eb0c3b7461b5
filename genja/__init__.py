"""genja: run Python task classes against an inventory of hosts, on a pool of agent processes."""

from genja._errors import (
    ConfigurationError,
    EventLoopError,
    GenjaError,
    GenjaTimeoutError,
    InventoryError,
    RunError,
    TaskDefinitionError,
)
from genja._genja import Genja
from genja._host import ConnectionOptions, Host
from genja._inventory import Inventory
from genja._processors import ProcessorContext
from genja._result_tree import HostSummary, TaskResults, TaskSummary
from genja._settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "ConnectionOptions",
    "EventLoopError",
    "Genja",
    "GenjaError",
    "GenjaTimeoutError",
    "Host",
    "HostSummary",
    "Inventory",
    "InventoryError",
    "ProcessorContext",
    "RunError",
    "Settings",
    "TaskDefinitionError",
    "TaskResults",
    "TaskSummary",
    "__version__",
]
