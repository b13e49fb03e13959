"""``respond``: settle the run's answer from the last decision."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from graph.state import AgentState, RunContext


def respond(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    if state.get("status") == "step_limit":
        steps = state.get("steps", 0)
        answer = f"I stopped after {steps} tool steps without reaching an answer; please narrow the request."
        message: list[AIMessage] = [AIMessage(content=answer)]
        status = "step_limit"
    else:
        last = state["messages"][-1]
        answer, message, status = last.text, [], "answered"
    ctx.services.runs.add_event(ctx.run_id, "respond", "answer", {"status": status, "answer": answer})
    return {"answer": answer, "status": status, "messages": message}
