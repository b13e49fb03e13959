"""``confidence_gate`` and ``screen_triggers``: what may run unattended, and when a person must step in.

``confidence_gate`` scores each gated action of a decision (``[gate] actions``:
write and/or read tool calls, the answer) and routes it by the route's
thresholds: execute, ask the user to confirm, or a reviewer's targeted
question. Every score is a ``gate_decisions`` row; its outcome is filled in
later (executed, failed, approved, rejected, expired) for calibration.

``screen_triggers`` runs once per run, before the first decision: the
secondary triggers (a request for a human, a high-risk topic, repeated
rephrasing, a sentiment spike) escalate whatever any score says.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.runtime import Runtime
from opentelemetry import trace

from app.containment import escalation
from app.containment.escalation import user_questions
from app.containment.gate import ProposedAction
from app.containment.triggers import detect_triggers
from app.errors import BudgetExceeded, UnknownTool
from app.gateway import CallContext
from app.resilience.safety import SafetyPolicy
from graph.state import SOLO_AGENT, AgentState, RunContext
from memory.tables import Escalation, GateDecision
from nodes.budget_guard import breach


def signature(action: ProposedAction) -> str:
    """What makes two proposals the same action: a rejected one is never run in the same run again."""
    return f"{action.target}:{json.dumps(action.arguments, sort_keys=True, default=str)}"


def gated_actions(decision: AIMessage, ctx: RunContext) -> list[ProposedAction]:
    """The decision's actions whose kind ``[gate] actions`` lists (unknown tools fail in ``act`` anyway)."""
    kinds = set(ctx.services.settings.gate.actions)
    actions = []
    for call in decision.tool_calls:
        try:
            kind = ctx.tools.get(call["name"]).kind
        except UnknownTool:
            continue
        if kind == "write" and ctx.services.settings.limits.read_only:
            continue  # denied by the read-only switch whatever anyone answers: nobody is asked
        if kind in kinds or call["name"] in ctx.services.settings.gate.require_approval:
            actions.append(ProposedAction(call["id"] or "", kind, call["name"], call["args"], decision.text))
    if not decision.tool_calls and "answer" in kinds:
        actions.append(ProposedAction("answer", "answer", "answer", {}, decision.text))
    return actions


def injected_instructions(messages: Sequence[BaseMessage], ctx: RunContext) -> str | None:
    """The ``[safety] jailbreak_patterns`` pattern a tool result of the conversation matches, if any.

    Tool results are data the agent read (a web page, a database row, a partner's reply), not the user's
    words: instructions in them are a prompt injection. The model that read them may obey them, and grade
    its own obedience highly, so no score of its own clears a gated action after one.
    """
    policy = SafetyPolicy.from_settings(ctx.services.settings.safety)
    for message in messages:
        if isinstance(message, ToolMessage):
            pattern = policy.jailbreak_attempt(message.text)
            if pattern is not None:
                return pattern
    return None


def _escalation_for(
    action: ProposedAction,
    band: str,
    score: float,
    problem: str | None,
    where: escalation.Where,
    ctx: RunContext,
    injection: str | None = None,
) -> Escalation:
    """The user's confirmation (confirm band) or a reviewer's targeted question (human band)."""
    settings = ctx.services.settings
    scored = f"confidence {score:.2f}" + (f" ({problem})" if problem else "")
    required = action.target in settings.gate.require_approval
    if injection is not None:
        kind, trigger, options = "targeted", "prompt_injection", ["approve", "reject"]
        reason = f"a tool result in this conversation reads like instructions to the agent (matches {injection!r})"
        question = f"A tool result tried to instruct the agent. Is this the user's request: {action.describe()}?"
    elif band == "confirm":
        kind, trigger, options = "confirmation", "medium_confidence", ["yes", "no"]
        reason = f"{scored} is below {settings.gate.for_route(ctx.route).execute_above:g}"
        question = f"Before I go on: shall I {action.describe()}?"
    else:
        kind, trigger, options = (
            "targeted",
            "approval_required" if required else "low_confidence",
            ["approve", "reject"],
        )
        reason = f"{action.target} always needs approval" if required else f"{scored} is below the confirm threshold"
        question = f"Is this the right thing to do: {action.describe()}?"
    return escalation.build(
        where,
        f"gate/{action.call_id}",
        type=kind,
        trigger=trigger,
        reason=reason,
        question=question,
        options=options,
        context={
            "call_id": action.call_id,
            "action": action.describe(),
            "target": action.target,
            "arguments": action.arguments,
            "kind": action.kind,
            "score": score,
        },
        settings=settings.escalation,
        now=ctx.services.clock(),
    )


