"""The safety breaker's nodes: ``screen_input`` before the first model call, ``screen_actions`` after each decision.

A terminating verdict sets status ``terminated``, records a ``terminated`` run
event and a ``firebreak.safety.terminated`` span event, and the graph goes
straight to ``respond``, which explains the stop. The rules live in
:mod:`app.resilience.safety`.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, RemoveMessage
from langgraph.runtime import Runtime
from opentelemetry import trace

from app.resilience.safety import SafetyPolicy, ToolRequest, Verdict, earlier_jailbreaks
from core.config import Settings
from core.status import RunStatus
from graph.state import AgentState, RunContext
from nodes.needs import Configured


def _policy(settings: Settings) -> SafetyPolicy:
    # Cheap to rebuild: ``re`` caches compiled patterns, and settings may differ per agent.
    return SafetyPolicy.from_settings(settings.safety)


def _record(ctx: RunContext, services: Configured, node: str, kind: str, verdict: Verdict) -> None:
    """A run event for the record and an event on the node's span for the trace."""
    services.runs.add_event(ctx.run_id, node, kind, verdict.payload())
    name = "firebreak.safety.terminated" if kind == "terminated" else "firebreak.safety.flagged"
    trace.get_current_span().add_event(
        name,
        {
            "firebreak.safety.rule": verdict.rule,
            "firebreak.safety.reason": verdict.reason,
            "firebreak.safety.detail": verdict.detail,
        },
    )


def _terminate(ctx: RunContext, services: Configured, node: str, verdict: Verdict) -> dict[str, Any]:
    _record(ctx, services, node, "terminated", verdict)
    return {"status": RunStatus.TERMINATED.value, "stop_detail": verdict.reason}


def screen_input(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Flag a jailbreak attempt in the question; at the session's limit, end the run before any model call."""
    ctx = runtime.context
    services: Configured = ctx.services
    policy = _policy(services.settings)
    pattern = policy.jailbreak_attempt(state["messages"][-1].text)
    if pattern is None:
        return {}
    earlier = earlier_jailbreaks(services.runs, ctx.thread_id, excluding=ctx.run_id)
    verdict = policy.jailbreak_verdict(pattern, earlier)
    # Every attempt is flagged, the terminating one too: the flags are the session's count.
    _record(ctx, services, "screen_input", "safety_flag", verdict)
    # A flagged question's answer is never cached: a jailbreak that worked once must not be served again.
    return _terminate(ctx, services, "screen_input", verdict) if verdict.terminate else {"flagged": True}


def screen_actions(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """End the run on a dangerous tool call, a violating tool argument or a violating reply."""
    ctx = runtime.context
    services: Configured = ctx.services
    decision = state["messages"][-1]
    assert isinstance(decision, AIMessage) and decision.id is not None
    calls = [ToolRequest(call["name"], call["args"]) for call in decision.tool_calls]
    calls += [ToolRequest(call["name"] or "", call["args"]) for call in decision.invalid_tool_calls]
    verdict = _policy(services.settings).screen_decision(decision.text, calls)
    if verdict is None:
        return {}
    # Drop the decision from the conversation: its text must never be answered or read back to the model
    # on the next turn, and its tool calls would otherwise stay unanswered in the thread.
    return {**_terminate(ctx, services, "screen_actions", verdict), "messages": [RemoveMessage(id=decision.id)]}
