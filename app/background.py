"""Work that runs beside a process's own: started with the block, stopped and awaited when it ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any


@contextlib.asynccontextmanager
async def in_background(
    work: Callable[[asyncio.Event], Awaitable[Any]], *, name: str | None = None
) -> AsyncIterator[asyncio.Task[Any]]:
    """Run ``work(stop)`` as a task while the block runs; at its end set ``stop`` and let the work finish."""
    stop = asyncio.Event()
    task = asyncio.ensure_future(work(stop))
    if name is not None:
        task.set_name(name)
    try:
        yield task
    finally:
        stop.set()
        await task
