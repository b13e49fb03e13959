"""``hitl``: wait for people's answers, then carry them out.

The node opens nothing itself: the node that needed a person (the gate,
``budget_guard``, ``screen_triggers``) stored the escalation rows and put their
ids in ``state["escalation"]``. Here the run pauses with LangGraph's
``interrupt()`` until every row is closed (answered, or expired by its
policy), in any order and in any process: answers live in the rows, and the
resume (``Command(resume=...)``) only says "look again". Then each answer is
applied exactly once, because this node's result is checkpointed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from opentelemetry import trace

from app.containment.escalation import REVIEWER, is_approval, reviewer_note
from app.containment.gate import ProposedAction
from app.limits.ledger import BlastRadius
from core.status import RunStatus
from graph.state import AgentState, Pending, RunContext
from memory.escalations import EscalationStore
from memory.gate import GateStore
from memory.tables import Escalation
from nodes.confidence_gate import signature
from nodes.needs import Recording


class HitlNeeds(Recording, Protocol):
    """Reads the answered escalations, then raises a cap or settles a gate decision by each."""

    @property
    def escalations(self) -> EscalationStore: ...

    @property
    def limits(self) -> BlastRadius: ...

    @property
    def gate(self) -> GateStore: ...

    @property
    def clock(self) -> Callable[[], float]: ...


def _closed(services: HitlNeeds, ids: list[str]) -> list[Escalation]:
    rows = [services.escalations.get(i) for i in ids]
    return [r for r in rows if r is not None and r.status != "open"]


def hitl(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services: HitlNeeds = ctx.services
    pending = state.get("escalation") or Pending(ids=[], resume_to="respond")
    ids = list(pending["ids"])
    closed = _closed(services, ids)
    trace.get_current_span().set_attribute("firebreak.escalation_ids", ids)
    while len(closed) < len(ids):
        # One interrupt per wait, carrying every open id: parallel escalations never share an interrupt.
        interrupt({"escalations": [i for i in ids if i not in {r.id for r in closed}]})
        closed = _closed(services, ids)
    update: dict[str, Any] = {
        "escalation": None,
        "pauses": state.get("pauses", 0) + 1,
        "resume_to": pending["resume_to"],
    }
    verdicts = dict(state.get("verdicts") or {})
    rejected = list(state.get("rejected") or [])
    messages: list[Any] = []
    for row in closed:
        services.runs.add_event(
            ctx.run_id,
            "hitl",
            "answered",
            {
                "escalation_id": row.id,
                "type": row.type,
                "trigger": row.trigger,
                "status": row.status,
                "answer": row.answer,
                "by": row.answered_by,
            },
        )
        approved = is_approval(row)
        if row.trigger == "budget_breach":
            if approved:
                breach = row.context["breach"]
                services.limits.raise_once(breach["scope"], breach["resource"])
            else:
                update.update(status=RunStatus.BUDGET_EXCEEDED.value, stop_detail=row.reason, resume_to="respond")
        elif "call_id" in row.context:
            call_id = row.context["call_id"]
            outcome = "approved" if approved else ("expired" if row.status == "expired" else "rejected")
            services.gate.settle_escalation(row.id, outcome, now=services.clock())
            verdicts[call_id] = "approved" if approved else "rejected"
            if not approved and row.context["kind"] == "answer":
                withheld = row.note or "A reviewer withheld this answer; a person will follow up."
                messages.append(AIMessage(content=withheld, name=REVIEWER))
            elif not approved:
                context = row.context
                action = ProposedAction(call_id, context["kind"], context["target"], context["arguments"], "")
                rejected.append(signature(action))
        elif row.type in ("full_handoff", "immediate_transfer"):
            reply = (
                row.answer
                if row.status == "answered" and row.answer
                else (
                    "No one was available to take over in time. Your request is recorded and a person will follow up."
                )
            )
            messages.append(AIMessage(content=reply, name="human"))
            update.update(status=RunStatus.HANDED_OFF.value, resume_to="respond")
        elif row.type == "targeted" and row.status == "answered" and row.answer:
            messages.append(reviewer_note(row.answer))
    update.update(verdicts=verdicts, rejected=rejected)
    if messages:
        update["messages"] = messages
    return update
