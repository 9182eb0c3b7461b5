"""What a connection plugin is, seen from the agent.

A plugin class is found by name in the `genja.connections` entry-point group, instantiated once
per agent, and asked to `open(host, context)` from a worker thread (it may block). What `open`
returns is the connection tasks get from `context.connection()`. The agent's cache
(`agent._connections.ConnectionCache`) keeps that contract:

- one open connection per (host id, plugin name) per agent, reused across runs; `is_alive()` is
  asked before each reuse, and a dead or stale one (the host's connection details or the
  plugin's settings changed) is closed and replaced by one new login;
- a failed `open` is never cached, and within one run it is not retried: later nodes of that
  host fail at once with the same error (one bad-password attempt per host per run);
- `close()` on every connection when the client asks or the agent stops, then the plugin's own
  `close()` for what it shares between connections (jump hosts, event loops).

A connection with an `async_view()` hands `start_async` tasks that view instead: awaitable
methods of the same names, which never block the agent's event loop.

The plugin's settings arrive typed: `settings_type` is the dataclass registered for the plugin
in the `genja.connection_settings` entry-point group (checked on the client when settings
load); `context.settings` is an instance of it.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from genja._host import Host


@dataclass(frozen=True, slots=True)
class OpenContext:
    """Everything `open` gets besides the host; one object so fields can be added later.

    `settings` is the plugin's own settings section (an instance of its `settings_type`, or
    None for a plugin without one); `executor` runs blocking I/O for async views.
    """

    settings: Any = None
    executor: concurrent.futures.Executor | None = None


@runtime_checkable
class Connection(Protocol):
    def is_alive(self) -> bool: ...

    def close(self) -> None: ...


class ConnectionPlugin(Protocol):
    settings_type: ClassVar[type | None]

    def open(self, host: Host, context: OpenContext) -> Any: ...

    def close(self) -> None:
        """Release what the plugin shares between connections (jump hosts, caches)."""
