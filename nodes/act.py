"""``act``: run the tool calls of the last decision, each inside its budget and its own span.

Every failure (unknown tool, invalid arguments, timeout, a tool's own error)
becomes a tool message the model can read and correct; nothing here crashes the run.

The gate is enforced here, not only by routing: a gated call (its kind is in
``[gate] actions``, or the untrusted-data rule holds it) runs only with the
verdict ``execute`` or ``approved``, so no path through the graph (a retry, a
replan, a node someone inserted) runs a write nobody cleared. Each result is
stamped with whether its tool declared its output trusted (``TRUSTED_OUTPUT``):
the gate's untrusted-data rule reads that stamp. A
call that hits a blast-radius cap stops the node: the calls already made keep
their results, and the rest run after a reviewer raises the cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.runtime import Runtime
from opentelemetry.trace import Span, SpanKind
from sqlalchemy.engine import Engine

from app.telemetry import Telemetry, mark_error
from app.tools.registry import ToolContext
from app.tools.runner import ToolBudgets, ToolRuntime, op_id_for, run_tool
from core.config import Settings
from core.errors import BudgetExceeded, CircuitOpen, IdempotencyConflict, InvalidToolArguments, ToolError, UnknownTool
from graph.messages import TRUSTED_OUTPUT
from graph.state import AgentState, RunContext
from memory.context import ContextStore
from memory.gate import GateStore
from nodes.budget_guard import breach
from nodes.confidence_gate import is_gated, untrusted_sources
from nodes.needs import Configured

CLEARED = frozenset({"execute", "approved"})


class ActNeeds(Configured, Protocol):
    """Runs tools in their budgets and spans, settles the gate's rows, and reads the checkpoints the gate read."""

    @property
    def engine(self) -> Engine: ...

    @property
    def telemetry(self) -> Telemetry: ...

    @property
    def gate(self) -> GateStore: ...

    @property
    def budgets(self) -> ToolBudgets: ...

    @property
    def tool_runtime(self) -> ToolRuntime: ...

    @property
    def context(self) -> ContextStore: ...

    @property
    def clock(self) -> Callable[[], float]: ...


def _pending_calls(messages: list[Any]) -> list[tuple[int, str, str, Any, str | None]]:
    """(index, id, name, arguments, parse error) of the last decision's calls that have no result yet."""
    position = max(i for i, m in enumerate(messages) if isinstance(m, AIMessage))
    message = messages[position]
    answered = {m.tool_call_id for m in messages[position + 1 :] if isinstance(m, ToolMessage)}
    calls: list[tuple[str, str, Any, str | None]] = [
        (call["id"] or "", call["name"], call["args"], None) for call in message.tool_calls
    ]
    calls += [(c["id"] or "", c["name"] or "", c["args"], c["error"]) for c in message.invalid_tool_calls]
    return [(index, *call) for index, call in enumerate(calls) if call[0] not in answered]


def _refusal(
    state: AgentState, ctx: RunContext, settings: Settings, call_id: str, name: str, untrusted: list[str]
) -> str | None:
    """Why a gated call may not run, or None when it may (``untrusted``: see ``untrusted_sources``)."""
    try:
        item = ctx.tools.get(name)
    except UnknownTool:
        return None  # run_tool reports it to the model
    if not is_gated(item, untrusted, settings):
        return None  # not gated, or a write the read-only switch denies: run_tool refuses it with that reason
    verdict = (state.get("verdicts") or {}).get(call_id)
    if verdict in CLEARED:
        return None
    if verdict == "rejected":
        return f"Rejected: {name} was not run because a person declined it. Do not propose it again."
    return f"Not run: {name} was not cleared by the confidence gate."


