"""Routing functions: pure reads of the state, so they are trivial to test."""

from __future__ import annotations

from langchain_core.messages import AIMessage

from graph.state import AgentState

STOPPED = frozenset({"step_limit", "repeated_failure", "terminated"})


def after_decide(state: AgentState) -> str:
    """Where a decision leads: ``act`` on tool calls, else ``respond``; a decision the screening stopped never acts."""
    if state.get("status") in STOPPED:
        return "respond"
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls):
        return "act"
    return "respond"


def after_observe(state: AgentState) -> str:
    return "respond" if state.get("status") in STOPPED else "decide"


def after_screen_input(state: AgentState) -> str:
    return "respond" if state.get("status") in STOPPED else "decide"
