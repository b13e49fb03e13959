"""Orchestration (seed pattern 8, the default): a supervisor graph drives research, writer and reviewer
agents over one shared ticket, with explicit, traced control flow.

Each agent is a run of the single-agent graph (its own thread, its role, the team's correlation id), so it
keeps every guard: breakers, budgets, the confidence gate, idempotent writes. They share state only through
the ticket (``app/tools/shared_state.py``): versioned, written by compare-and-swap, every change an event. The
supervisor decides who acts next; the reviewer sends the draft back to the writer at most
``[team] max_rounds`` times, so two agents cannot bounce the ticket forever. One ``invoke_agent team`` span
holds every member's run, so the whole interaction is one trace.

The supervisor is checkpointed with the agent's checkpointer (its thread id is the correlation id) and each
member's turn has a run id derived from the correlation id, its role and its turn, so a team run picks up
where it stopped (:func:`resume_team`) without running a finished member again: after its process died, or
after it stopped to wait. A member whose run waits for a person (a gated write goes to a reviewer: the team
has no chat user to confirm anything) stops the team in a visible ``waiting`` state with the escalations it
waits for; once they are answered (``firebreak escalations answer`` finishes the member's run), resuming the
team goes on from there. A member whose run ends without an answer (the safety breaker, a budget cap, a
failure) stops the team the same way, ``stopped``: no later member works from what that run left. Resuming
tries a run that failed on the way again (as the queue would); a deliberate stop stays stopped (decision 0063).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from opentelemetry.trace import SpanKind

from core.errors import FirebreakError
from core.status import RESUMABLE, RunStatus, is_error
from graph.agent import Agent
from graph.results import escalation_view

# Member run ids are uuid5s in this namespace of "correlation:role:turn": the same turn is the same run.
TEAM_RUNS = uuid.UUID("2f0c3f55-0d3e-4a0e-9a51-7465616d7275")
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
    request: str  # what the team was asked, its ticket, route and tenant: a resume needs only the correlation id
    ticket: str
    route: str | None
    tenant_id: str
    findings: str
    feedback: str
    rounds: int
    verdict: str
    runs: list[dict[str, Any]]  # every finished member run: role, run id, status, answer


@dataclass
class TeamResult:
    correlation_id: str
    ticket: str
    verdict: str
    rounds: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    # finished | waiting (a member's run waits for a person: see waiting_for) | stopped (a member's run ended
    # without an answer: see stopped_by)
    status: str = "finished"
    waiting_for: list[dict[str, Any]] = field(default_factory=list)  # open escalations, with role and run_id
    stopped_by: dict[str, Any] | None = None  # the member run that stopped it, and whether a resume retries it

    def as_dict(self) -> dict[str, Any]:
        return {
            "correlation_id": self.correlation_id,
            "ticket": self.ticket,
            "status": self.status,
            "verdict": self.verdict,
            "rounds": self.rounds,
            "runs": self.runs,
            "waiting_for": self.waiting_for,
            "stopped_by": self.stopped_by,
        }

    def why_stopped(self) -> str:
        """What the run that stopped the team ended with: its error, else its answer (the safety breaker's
        sentence); empty when nothing stopped it."""
        member = self.stopped_by
        return "" if member is None else member["error"] or member["answer"] or "no answer"


def member_run_id(correlation_id: str, role: str, turn: int) -> str:
    """The run id of ``role``'s ``turn``-th run (from 0) in the team run ``correlation_id``."""
    return str(uuid.uuid5(TEAM_RUNS, f"{correlation_id}:{role}:{turn}"))


def in_team_run(run_id: str, role: str, correlation_id: str | None, max_rounds: int) -> bool:
    """Whether ``run_id`` is one of ``role``'s turns in the team run ``correlation_id`` (not a subscriber's run)."""
    return correlation_id is not None and any(
        member_run_id(correlation_id, role, turn) == run_id for turn in range(max_rounds + 1)
    )


def _waiting_for(agent: Agent, role: str, run_id: str) -> list[dict[str, Any]]:
    rows = agent.services.escalations.for_run(run_id)
    return [
        {**escalation_view(row), "role": role, "run_id": run_id}
        for row in rows
        if row.status == "open" and row.pauses_run
    ]


def _supervisor(agent: Agent, correlation: str) -> StateGraph[TeamState]:
    """The team's graph; each node runs (or picks up) one member's turn and records it in ``runs``."""
    max_rounds = agent.services.settings.team.max_rounds
    runs = agent.services.runs

    async def turn(role: str, state: TeamState) -> dict[str, Any]:
        """This role's next run: started, continued after its process died, or read back once finished. While
        it waits for a person, or once it ended without an answer, the team stops here (an interrupt) and looks
        again when resumed; a run that failed on the way is tried again then."""
        done = state.get("runs") or []
        run_id = member_run_id(correlation, role, sum(entry["role"] == role for entry in done))
        run = runs.get(run_id)
        if run is None:
            prompt = ROLES[role].format(
                ticket=state["ticket"], findings=state.get("findings", ""), feedback=state.get("feedback", "")
            )
            await agent.ask(
                f"{prompt}\n\nRequest: {state['request']}",
                run_id=run_id,
                thread_id=f"{correlation}:{role}",
                route=state.get("route"),
                tenant_id=state["tenant_id"],
                agent=role,
                correlation_id=correlation,
            )
        elif run.status == RunStatus.RUNNING or run.status in RESUMABLE:
            await agent.resume(run_id)  # the team's process died during this turn, or the run failed on the way
        run = runs.get(run_id)
        while run is not None and (run.status == RunStatus.WAITING or is_error(run.status)):
            interrupt({"role": role, "run_id": run_id})
            run = runs.get(run_id)  # resumed: answered meanwhile, or still waiting or stopped (interrupt again)
        assert run is not None
        return {"role": role, "run_id": run_id, "status": run.status, "answer": run.answer}

    async def research(state: TeamState) -> TeamState:
        result = await turn("research", state)
        return {"findings": result["answer"] or "", "runs": [*(state.get("runs") or []), result]}

    async def writer(state: TeamState) -> TeamState:
        result = await turn("writer", state)
        return {"rounds": state.get("rounds", 0) + 1, "runs": [*(state.get("runs") or []), result]}

    async def reviewer(state: TeamState) -> TeamState:
        result = await turn("reviewer", state)
        answer = (result["answer"] or "").strip()
        verdict = "approved" if answer.upper().startswith("APPROVED") else "revise"
        feedback = f"The reviewer asked: {answer.removeprefix('REVISE:').strip()}" if verdict == "revise" else ""
        return {"verdict": verdict, "feedback": feedback, "runs": [*(state.get("runs") or []), result]}

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
    return graph


