"""Run one tool call inside its budget, its breaker and its retry policy.

Every failure becomes a :class:`ToolError`: the model is told what happened and
the run goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from app.cache.tool_results import ToolResultCache
from app.faults import Fault, FaultPlan
from app.limits.ledger import BlastRadius, Scope
from app.resilience.retry import Guard
from app.tools.registry import Tool, ToolContext
from app.tools.timeouts import ToolBudgets as ToolBudgets  # app/services.py builds it from here
from app.tools.timeouts import invoke, within_timeout
from core.errors import CircuitOpen, ToolError, ToolFailed, ToolTimeout, ToolUnavailable
from memory.cache import READ_TOOL
from memory.idempotency import OperationLog

TRANSIENT_FAULTS = frozenset({"server", "rate_limit", "connection"})


@dataclass(frozen=True)
class ToolRuntime:
    """What every tool call shares: breakers and retries, faults, the operation log, limits, wall time."""

    guard: Guard
    faults: FaultPlan
    operations: OperationLog
    limits: BlastRadius
    max_result_chars: int
    results: ToolResultCache | None = None  # the read-tool cache layer; None when [cache] is off
    clock: Callable[[], float] = time.time


def render_result(result: Any, max_chars: int) -> str:
    """Serialise a tool result for the model, cutting huge payloads with a visible marker."""
    # pydantic's encoder: a returned model, dataclass, enum, date or set becomes the JSON it stands for, not its repr.
    text = (
        result if isinstance(result, str) else json.dumps(to_jsonable_python(result, fallback=str), ensure_ascii=False)
    )
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}… [truncated: {len(text)} characters, showing the first {max_chars}]"


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


def op_id_for(run_id: str, step: int, call_index: int, tool_name: str) -> str:
    """The op_id of a write: the same run, step and call always give the same id, so a retried or resumed
    step finds the operation it already did."""
    return hashlib.sha256(f"{run_id}/{step}/{call_index}/{tool_name}".encode()).hexdigest()[:32]


def reader_of(item: Tool, context: ToolContext) -> str | None:
    """Whose cached result a read is: the calling user's when the tool receives the context (it may read
    ``ctx.user_id``: "my balance") and does not declare its data shared; None, every user of the tenant's."""
    return None if item.shared or item.context_param is None else context.user_id


def arguments_hash(arguments: BaseModel) -> str:
    return hashlib.sha256(json.dumps(arguments.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


async def run_tool(
    item: Tool,
    raw_arguments: str | dict[str, Any],
    context: ToolContext,
    *,
    timeout_s: float,
    runtime: ToolRuntime,
    deadline: float | None = None,
) -> str:
    """Validate, run within ``timeout_s`` per attempt, retry transient failures, render.

    Raises a :class:`ToolError` subclass, or :class:`~core.errors.CircuitOpen`
    when the tool's breaker refuses the call. The timeout and what happens at it
    live in ``app/tools/timeouts.py``. Write tools run at most once per op_id
    (see ``memory/idempotency.py``).
    """
    arguments = item.parse_arguments(raw_arguments)
    kwargs = item.bind(arguments, context)

    async def call() -> Any:
        fault = runtime.faults.draw(item.name)
        await _apply_fault(fault, item.name)
        result = await invoke(item, kwargs)
        if fault is not None and fault.latency_after_s:
            await asyncio.sleep(fault.latency_after_s)
        return result

    async def attempt() -> Any:
        return await _classified(item.name, within_timeout(call(), timeout_s, item.name))

    async def guarded() -> str:
        result = await runtime.guard.call(
            item.breaker_backend,
            attempt,
            is_transient=is_transient,
            slow_after_s=timeout_s / 2,
            deadline=deadline,
            attempts=item.retries,
        )
        return render_result(result, runtime.max_result_chars)

    async def spent(charge: bool = True) -> str:
        """The call inside its blast-radius reservation: held before, settled after."""
        amounts = {"tool_calls": 1.0, **item.consumes} if charge else {}
        reservation = runtime.limits.reserve(Scope(context.run_id, context.thread_id, context.tenant_id), amounts)
        try:
            output = await guarded()
        except CircuitOpen:
            runtime.limits.settle(reservation, {})  # refused before any call: nothing was spent
            raise
        except BaseException:
            runtime.limits.settle(reservation, amounts)
            raise
        runtime.limits.settle(reservation, amounts)
        return output

    results = runtime.results
    if item.kind == "read":
        if not item.cached or results is None:
            return await spent()
        return await _cached_read(item, arguments, context, results, spent)
    if runtime.limits.settings.read_only:
        raise ToolFailed(f"{item.name} is a write tool and this environment is read-only", tool=item.name)
    # A replay of a completed write spends nothing: only an execution reserves budget.
    output = await _once(item, arguments, context, runtime, spent)
    if results is not None:
        results.forget(context.tenant_id)  # the write may have changed what the tenant's cached reads say
    return output


async def _classified(name: str, call: Awaitable[Any]) -> Any:
    """Await one attempt, turning whatever it raises into the ToolError the model is told about."""
    try:
        return await call
    except ToolError:
        raise
    except ConnectionError as exc:
        raise ToolUnavailable(f"{name} could not reach its backend: {exc}", tool=name) from exc
    except Exception as exc:  # a tool's own bug must not crash the run
        raise ToolFailed(f"{name} failed: {type(exc).__name__}: {exc}", tool=name) from exc


async def _cached_read(
    item: Tool,
    arguments: BaseModel,
    context: ToolContext,
    results: ToolResultCache,
    run: Callable[[], Awaitable[str]],
) -> str:
    """A read served from the read-tool cache when it holds the result, else run and remembered."""
    digest = arguments_hash(arguments)
    user = reader_of(item, context)
    span = trace.get_current_span()
    cached = results.get(context.tenant_id, user, item.name, digest)
    span.set_attributes(
        {
            "firebreak.cache.layer": READ_TOOL,
            "firebreak.cache.hit": cached is not None,
            "firebreak.cache.scope": "tenant" if user is None else "user",
        }
    )
    if cached is not None:
        return cached  # no call was made: nothing is charged
    output = await run()
    results.put(context.tenant_id, user, item.name, digest, output)
    return output


async def _once(
    item: Tool,
    arguments: BaseModel,
    context: ToolContext,
    runtime: ToolRuntime,
    run: Callable[[bool], Awaitable[str]],
) -> str:
    """Run a write at most once per op_id; a timeout leaves its outcome *unknown* for a retry to settle."""
    if context.op_id is None:
        raise ToolFailed(f"{item.name} is a write tool and needs an op_id", tool=item.name)
    operations, op_id = runtime.operations, context.op_id
    claim = operations.claim(
        op_id,
        tool=item.name,
        args_hash=arguments_hash(arguments),
        tenant_id=context.tenant_id,
        run_id=context.run_id,
        now=runtime.clock(),
    )
    if claim.kind == "completed":
        trace.get_current_span().set_attribute("firebreak.idempotent_replay", True)
        return claim.result or ""
    if claim.kind == "in_progress":
        raise ToolFailed(f"operation {op_id} ({item.name}) is already in progress; wait for it", tool=item.name)
    try:
        # Only the first execution of an op_id is charged: a retry settles the same operation.
        output = await run(claim.first)
    except ToolTimeout as exc:
        operations.finish(op_id, "unknown", error=str(exc), now=runtime.clock())
        raise
    except BaseException as exc:
        operations.finish(op_id, "failed", error=str(exc), now=runtime.clock())
        raise
    operations.finish(op_id, "completed", result=output, now=runtime.clock())
    return output
