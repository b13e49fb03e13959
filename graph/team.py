"""Orchestration (seed pattern 12, the default): a supervisor graph drives research, writer and reviewer
agents over one shared ticket, with explicit, traced control flow.

Each agent is a run of the single-agent graph (its own thread, its role, the team's correlation id), so it
keeps every guard: breakers, budgets, the confidence gate, idempotent writes. They share state only through
the ticket (``app/tools/shared.py``): versioned, written by compare-and-swap, every change an event. The
supervisor decides who acts next; the reviewer sends the draft back to the writer at most
``[team] max_rounds`` times, so two agents cannot bounce the ticket forever. One ``invoke_agent team`` span
holds every member's run, so the whole interaction is one trace.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from opentelemetry.trace import SpanKind

from graph.agent import Agent, RunResult

ROLES = {
    "research": (
        "You are the research agent of a support team. Read ticket {ticket} with ticket_read and the facts it "
        "needs (orders, policies), then reply with your findings. Do not change the ticket."
    ),
    "writer": (
        "You are the writer agent of a support team. Read ticket {ticket}, then write the customer reply into "
        "its 'draft' field with ticket_update at the version you read. Findings: {findings} {feedback}"
    ),
    "reviewer": (
        "You are the reviewer agent of a support team. Read ticket {ticket} and its draft. If the draft is "
        "right, set 'status' to 'approved' with ticket_update and reply APPROVED; otherwise reply REVISE: and "
        "what to change."
    ),
}


class TeamState(TypedDict, total=False):
    findings: str
    feedback: str
    rounds: int
    verdict: str
    runs: list[dict[str, Any]]  # every member run: role, run id, status, answer


@dataclass
class TeamResult:
    correlation_id: str
    ticket: str
    verdict: str
    rounds: int
    runs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "correlation_id": self.correlation_id,
            "ticket": self.ticket,
            "verdict": self.verdict,
            "rounds": self.rounds,
            "runs": self.runs,
        }


def _record(state: TeamState, role: str, result: RunResult) -> list[dict[str, Any]]:
    entry = {"role": role, "run_id": result.run_id, "status": result.status, "answer": result.answer}
    return [*(state.get("runs") or []), entry]


async def run_team(
    agent: Agent, request: str, *, ticket: str, route: str | None = None, tenant_id: str | None = None
) -> TeamResult:
    """Work on ``ticket`` for ``request`` with the research → writer → reviewer team; returns who did what."""
    correlation = str(uuid.uuid4())
    max_rounds = agent.services.settings.team.max_rounds

    async def member(role: str, state: TeamState) -> RunResult:
        prompt = ROLES[role].format(
            ticket=ticket, findings=state.get("findings", ""), feedback=state.get("feedback", "")
        )
        return await agent.ask(
            f"{prompt}\n\nRequest: {request}",
            thread_id=f"{correlation}:{role}",
            route=route,
            tenant_id=tenant_id,
            agent=role,
            correlation_id=correlation,
        )

    async def research(state: TeamState) -> TeamState:
        result = await member("research", state)
        return {"findings": result.answer or "", "runs": _record(state, "research", result)}

    async def writer(state: TeamState) -> TeamState:
        result = await member("writer", state)
        return {"rounds": state.get("rounds", 0) + 1, "runs": _record(state, "writer", result)}

    async def reviewer(state: TeamState) -> TeamState:
        result = await member("reviewer", state)
        answer = (result.answer or "").strip()
        verdict = "approved" if answer.upper().startswith("APPROVED") else "revise"
        feedback = f"The reviewer asked: {answer.removeprefix('REVISE:').strip()}" if verdict == "revise" else ""
        return {"verdict": verdict, "feedback": feedback, "runs": _record(state, "reviewer", result)}

    def after_review(state: TeamState) -> str:
        if state.get("verdict") == "approved" or state.get("rounds", 0) >= max_rounds:
            return END
        return "writer"

    graph = StateGraph(TeamState)
    graph.add_node("research", research)
    graph.add_node("writer", writer)
    graph.add_node("reviewer", reviewer)
    graph.add_edge(START, "research")
    graph.add_edge("research", "writer")
    graph.add_edge("writer", "reviewer")
    graph.add_conditional_edges("reviewer", after_review, ["writer", END])
    tracer = agent.services.telemetry.tracer
    with tracer.start_as_current_span("invoke_agent team", kind=SpanKind.INTERNAL) as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "invoke_agent",
                "firebreak.correlation_id": correlation,
                "firebreak.ticket": ticket,
            }
        )
        final = await graph.compile().ainvoke({"rounds": 0, "runs": []})
        span.set_attributes(
            {"firebreak.team.verdict": final.get("verdict", ""), "firebreak.team.rounds": final["rounds"]}
        )
    agent.services.telemetry.flush()
    return TeamResult(correlation, ticket, final.get("verdict", ""), final["rounds"], final["runs"])