async def confidence_gate(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services = ctx.services
    decision = state["messages"][-1]
    assert isinstance(decision, AIMessage)
    thresholds = services.settings.gate.for_route(ctx.route)
    where = escalation.Where(ctx.run_id, ctx.thread_id, ctx.tenant_id, state.get("pauses", 0))
    question = user_questions(state["messages"])[-1]
    call = CallContext(tenant_id=ctx.tenant_id, user_id=ctx.user_id, run_id=ctx.run_id, thread_id=ctx.thread_id)
    verdicts, gate_ids, rows = dict(state.get("verdicts") or {}), dict(state.get("gate_ids") or {}), []
    span = trace.get_current_span()
    injection = injected_instructions(state["messages"], ctx)
    scored = []
    for action in gated_actions(decision, ctx):
        if signature(action) in (state.get("rejected") or []):
            verdicts[action.call_id] = "rejected"
            services.runs.add_event(ctx.run_id, "confidence_gate", "rejected_again", {"action": action.describe()})
            continue
        try:
            scored.append((action, await services.estimator(action, question, ctx.route, call, ctx.deadline)))
        except BudgetExceeded as exc:
            # Nothing is recorded yet: after a raise every action is scored again, each exactly once.
            return breach(exc, "confidence_gate")
    if injection is not None and scored:
        services.runs.add_event(ctx.run_id, "confidence_gate", "injection_suspected", {"pattern": injection})
        span.add_event("firebreak.gate.injection_suspected", {"firebreak.gate.pattern": injection})
    for action, estimate in scored:
        required = action.target in services.settings.gate.require_approval
        # After a suspected injection a reviewer decides every gated action, whatever the model's score.
        band = "human" if required or injection is not None else thresholds.band(estimate.score)
        if band == "execute":
            verdict, pending = "execute", None
        elif band == "confirm" and action.kind == "answer":
            # An answer has nobody to confirm it with: it goes out marked as uncertain.
            verdict, pending = "hedge", None
        else:
            verdict, pending = (
                "pending",
                _escalation_for(action, band, estimate.score, estimate.problem, where, ctx, injection),
            )
            rows.append(pending)
        verdicts[action.call_id] = verdict
        gate_ids[action.call_id] = services.gate.record(
            GateDecision(
                run_id=ctx.run_id,
                route=ctx.route,
                step=state.get("steps", 0),
                call_id=action.call_id,
                target=action.target,
                action_kind=action.kind,
                estimator=estimate.estimator,
                score=estimate.score,
                band=band,
                reason=estimate.problem,
                escalation_id=pending.id if pending else None,
                created_at=services.clock(),
            )
        )
        span.add_event(
            "firebreak.gate.scored",
            {
                "firebreak.gate.target": action.target,
                "firebreak.gate.score": estimate.score,
                "firebreak.gate.band": band,
            },
        )
        services.runs.add_event(
            ctx.run_id,
            "confidence_gate",
            "scored",
            {
                "action": action.describe(),
                "score": estimate.score,
                "band": band,
                "estimator": estimate.estimator,
                "problem": estimate.problem,
            },
        )
    update: dict[str, Any] = {"verdicts": verdicts, "gate_ids": gate_ids}
    if rows:
        services.escalations.open(rows)
        update["escalation"] = {"ids": [r.id for r in rows], "resume_to": "act" if decision.tool_calls else "respond"}
    return update


def screen_triggers(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Deliver reviewers' notes, then escalate on the strongest secondary trigger of the question."""
    ctx = runtime.context
    services = ctx.services
    messages = state["messages"]
    update: dict[str, Any] = {}
    notes = services.escalations.undelivered_notes(ctx.thread_id)
    if notes:
        services.escalations.mark_delivered([n.id for n in notes], now=services.clock())
        update["messages"] = [escalation.reviewer_note(n.answer) for n in notes if n.answer]
    if ctx.agent != SOLO_AGENT:
        # A team member's question was written by its supervisor or subscription, not by a person: the
        # triggers read a person's behaviour (rephrasing, frustration, asking for a human) and do not apply.
        return update
    *earlier, question = escalation.user_questions(messages)
    settings = services.settings.triggers
    embedder = None
    if len(earlier) >= settings.rephrase_count:
        from app.embeddings import default_embedder  # loads a model: only when a rephrasing is possible

        embedder = default_embedder()
    fired = detect_triggers(question, earlier, settings, embedder)
    if not fired:
        return update
    top = fired[0]
    services.runs.add_event(
        ctx.run_id,
        "screen_triggers",
        "trigger",
        {"fired": [{"name": t.name, "escalation": t.escalation, "reason": t.reason} for t in fired]},
    )
    trace.get_current_span().add_event(
        "firebreak.trigger", {"firebreak.trigger.name": top.name, "firebreak.trigger.escalation": top.escalation}
    )
    questions = {
        "immediate_transfer": "The user asked for a person. Please take over: your reply goes to the user.",
        "full_handoff": "This is a high-risk topic. Please take over: your reply goes to the user.",
        "targeted": "The user keeps rephrasing the same request. What are they asking for? The agent will go on "
        "with your answer.",
        "collaborative": "The user's mood dropped sharply. The agent goes on; add a note if it should change course.",
    }
    row = escalation.build(
        escalation.Where(ctx.run_id, ctx.thread_id, ctx.tenant_id, state.get("pauses", 0)),
        f"trigger/{top.name}",
        type=top.escalation,
        trigger=top.name,
        reason=top.reason,
        question=questions[top.escalation],
        context={"detail": top.detail, "also": [t.name for t in fired[1:]]},
        messages=[*messages, *update.get("messages", [])],
        settings=services.settings.escalation,
        now=services.clock(),
    )
    services.escalations.open([row])
    if row.pauses_run:
        resume_to = "decide" if top.escalation == "targeted" else "respond"
        update["escalation"] = {"ids": [row.id], "resume_to": resume_to}
    return update
