"""The exceptions genja raises.

One root, a small tree; leaves also subclass the matching builtin so callers can catch either::

    GenjaError
    ├── ConfigurationError (ValueError)       bad settings, inventory or plugin names
    │   └── InventoryError                    a hosts / groups / defaults file that cannot load
    ├── TaskDefinitionError (TypeError)       a @task class that cannot be run
    ├── RunError (RuntimeError)               the run itself could not happen (no agents, ...)
    │   └── EventLoopError                    a sync entry point called inside a running loop
    └── GenjaTimeoutError (TimeoutError)      a deadline passed

Failures of individual hosts are never raised: they are results in the tree.
"""

from __future__ import annotations


class GenjaError(Exception):
    """Root of every exception genja raises on purpose."""


class ConfigurationError(GenjaError, ValueError):
    """Settings, inventory or plugin selection that genja cannot use."""


class InventoryError(ConfigurationError):
    """A hosts, groups or defaults file that cannot be loaded."""


class TaskDefinitionError(GenjaError, TypeError):
    """A task class that does not follow the @task contract."""


class RunError(GenjaError, RuntimeError):
    """A run that could not be carried out at all (as opposed to hosts that failed)."""


class EventLoopError(RunError):
    """A synchronous entry point was called from inside a running event loop."""


class GenjaTimeoutError(GenjaError, TimeoutError):
    """A deadline passed before the work finished."""
