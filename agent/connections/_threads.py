"""Blocking connection calls, awaited from `start_async` tasks without blocking the loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class _Connection(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def host_id(self) -> str: ...

    def is_alive(self) -> bool: ...


C = TypeVar("C", bound=_Connection)


async def in_thread(
    executor: concurrent.futures.Executor | None, call: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """`call(*args, **kwargs)` on a worker thread of `executor` (the agent's task threads; the
    loop's default executor when None), awaited."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(call, *args, **kwargs))


class AsyncView(Generic[C]):
    """The awaitable face of a blocking connection (`sync`), for `start_async` tasks: the same
    id, host and liveness; each plugin's subclass adds the awaitable calls."""

    def __init__(self, connection: C) -> None:
        self.sync = connection

    @property
    def id(self) -> str:
        return self.sync.id

    @property
    def host_id(self) -> str:
        return self.sync.host_id

    def is_alive(self) -> bool:
        return self.sync.is_alive()

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"
