"""Run one tool call inside its budget, its breaker and its retry policy.

Every failure becomes a :class:`ToolError`: the model is told what happened and
the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.errors import ToolError, ToolFailed, ToolTimeout, ToolUnavailable
from app.faults import Fault, FaultPlan
from app.resilience.retry import Guard
from app.tools.registry import Tool, ToolContext

TRANSIENT_FAULTS = frozenset({"server", "rate_limit", "connection"})


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


def render_result(result: Any, max_chars: int) -> str:
    """Serialise a tool result for the model, cutting huge payloads with a visible marker."""
    text = result if isinstance(result, str) else json.dumps(result, default=str, ensure_ascii=False)
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}… [truncated: {len(text)} characters, showing the first {max_chars}]"


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

    threading.Thread(target=work, name=f"tool-{getattr(fn, '__name__', 'sync')}", daemon=True).start()
    return await future


async def _apply_fault(fault: Fault | None, name: str) -> None:
    if fault is None:
        return
    await fault.delay()
    if fault.error_kind == "timeout":
        raise ToolTimeout(f"injected timeout fault in {name}", tool=name)
    if fault.error_kind in TRANSIENT_FAULTS:
        raise ToolUnavailable(f"injected {fault.error_kind} fault in {name}", tool=name)
    if fault.error_kind is not None:
        raise ToolFailed(f"injected {fault.error_kind} fault in {name}", tool=name)


def is_transient(exc: BaseException) -> bool:
    """Timeouts and unavailable backends may succeed on another try; logical errors will not."""
    return isinstance(exc, ToolTimeout | ToolUnavailable)


async def run_tool(
    item: Tool,
    raw_arguments: str | dict[str, Any],
    context: ToolContext,
    *,
    timeout_s: float,
    faults: FaultPlan,
    guard: Guard,
    max_result_chars: int,
    deadline: float | None = None,
) -> str:
    """Validate, run within ``timeout_s`` per attempt, retry transient failures, render.

    Raises a :class:`ToolError` subclass, or :class:`~app.errors.CircuitOpen`
    when the tool's breaker refuses the call. Async tools are cancelled at the
    deadline; sync tools run in a daemon thread abandoned at the deadline, so a
    hung tool never holds the run past its budget.
    """
    arguments = item.parse_arguments(raw_arguments)
    kwargs = item.bind(arguments, context)

    async def call() -> Any:
        await _apply_fault(faults.draw(item.name), item.name)
        if item.is_async:
            return await item.fn(**kwargs)
        return await in_daemon_thread(item.fn, kwargs)

    async def attempt() -> Any:
        try:
            return await asyncio.wait_for(call(), timeout=timeout_s)
        except TimeoutError:
            raise ToolTimeout(
                f"{item.name} did not finish within {timeout_s:g}s; its effect is unknown", tool=item.name
            ) from None
        except ToolError:
            raise
        except ConnectionError as exc:
            raise ToolUnavailable(f"{item.name} could not reach its backend: {exc}", tool=item.name) from exc
        except Exception as exc:  # a tool's own bug must not crash the run
            raise ToolFailed(f"{item.name} failed: {type(exc).__name__}: {exc}", tool=item.name) from exc

    result = await guard.call(
        f"tool:{item.name}",
        attempt,
        is_transient=is_transient,
        slow_after_s=timeout_s / 2,
        deadline=deadline,
        attempts=item.retries,
    )
    return render_result(result, max_result_chars)
