"""``plan``: a planned run starts with a plan (seed pattern 13), version 1 of its ``plan_versions``.

The model writes the plan through a forced ``submit_plan`` call, so its JSON
schema (with the tool names) constrains the output; code validates it (see
``app/planning/plan.py``). A plan the model cannot get right does not stop the
run: it goes on unplanned, and the failure is a run event and a span attribute.
A resumed step finds the plan it already stored instead of asking again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.runtime import Runtime
from opentelemetry import trace

from app.gateway import CallContext
from app.planning.plan import PLAN_TOOL, Plan, parse_plan, plan_tool_spec
from core.errors import BudgetExceeded, ModelError, PlanInvalid
from graph.messages import to_openai
from graph.state import AgentState, RunContext
from memory.plans import PlanStore
from memory.tables import PlanVersion
from nodes.needs import Prompting

INSTRUCTIONS = (
    "You plan before acting. Break the user's request into the fewest steps that reach it: each step calls "
    "one of the tools below with its inputs, and lists the steps whose results it needs first. The last step "
    "has no tool: it answers the user from the results. Call submit_plan with the plan.\n\nTools:\n"
)


class PlannerNeeds(Prompting, Protocol):
    """Asks a model for a plan and stores its versions."""

    @property
    def plans(self) -> PlanStore: ...

    @property
    def clock(self) -> Callable[[], float]: ...


def tool_catalogue(ctx: RunContext) -> str:
    """One short line per tool: the planner's prompt is read by small local models too."""
    return "\n".join(f"- {item.name}({', '.join(item.argument_names)}): {item.description}" for item in ctx.tools)


async def write_plan(ctx: RunContext, services: Prompting, messages: list[AnyMessage], brief: str) -> tuple[Plan, str]:
    """Ask the ``plan`` route for a plan of the conversation so far; ``brief`` says what kind of plan."""
    settings = services.settings.planner
    names = [item.name for item in ctx.tools]
    reply = await services.gateway.chat(
        to_openai(messages, brief + tool_catalogue(ctx)),
        route=ctx.route,
        task="plan",
        context=CallContext(tenant_id=ctx.tenant_id, user_id=ctx.user_id, run_id=ctx.run_id, thread_id=ctx.thread_id),
        tools=[plan_tool_spec(names, settings.max_steps)],
        tool_choice=PLAN_TOOL,
        deadline=ctx.deadline,
    )
    submitted = next((call for call in reply.tool_calls if call.name == PLAN_TOOL), None)
    if submitted is None:
        raise PlanInvalid(f"the model did not call {PLAN_TOOL}; it replied {reply.text[:200]!r}")
    made = parse_plan(submitted.arguments, tools=names, max_steps=settings.max_steps)
    asked = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")
    return made.model_copy(update={"goal": made.goal or asked[:500]}), reply.model


def plan_state(row: PlanVersion) -> dict[str, Any]:
    """The slice of a plan version the graph carries (the row stays the record)."""
    return {"version": row.version, "goal": row.goal, "steps": row.steps}


def record_version(
    ctx: RunContext,
    services: PlannerNeeds,
    plan: Plan,
    version: int,
    *,
    change: str,
    made_by: str,
    trigger: str | None = None,
    severity: str | None = None,
    reason: str = "",
) -> PlanVersion:
    """Store a new plan version (a resumed step finds the one it stored), its run event and span attributes."""
    row, created = services.plans.add(
        PlanVersion(
            run_id=ctx.run_id,
            thread_id=ctx.thread_id,
            tenant_id=ctx.tenant_id,
            version=version,
            goal=plan.goal,
            steps=[step.model_dump() for step in plan.steps],
            change=change,
            trigger=trigger,
            severity=severity,
            reason=reason,
            made_by=made_by,
            created_at=services.clock(),
        )
    )
    if created:
        node = "plan" if version == 1 else "replan"
        payload = {"version": version, "trigger": trigger, "severity": severity, "reason": reason, "steps": row.steps}
        services.runs.add_event(ctx.run_id, node, change, payload)
    mark_span(row)
    return row


def mark_span(row: PlanVersion) -> None:
    trace.get_current_span().set_attributes(
        {
            "firebreak.plan.version": row.version,
            "firebreak.plan.change": row.change,
            "firebreak.plan.steps": len(row.steps),
            **({"firebreak.plan.trigger": row.trigger} if row.trigger else {}),
            **({"firebreak.plan.severity": row.severity} if row.severity else {}),
        }
    )


async def plan(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services: PlannerNeeds = ctx.services
    stored = services.plans.latest(ctx.run_id)
    if stored is None:
        try:
            made, model = await write_plan(ctx, services, state["messages"], INSTRUCTIONS)
        except (PlanInvalid, ModelError, BudgetExceeded) as exc:
            # An unplanned run is still a run: decide works without a plan, and its own limits still hold.
            services.runs.add_event(ctx.run_id, "plan", "plan_failed", {"error": str(exc)})
            trace.get_current_span().set_attribute("firebreak.plan.error", str(exc))
            return {"plan": None, "planning": False}
        stored = record_version(ctx, services, made, 1, change="planned", made_by=model)
    else:
        mark_span(stored)
    return {"plan": plan_state(stored)}
