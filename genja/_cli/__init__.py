"""The `genja` command: run a task over the inventory, list the inventory, show the version."""

from genja._cli._main import main

__all__ = ["main"]
