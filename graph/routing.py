"""Routing functions: pure reads of the state, so they are trivial to test."""

from __future__ import annotations

from langchain_core.messages import AIMessage

from core.status import RunStatus
from graph.state import AgentState

STOPPED = frozenset(
    {
        RunStatus.STEP_LIMIT,
        RunStatus.REPEATED_FAILURE,
        RunStatus.TERMINATED,
        RunStatus.BUDGET_EXCEEDED,
        RunStatus.HANDED_OFF,
        RunStatus.EMPTY_REPLY,
    }
)


def _stopped(state: AgentState) -> bool:
    return state.get("status") in STOPPED


def after_screen_input(state: AgentState) -> str:
    return "respond" if _stopped(state) else "screen_triggers"


def after_screen_triggers(state: AgentState) -> str:
    return "hitl" if state.get("escalation") else "cache_lookup"


def after_cache_lookup(state: AgentState) -> str:
    if (state.get("cache") or {}).get("hit"):
        return "respond"
    return "plan" if state.get("planning") else "decide"


def after_decide(state: AgentState) -> str:
    """A decision is screened; a refused model call (a cap) goes to ``budget_guard`` instead."""
    return "budget_guard" if state.get("breach") else "screen_actions"


def after_screen_actions(state: AgentState) -> str:
    return "respond" if _stopped(state) else "confidence_gate"


def after_gate(state: AgentState) -> str:
    """``act`` on tool calls, else ``respond``; a person first when the gate asked for one."""
    if state.get("breach"):
        return "budget_guard"
    if state.get("escalation"):
        return "hitl"
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls):
        return "act"
    return "cache_store"


def after_act(state: AgentState) -> str:
    return "budget_guard" if state.get("breach") else "observe"


def after_observe(state: AgentState) -> str:
    if _stopped(state):
        return "respond"
    return "replan" if state.get("plan") else "decide"


def after_replan(state: AgentState) -> str:
    """A plan that cannot go on asks a person (``hitl``); otherwise the model takes the next step."""
    return "hitl" if state.get("escalation") else "decide"


def after_hitl(state: AgentState) -> str:
    return "respond" if _stopped(state) else state.get("resume_to") or "respond"
