"""``observe``: read what the tools returned and decide whether the loop may go on.

Two stop conditions, both explained to the user by ``respond``: the run's
step limit, and a model that keeps repeating the same failing call (the seed's
agent that retried a dead API thousands of times). Both are recorded as events.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langgraph.runtime import Runtime

from app.containment.escalation import this_run
from graph.state import AgentState, RunContext

REPEATED_FAILURES_LIMIT = 3


def repeated_failure(messages: list[AnyMessage]) -> str | None:
    """The call signature the model has made and seen fail ``REPEATED_FAILURES_LIMIT`` times, if any."""
    calls: dict[str, str] = {}
    failures: dict[str, int] = {}
    for message in this_run(messages):
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                calls[call["id"] or ""] = f"{call['name']}({json.dumps(call['args'], sort_keys=True)})"
            for bad in message.invalid_tool_calls:
                calls[bad["id"] or ""] = f"{bad['name']}({bad['args']})"
        elif isinstance(message, ToolMessage) and message.status == "error":
            signature = calls.get(message.tool_call_id, message.tool_call_id)
            failures[signature] = failures.get(signature, 0) + 1
            if failures[signature] >= REPEATED_FAILURES_LIMIT:
                return signature
    return None


def observe(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    steps = state.get("steps", 0) + 1
    stuck = repeated_failure(state["messages"])
    if stuck is not None:
        ctx.services.runs.add_event(ctx.run_id, "observe", "stopped", {"reason": "repeated_failure", "call": stuck})
        return {"steps": steps, "status": "repeated_failure", "stop_detail": stuck}
    if steps >= ctx.services.settings.agent.max_steps:
        ctx.services.runs.add_event(ctx.run_id, "observe", "stopped", {"reason": "step_limit", "steps": steps})
        return {"steps": steps, "status": "step_limit"}
    return {"steps": steps}
