"""``budget_guard``: a call hit a blast-radius cap. Alert, and ask a reviewer: raise the cap once, or stop.

The call was not made (the ledger refused its reservation), so nothing is lost
while the run waits: ``hitl`` pauses it, and on "raise" it goes back to the node
that hit the cap, which makes the call again inside the raised cap.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from opentelemetry import trace

from app.containment import escalation
from core.errors import BudgetExceeded
from graph.state import AgentState, Breach, Pending, RunContext
from nodes.needs import Alerting


def breach(exc: BudgetExceeded, resume_to: str) -> dict[str, Any]:
    """The state update of a node whose call was refused: ``budget_guard`` takes it from here."""
    trace.get_current_span().add_event(
        "firebreak.budget.breach", {"firebreak.budget.scope": exc.scope, "firebreak.budget.resource": exc.resource}
    )
    return {
        "breach": Breach(
            scope=exc.scope,
            resource=exc.resource,
            limit=exc.limit,
            used=exc.used,
            requested=exc.requested,
            message=str(exc),
            resume_to=resume_to,
        )
    }


def budget_guard(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services: Alerting = ctx.services
    hit = state.get("breach")
    assert hit is not None, "the graph routes a run here only with a breach"
    services.alert(
        "budget_breach",
        f"run {ctx.run_id} paused: {hit['message']}",
        {"run_id": ctx.run_id, "tenant_id": ctx.tenant_id, **{k: v for k, v in hit.items() if k != "message"}},
    )
    services.runs.add_event(ctx.run_id, "budget_guard", "budget_breach", dict(hit))
    kind = hit["scope"].split(":", 1)[0]
    raise_by = getattr(getattr(services.settings.limits, kind), hit["resource"])
    row = escalation.build(
        escalation.Where(ctx.run_id, ctx.thread_id, ctx.tenant_id, state.get("pauses", 0)),
        f"budget/{hit['scope']}/{hit['resource']}",
        type="targeted",
        trigger="budget_breach",
        reason=hit["message"],
        question=(
            f"This run reached its {hit['resource']} cap for {kind} {hit['scope'].split(':', 1)[1]} "
            f"({hit['used']:g} of {hit['limit']:g} used or held; the next call needs {hit['requested']:g}). "
            f"Raise this cap once by {raise_by:g}, or stop the run?"
        ),
        options=["raise", "stop"],
        context={"breach": hit, "raise_by": raise_by},
        settings=services.settings.escalation,
        now=services.clock(),
    )
    services.escalations.open([row])
    return {"breach": None, "escalation": Pending(ids=[row.id], resume_to=hit["resume_to"])}
