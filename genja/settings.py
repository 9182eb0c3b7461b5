"""The settings classes under Genja 0.4's names (`from genja.settings import Settings,
RunnerConfig`), for scripts written against it. genja's own names are in `genja`."""

from genja._settings import (
    CoreConfig,
    InventoryConfig,
    LoggingConfig,
    OptionsConfig,
    RunnerConfig,
    RunnerRetryConfig,
    Settings,
    SSHConfig,
)

__all__ = [
    "CoreConfig",
    "InventoryConfig",
    "LoggingConfig",
    "OptionsConfig",
    "RunnerConfig",
    "RunnerRetryConfig",
    "SSHConfig",
    "Settings",
]
