"""``observe``: count the step and decide whether the loop may go on."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graph.state import AgentState, RunContext


def observe(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    steps = state.get("steps", 0) + 1
    if steps >= runtime.context.services.settings.agent.max_steps:
        return {"steps": steps, "status": "step_limit"}
    return {"steps": steps}
