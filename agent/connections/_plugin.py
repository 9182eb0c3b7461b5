"""What a connection plugin is, seen from the agent.

A plugin class is found by name in the `genja.connections` entry-point group, instantiated once
per agent, and asked to `open(host, context)` from a worker thread (it may block). What `open`
returns is the connection tasks get from `context.connection()`; the agent caches it per (host,
plugin), asks `is_alive()` before reusing it and `close()`s it at shutdown. A connection with an
`async_view()` hands async tasks that view instead (awaitable methods of the same names).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from genja._host import Host


@dataclass(frozen=True, slots=True)
class OpenContext:
    """Everything `open` gets besides the host; one object so fields can be added later.

    `settings` is the plugin's own section of the run's connection settings (for `ssh`: the
    `ssh` settings section); `executor` runs blocking I/O for async views.
    """

    settings: Mapping[str, Any] = field(default_factory=dict)
    executor: concurrent.futures.Executor | None = None


@runtime_checkable
class Connection(Protocol):
    def is_alive(self) -> bool: ...

    def close(self) -> None: ...


class ConnectionPlugin(Protocol):
    def open(self, host: Host, context: OpenContext) -> Any: ...

    def close(self) -> None:
        """Release what the plugin shares between connections (jump hosts, caches)."""