async def run_team(
    agent: Agent, request: str, *, ticket: str, route: str | None = None, tenant_id: str | None = None
) -> TeamResult:
    """Work on ``ticket`` for ``request`` with the research → writer → reviewer team; returns who did what, or,
    when a member waits for a person, ``status == "waiting"`` and what it waits for, or, when a member's run
    ended without an answer, ``status == "stopped"`` and that run (see :func:`resume_team`)."""
    tenant, _ = agent.services.settings.identity.resolve(tenant_id, None)
    start: TeamState = {
        "request": request,
        "ticket": ticket,
        "route": route,
        "tenant_id": tenant,
        "rounds": 0,
        "runs": [],
    }
    return await _drive(agent, str(uuid.uuid4()), start)


async def resume_team(agent: Agent, correlation_id: str, *, tenant_id: str | None = None) -> TeamResult:
    """Go on with the team run ``correlation_id`` from its last checkpoint: after the escalations it waited
    for were answered, or after its process died. Finished members are not run again; a team run that still
    waits says so again, and a finished one is returned as it ended."""
    graph = _supervisor(agent, correlation_id).compile(checkpointer=agent.graph.checkpointer)
    state = await graph.aget_state(_config(agent, correlation_id))
    if not state.values:
        raise FirebreakError(f"no team run {correlation_id!r} to resume")
    if tenant_id is not None and tenant_id != state.values.get("tenant_id"):
        raise FirebreakError(f"team run {correlation_id} belongs to another tenant")
    if not state.next:
        return _result(agent, correlation_id, state)
    waiting = any(task.interrupts for task in state.tasks)
    return await _drive(agent, correlation_id, Command(resume=True) if waiting else None)


def _config(agent: Agent, correlation: str) -> RunnableConfig:
    max_rounds = agent.services.settings.team.max_rounds
    return {"configurable": {"thread_id": correlation}, "recursion_limit": 3 * max_rounds + 10}


async def _drive(agent: Agent, correlation: str, graph_input: TeamState | Command[Any] | None) -> TeamResult:
    """Run the supervisor on its thread until it ends or a member waits, inside one ``invoke_agent team`` span."""
    graph = _supervisor(agent, correlation).compile(checkpointer=agent.graph.checkpointer)
    config = _config(agent, correlation)
    tracer = agent.services.telemetry.tracer
    with tracer.start_as_current_span("invoke_agent team", kind=SpanKind.INTERNAL) as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "invoke_agent",
                "firebreak.correlation_id": correlation,
                "firebreak.resumed": not isinstance(graph_input, dict),
            }
        )
        await graph.ainvoke(graph_input, config=config, durability="sync")
        result = _result(agent, correlation, await graph.aget_state(config))
        span.set_attributes(
            {
                "firebreak.ticket": result.ticket,
                "firebreak.team.status": result.status,
                "firebreak.team.verdict": result.verdict,
                "firebreak.team.rounds": result.rounds,
            }
        )
    agent.services.telemetry.flush()
    return result


def _result(agent: Agent, correlation: str, state: Any) -> TeamResult:
    """The team run as its checkpoint has it: finished, waiting for the escalations of its interrupted member, or
    stopped by that member's run."""
    values = state.values
    paused = [pause.value for task in state.tasks for pause in task.interrupts]
    waiting = [item for pause in paused for item in _waiting_for(agent, pause["role"], pause["run_id"])]
    stopped = [member for pause in paused if (member := _stopped_member(agent, pause)) is not None]
    return TeamResult(
        correlation,
        values["ticket"],
        values.get("verdict", ""),
        values.get("rounds", 0),
        values.get("runs", []),
        status="stopped" if stopped else "waiting" if paused else "finished",
        waiting_for=waiting,
        stopped_by=stopped[0] if stopped else None,
    )


def _stopped_member(agent: Agent, pause: dict[str, Any]) -> dict[str, Any] | None:
    """The paused member's run if it ended without an answer; ``resumable``: a resume of the team retries it."""
    run = agent.services.runs.get(pause["run_id"])
    if run is None or not is_error(run.status):
        return None
    return {
        "role": pause["role"],
        "run_id": run.id,
        "status": run.status,
        "answer": run.answer,
        "error": run.error,
        "resumable": run.status in RESUMABLE,
    }