async def act(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services: ActNeeds = ctx.services
    step = state.get("steps", 0)
    results: list[ToolMessage] = []
    gate_ids = state.get("gate_ids") or {}
    untrusted = untrusted_sources(
        state["messages"], ctx, services.context
    )  # as the gate saw it: the context before the decision
    for index, call_id, name, arguments, parse_error in _pending_calls(state["messages"]):
        # Malformed arguments are reported as such (they can never run): the model can correct them.
        refusal = None if parse_error is not None else _refusal(state, ctx, services.settings, call_id, name, untrusted)
        if refusal is not None:
            services.runs.add_event(ctx.run_id, "act", "refused", {"tool": name, "call_id": call_id, "why": refusal})
            # The tool did not run: the refusal is the agent's own text.
            stamp = {TRUSTED_OUTPUT: True}
            results.append(
                ToolMessage(content=refusal, tool_call_id=call_id, name=name, status="error", additional_kwargs=stamp)
            )
            continue
        tool_context = _tool_context(ctx, services, op_id_for(ctx.run_id, step, index, name))
        with services.telemetry.tracer.start_as_current_span(f"execute_tool {name}", kind=SpanKind.INTERNAL) as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": name,
                    "gen_ai.tool.call.id": call_id,
                    "gen_ai.tool.type": "function",
                }
            )
            services.telemetry.content(span, "gen_ai.tool.call.arguments", arguments)
            try:
                outcome = await _execute(ctx, services, span, name, arguments, parse_error, tool_context)
            except BudgetExceeded as exc:
                mark_error(span, exc)
                return {"messages": results, **breach(exc, "act")}
            services.telemetry.content(span, "gen_ai.tool.call.result", outcome.output)
        services.runs.add_event(
            ctx.run_id,
            "act",
            "tool_result",
            {
                "tool": name,
                "call_id": call_id,
                "op_id": tool_context.op_id,
                "status": outcome.status,
                "error_type": outcome.error_type,
                "output": outcome.output,
            },
        )
        if call_id in gate_ids:
            settled = "executed" if outcome.status == "success" else "failed"
            services.gate.settle(gate_ids[call_id], settled, now=services.clock())
        results.append(_result_message(ctx, call_id, name, outcome))
    return {"messages": results}


@dataclass(frozen=True)
class _Outcome:
    """What one call came to: the text the model reads, "success" or "error", and the error's type and cause."""

    output: str
    status: Literal["success", "error"]
    error_type: str | None = None
    error_cause: str | None = None


def _tool_context(ctx: RunContext, services: ActNeeds, op_id: str) -> ToolContext:
    return ToolContext(
        run_id=ctx.run_id,
        tenant_id=ctx.tenant_id,
        user_id=ctx.user_id,
        engine=services.engine,
        settings=services.settings,
        op_id=op_id,
        thread_id=ctx.thread_id,
        agent=ctx.agent,
        correlation_id=ctx.correlation_id or ctx.run_id,
    )


async def _execute(
    ctx: RunContext,
    services: ActNeeds,
    span: Span,
    name: str,
    arguments: Any,
    parse_error: str | None,
    tool_context: ToolContext,
) -> _Outcome:
    """Run one call; a tool's failure becomes an error outcome, a blast-radius cap (BudgetExceeded) propagates."""
    try:
        if parse_error is not None:
            raise InvalidToolArguments(f"{name}: {parse_error}; send a JSON object", tool=name)
        item = ctx.tools.get(name)
        span.set_attribute("firebreak.tool.kind", item.kind)
        if item.kind == "write":
            span.set_attribute("firebreak.op_id", tool_context.op_id or "")
        output = await run_tool(
            item,
            arguments,
            tool_context,
            # A tool never runs past the run's wall clock, whatever its own budget.
            timeout_s=services.budgets.timeout_before(item, ctx.deadline),
            runtime=services.tool_runtime,
            deadline=ctx.deadline,
        )
        return _Outcome(output, "success")
    except CircuitOpen as exc:
        mark_error(span, exc)
        return _Outcome(
            f"Error: {exc}. Do not call {name} again in this run; answer without it.", "error", "CircuitOpen"
        )
    except (ToolError, IdempotencyConflict) as exc:
        mark_error(span, exc)
        cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else None
        return _Outcome(f"Error: {exc}", "error", type(exc).__name__, cause)


def _result_message(ctx: RunContext, call_id: str, name: str, outcome: _Outcome) -> ToolMessage:
    # The error's type and cause ride along (never shown to the model): replan tells an open breaker and a
    # shared entity that changed under the run (StaleEntity) apart from other failures.
    kwargs: dict[str, Any] = {"error_type": outcome.error_type} if outcome.error_type else {}
    if outcome.status == "error" and outcome.error_cause is not None:
        kwargs["cause"] = outcome.error_cause
    # Whether the result is the deployment's own data, as its tool declared when it ran: the gate reads it.
    kwargs[TRUSTED_OUTPUT] = name in ctx.tools and ctx.tools.get(name).trusted_output
    return ToolMessage(
        content=outcome.output, tool_call_id=call_id, name=name, status=outcome.status, additional_kwargs=kwargs
    )
