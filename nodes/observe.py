"""``observe``: read what the tools returned and decide whether the loop may go on.

Two stop conditions, both explained to the user by ``respond``: the run's
step limit, and a model that keeps repeating the same failing call (the seed's
agent that retried a dead API thousands of times). Both are recorded as events.
A repeated failure also reaches a person: a reviewer's escalation (collaborative:
the run does not wait for it; the reviewer's note reaches the agent on the
conversation's next turn) and an alert, so a dead backend is never only a
sentence in one user's chat.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langgraph.runtime import Runtime

from app.containment import escalation
from app.containment.escalation import this_run
from core.status import RunStatus
from graph.state import AgentState, RunContext
from nodes.needs import Alerting

REPEATED_FAILURES_LIMIT = 3
# The escalation type of a repeated failure: a reviewer looks, the stopped run does not wait for them.
FAILURE_ESCALATION = "collaborative"


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


def _where(state: AgentState, ctx: RunContext) -> escalation.Where:
    return escalation.Where(ctx.run_id, ctx.thread_id, ctx.tenant_id, state.get("pauses", 0))


def failure_escalation_id(state: AgentState, ctx: RunContext) -> str:
    """The id of the escalation a repeated failure opens (stable: ``respond`` names it, a replay reopens it)."""
    return escalation.escalation_id(_where(state, ctx), "repeated_failure")


def _report_failure(state: AgentState, ctx: RunContext, services: Alerting, call: str) -> None:
    """Open the reviewer's escalation for a call that keeps failing (its id: ``failure_escalation_id``) and
    raise an alert."""
    reason = f"{call} failed {REPEATED_FAILURES_LIMIT} times in a row, so the run stopped"
    row = escalation.build(
        _where(state, ctx),
        "repeated_failure",
        type=FAILURE_ESCALATION,
        trigger="repeated_failure",
        reason=reason,
        question=(
            f"The run stopped because {call} keeps failing. Please check the tool or its backend; a note "
            "here reaches the agent on this conversation's next turn."
        ),
        context={"call": call},
        messages=state["messages"],
        settings=services.settings.escalation,
        now=services.clock(),
    )
    services.escalations.open([row])
    services.alert(
        "repeated_failure",
        f"run {ctx.run_id} stopped: {call} kept failing; escalation {row.id[:8]} asks a reviewer",
        {"run_id": ctx.run_id, "tenant_id": ctx.tenant_id, "call": call, "escalation_id": row.id},
    )


def observe(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services: Alerting = ctx.services
    steps = state.get("steps", 0) + 1
    stuck = repeated_failure(state["messages"])
    if stuck is not None:
        _report_failure(state, ctx, services, stuck)
        services.runs.add_event(ctx.run_id, "observe", "stopped", {"reason": "repeated_failure", "call": stuck})
        return {"steps": steps, "status": RunStatus.REPEATED_FAILURE.value, "stop_detail": stuck}
    if steps >= services.settings.agent.max_steps:
        services.runs.add_event(ctx.run_id, "observe", "stopped", {"reason": "step_limit", "steps": steps})
        return {"steps": steps, "status": RunStatus.STEP_LIMIT.value}
    return {"steps": steps}
