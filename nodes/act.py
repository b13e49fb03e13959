"""``act``: run the tool calls of the last decision, each inside its budget and its own span.

Every failure (unknown tool, invalid arguments, timeout, a tool's own error)
becomes a tool message the model can read and correct; nothing here crashes the run.
"""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.runtime import Runtime
from opentelemetry.trace import SpanKind

from app.errors import CircuitOpen, InvalidToolArguments, ToolError
from app.telemetry import mark_error
from app.tools.registry import ToolContext
from app.tools.runner import op_id_for, run_tool
from graph.state import AgentState, RunContext
from memory.operations import IdempotencyConflict


def _pending_calls(message: AIMessage) -> list[tuple[str, str, Any, str | None]]:
    """(id, name, arguments, parse error) for every call, valid or malformed, in order."""
    calls: list[tuple[str, str, Any, str | None]] = [
        (call["id"] or "", call["name"], call["args"], None) for call in message.tool_calls
    ]
    calls += [(c["id"] or "", c["name"] or "", c["args"], c["error"]) for c in message.invalid_tool_calls]
    return calls


async def act(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services = ctx.services
    decision = state["messages"][-1]
    assert isinstance(decision, AIMessage)
    step = state.get("steps", 0)
    results = []
    for index, (call_id, name, arguments, parse_error) in enumerate(_pending_calls(decision)):
        tool_context = ToolContext(
            run_id=ctx.run_id,
            tenant_id=ctx.tenant_id,
            user_id=ctx.user_id,
            engine=services.engine,
            settings=services.settings,
            op_id=op_id_for(ctx.run_id, step, index, name),
            thread_id=ctx.thread_id,
        )
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
                if parse_error is not None:
                    raise InvalidToolArguments(f"{name}: {parse_error}; send a JSON object", tool=name)
                item = services.tools.get(name)
                span.set_attribute("firebreak.tool.kind", item.kind)
                if item.kind == "write":
                    span.set_attribute("firebreak.op_id", tool_context.op_id or "")
                output = await run_tool(
                    item,
                    arguments,
                    tool_context,
                    # A tool never runs past the run's wall clock, whatever its own budget.
                    timeout_s=max(min(services.budgets.timeout_for(item), ctx.deadline - time.monotonic()), 0.001),
                    runtime=services.tool_runtime,
                    deadline=ctx.deadline,
                )
                status, error_type = "success", None
            except CircuitOpen as exc:
                mark_error(span, exc)
                output = f"Error: {exc}. Do not call {name} again in this run; answer without it."
                status, error_type = "error", "CircuitOpen"
            except (ToolError, IdempotencyConflict) as exc:
                mark_error(span, exc)
                output, status, error_type = f"Error: {exc}", "error", type(exc).__name__
            services.telemetry.content(span, "gen_ai.tool.call.result", output)
        services.runs.add_event(
            ctx.run_id,
            "act",
            "tool_result",
            {
                "tool": name,
                "call_id": call_id,
                "op_id": tool_context.op_id,
                "status": status,
                "error_type": error_type,
                "output": output,
            },
        )
        results.append(ToolMessage(content=output, tool_call_id=call_id, name=name, status=status))
    return {"messages": results}
