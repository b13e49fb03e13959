"""Routing functions: pure reads of the state, so they are trivial to test."""

from __future__ import annotations

from langchain_core.messages import AIMessage

from graph.state import AgentState

STOPPED = frozenset({"step_limit", "repeated_failure"})


def after_decide(state: AgentState) -> str:
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls):
        return "act"
    return "respond"


def after_observe(state: AgentState) -> str:
    return "respond" if state.get("status") in STOPPED else "decide"
