"""The genja agent process: holds connections and runs tasks the coordinator sends."""

from agent._cli import main

__all__ = ["main"]
