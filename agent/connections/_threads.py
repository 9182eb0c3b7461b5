"""Blocking connection calls, awaited from `start_async` tasks without blocking the loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_thread(
    executor: concurrent.futures.Executor | None, call: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """`call(*args, **kwargs)` on a worker thread of `executor` (the agent's task threads; the
    loop's default executor when None), awaited."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(call, *args, **kwargs))
