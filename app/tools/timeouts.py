"""Tool invocation timeouts (seed pattern 2): how long a call may take, and what happens at the deadline.

Each call gets the timeout of its cost class (``[tools] class_timeouts_s``) unless the tool names its own
(``[tools] timeouts_s`` first, then the tool's ``timeout_s``), never more than the run has left. At the deadline an
async tool is cancelled and a sync one, running in a daemon thread, is abandoned: a hung tool never holds the run
past its budget, and the call becomes a :class:`~core.errors.ToolTimeout` whose effect is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from app.tools.registry import Tool
from core.errors import ToolTimeout

T = TypeVar("T")

SHORTEST_TIMEOUT_S = 0.001  # a run at its deadline still gives the call an instant, and a clean ToolTimeout


@dataclass(frozen=True)
class ToolBudgets:
    """Timeouts by cost class (the seed's table) and per-tool overrides, from ``[tools]``."""

    class_timeouts_s: dict[str, float]
    tool_timeouts_s: dict[str, float]

    def timeout_for(self, item: Tool) -> float:
        if item.name in self.tool_timeouts_s:
            return self.tool_timeouts_s[item.name]
        if item.timeout_s is not None:
            return item.timeout_s
        return self.class_timeouts_s[item.cost_class]

    def timeout_before(self, item: Tool, deadline: float) -> float:
        """The tool's timeout, cut to what is left before the run's ``deadline`` (a ``time.monotonic`` instant)."""
        return max(min(self.timeout_for(item), deadline - time.monotonic()), SHORTEST_TIMEOUT_S)


async def in_daemon_thread(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Run ``fn`` in its own daemon thread.

    Not the loop's default executor: an abandoned call would hold one of its
    few workers and make ``asyncio.run`` wait for it at exit.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(outcome: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(outcome)
        else:
            future.set_exception(error)

    def work() -> None:
        outcome, error = None, None
        try:
            outcome = fn(**kwargs)
        except BaseException as exc:  # handed to the awaiting coroutine, which classifies it
            error = exc
        # An abandoned call may finish after its run, and its event loop, ended.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, outcome, error)

    # In the caller's context, so that the tool's spans and span attributes land in its execute_tool span.
    context = contextvars.copy_context()
    threading.Thread(
        target=context.run, args=(work,), name=f"tool-{getattr(fn, '__name__', 'sync')}", daemon=True
    ).start()
    return await future


def invoke(item: Tool, kwargs: dict[str, Any]) -> Awaitable[Any]:
    """The tool's call in a form the deadline can stop: an async tool as is, a sync one in a daemon thread."""
    return item.fn(**kwargs) if item.is_async else in_daemon_thread(item.fn, kwargs)


async def within_timeout(call: Awaitable[T], timeout_s: float, tool: str) -> T:
    """Await ``call`` for at most ``timeout_s``; past it the call is cancelled and becomes a ToolTimeout."""
    try:
        return await asyncio.wait_for(call, timeout=timeout_s)
    except TimeoutError:
        raise ToolTimeout(f"{tool} did not finish within {timeout_s:g}s; its effect is unknown", tool=tool) from None
