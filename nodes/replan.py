"""``replan``: after each tool step of a planned run, advance the plan, and mend it when a step failed.

The seed's pattern 13, gated by severity:

* minor: the failed step's tool declares a ``substitute`` (cached prices for a
  dead pricing API): code patches the step locally, no model call;
* major: no substitute: the model writes a new plan from what is done, while
  ``[planner] max_replans`` allows;
* critical: replans are spent, or the model cannot write a valid one: a person
  is asked how to go on (``hitl``), and their answer reaches the model.

Triggers: a step that failed after its retries, one that an open breaker
refused, and a significant context change: a shared entity (a ticket) that
another agent or a person changed since the plan read it (severity major:
no substitute mends it). Each patch or replan is a new ``plan_versions`` row
and a run event; the node's span carries the version, change, trigger and
severity.
"""

from __future__ import annotations

from typing import Any, Protocol

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langgraph.runtime import Runtime
from opentelemetry import trace

from app.containment import escalation
from app.planning.plan import Plan, Step, record_result, render, substitute_step
from core.errors import BudgetExceeded, ModelError, PlanInvalid, UnknownTool
from graph.state import AgentState, Pending, RunContext
from nodes.needs import Escalating
from nodes.planner import PlannerNeeds, plan_state, record_version, write_plan

REPLAN_INSTRUCTIONS = (
    "A step of your plan failed. Write a new plan for what is left: keep the results of the steps that are "
    "done (do not repeat them), and do not use the tool that failed. Call submit_plan with the new plan.\n\n"
    "Tools:\n"
)


class ReplanNeeds(PlannerNeeds, Escalating, Protocol):
    """Stores the plan's progress and its next version, or asks a person how it goes on."""


def this_step_results(messages: list[AnyMessage]) -> list[ToolMessage]:
    """The tool results of the last decision (everything after the last model message)."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            break
        if isinstance(message, ToolMessage):
            results.append(message)
    return results[::-1]


def trigger_of(result: ToolMessage) -> str:
    if result.additional_kwargs.get("error_type") == "CircuitOpen":
        return "breaker_open"
    if result.additional_kwargs.get("cause") == "StaleEntity":
        return "context_changed"  # another agent or a person changed the shared entity the plan was built on
    return "tool_failed"


def substitute_for(ctx: RunContext, plan: Plan, failed: Step) -> str | None:
    """The failed tool's declared substitute, unless the plan already tried it."""
    try:
        declared = ctx.tools.get(failed.tool or "").substitute
    except UnknownTool:
        return None
    tried = {s.tool for s in plan.steps if s.status in ("failed", "dropped")}
    return declared if declared and declared not in tried else None


async def replan(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services: ReplanNeeds = ctx.services
    current = state["plan"] or {}
    version = int(current["version"])
    plan = Plan(goal=current["goal"], steps=current["steps"])
    failures: list[tuple[Step, str]] = []
    for result in this_step_results(state["messages"]):
        ok = result.status != "error"
        plan, step = record_result(plan, result.name or "", ok, "" if ok else result.text)
        if step is not None and not ok:
            failures.append((step, trigger_of(result)))
    steps = [step.model_dump() for step in plan.steps]
    services.plans.set_steps(ctx.run_id, version, steps)
    if not failures:
        return {"plan": {**current, "steps": steps}}
    failed, trigger = failures[0]
    replans = state.get("replans", 0)
    # A changed context breaks the plan's assumptions: no substitute mends that, the model replans on it.
    substitute = substitute_for(ctx, plan, failed) if trigger != "context_changed" else None
    if substitute is not None:
        new_plan, change, severity, made_by = substitute_step(plan, failed, substitute), "patched", "minor", "code"
        reason = f"step {failed.id} ({failed.tool}) failed: {failed.note[:200]}; substituted {substitute}"
    elif replans < services.settings.planner.max_replans:
        try:
            brief = f"{render(plan, version)}\n\n{REPLAN_INSTRUCTIONS}"
            new_plan, made_by = await write_plan(ctx, services, state["messages"], brief)
        except (PlanInvalid, ModelError, BudgetExceeded) as exc:
            return _escalate(state, ctx, services, failed, trigger, f"the replan failed: {exc}", steps)
        change, severity, replans = "replanned", "major", replans + 1
        why = "the context changed" if trigger == "context_changed" else "it failed with no substitute"
        reason = f"step {failed.id} ({failed.tool}): {why}: {failed.note[:200]}"
    else:
        spent = f"no replans left ({services.settings.planner.max_replans} used)"
        return _escalate(state, ctx, services, failed, trigger, spent, steps)
    row = record_version(
        ctx,
        services,
        new_plan.model_copy(update={"goal": plan.goal}),
        version + 1,
        change=change,
        made_by=made_by,
        trigger=trigger,
        severity=severity,
        reason=reason,
    )
    return {"plan": plan_state(row), "replans": replans}


def _escalate(
    state: AgentState,
    ctx: RunContext,
    services: Escalating,
    failed: Step,
    trigger: str,
    why: str,
    steps: list[dict[str, Any]],
) -> dict[str, Any]:
    """Critical: the plan cannot go on by itself. A person says how; the model reads their answer."""
    reason = f"step {failed.id} ({failed.tool}) failed ({failed.note[:200]}) and {why}"
    row = escalation.build(
        escalation.Where(ctx.run_id, ctx.thread_id, ctx.tenant_id, state.get("pauses", 0)),
        f"replan/{failed.id}",
        type="targeted",
        trigger="replan_critical",
        reason=reason,
        question=f"The plan of this run cannot go on by itself: {reason}. How should it proceed?",
        context={"step": failed.model_dump(), "trigger": trigger, "steps": steps},
        settings=services.settings.escalation,
        now=services.clock(),
    )
    services.escalations.open([row])
    services.runs.add_event(
        ctx.run_id, "replan", "escalated", {"trigger": trigger, "severity": "critical", "reason": reason}
    )
    trace.get_current_span().set_attributes(
        {"firebreak.plan.trigger": trigger, "firebreak.plan.severity": "critical", "firebreak.plan.change": "escalated"}
    )
    return {"plan": {**(state["plan"] or {}), "steps": steps}, "escalation": Pending(ids=[row.id], resume_to="decide")}
