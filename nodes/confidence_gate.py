"""``confidence_gate`` and ``screen_triggers``: what may run unattended, and when a person must step in.

``confidence_gate`` scores each gated action of a decision (``[gate] actions``:
write and/or read tool calls, the answer) and routes it by the route's
thresholds: execute, ask the user to confirm, or a reviewer's targeted
question. Every score is a ``gate_decisions`` row; its outcome is filled in
later (executed, failed, approved, rejected, expired) for calibration.

The untrusted-data rule is a capability rule, not a score: once the context
the model decides on holds output of a tool not declared ``trusted_output``
(text others wrote: a web page, an email, a ticket, a partner's reply), every
write it proposes and every egress read goes to ``[gate] after_untrusted``
(a reviewer by default), whatever its score. A model that obeys an injection
grades its own obedience highly, so its score cannot clear what it proposes
after reading one. ``act`` enforces the same rule (:func:`is_gated`).

``screen_triggers`` runs once per run, before the first decision: the
secondary triggers (a request for a human, a high-risk topic, repeated
rephrasing, a sentiment spike) escalate whatever any score says.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langgraph.runtime import Runtime
from opentelemetry import trace

from app.containment import escalation
from app.containment.escalation import user_questions
from app.containment.gate import Estimate, Estimator, ProposedAction
from app.containment.triggers import detect_triggers
from app.gateway import CallContext
from app.resilience.safety import SafetyPolicy
from app.tools.registry import Tool
from core.config import GateThresholds, Settings, UntrustedPolicy
from core.errors import BudgetExceeded, UnknownTool
from graph.messages import is_trusted
from graph.state import SOLO_AGENT, AgentState, RunContext
from memory.context import ContextStore
from memory.gate import GateStore
from memory.runs import RunStore
from memory.tables import Escalation, GateDecision
from nodes.budget_guard import breach
from nodes.needs import Escalating
from nodes.summarizer import SUMMARY_PREFIX


class GateNeeds(Escalating, Protocol):
    """Scores actions, records each score, and reads the checkpoints a summary replaced (untrusted output)."""

    @property
    def estimator(self) -> Estimator: ...

    @property
    def gate(self) -> GateStore: ...

    @property
    def context(self) -> ContextStore: ...


def signature(action: ProposedAction) -> str:
    """What makes two proposals the same action: a rejected one is never run in the same run again."""
    return f"{action.target}:{json.dumps(action.arguments, sort_keys=True, default=str)}"


def untrusted_sources(messages: Sequence[BaseMessage], ctx: RunContext, checkpoints: ContextStore) -> list[str]:
    """The tools whose untrusted output is in the context the last decision was made on, each once.

    A result counts unless ``act`` stamped it trusted (its tool declared ``trusted_output``). Results that a
    context checkpoint replaced by a summary still count: the summary carries their words, so while one is in
    the context, the thread's checkpoints are read for the results they replaced (judged by their tools'
    declarations; a result whose call is not among them counts).
    """
    decided = max((i for i, m in enumerate(messages) if isinstance(m, AIMessage)), default=len(messages))
    sources, summarised = [], False
    for message in messages[:decided]:
        if isinstance(message, ToolMessage) and not is_trusted(message):
            sources.append(message.name or "an unnamed tool")
        summarised |= isinstance(message, SystemMessage) and str(message.id or "").startswith(SUMMARY_PREFIX)
    if summarised:
        for row in checkpoints.for_thread(ctx.thread_id):
            sources += _untrusted_in(row.raw, ctx)
    return list(dict.fromkeys(sources))


def _untrusted_in(raw: Sequence[dict[str, Any]], ctx: RunContext) -> list[str]:
    """The untrusted tools whose results are among a checkpoint's replaced messages (OpenAI format)."""
    names = {
        call.get("id"): call.get("function", {}).get("name", "")
        for entry in raw
        for call in entry.get("tool_calls") or []
    }
    found = []
    for entry in raw:
        if entry.get("role") == "tool":
            name = names.get(entry.get("tool_call_id")) or "an earlier tool"
            if name not in ctx.tools or not ctx.tools.get(name).trusted_output:
                found.append(name)
    return found


def holding_policy(item: Tool, untrusted: Sequence[str], settings: Settings) -> UntrustedPolicy | None:
    """The untrusted-data policy that holds a call of ``item`` ("review" or "confirm"), or None when none does:
    no untrusted output before it, a plain read, or the tool's policy is "allow"."""
    if not untrusted or not item.has_effects:
        return None
    policy = settings.gate.untrusted_policy(item.name)
    return None if policy == "allow" else policy


def is_gated(item: Tool, untrusted: Sequence[str], settings: Settings) -> bool:
    """Whether a call of ``item`` runs only once the gate (or a person) cleared it.

    Its kind is in ``[gate] actions``, it always needs approval, or the untrusted-data rule holds it (also
    when ``[gate] actions`` does not list its kind: an egress read after untrusted output).
    """
    gate = settings.gate
    if item.kind == "write" and settings.limits.read_only:
        return False  # denied by the read-only switch whatever anyone answers: nobody is asked
    return (
        item.kind in gate.actions
        or item.name in gate.require_approval
        or holding_policy(item, untrusted, settings) is not None
    )


def gated_actions(
    decision: AIMessage, ctx: RunContext, settings: Settings, untrusted: Sequence[str]
) -> list[ProposedAction]:
    """The decision's actions the gate must clear (see :func:`is_gated`; unknown tools fail in ``act``)."""
    kinds = set(settings.gate.actions)
    actions = []
    for call in decision.tool_calls:
        try:
            item = ctx.tools.get(call["name"])
        except UnknownTool:
            continue
        if is_gated(item, untrusted, settings):
            actions.append(ProposedAction(call["id"] or "", item.kind, item.name, call["args"], decision.text))
    if not decision.tool_calls and "answer" in kinds:
        actions.append(ProposedAction("answer", "answer", "answer", {}, decision.text))
    return actions


def injected_instructions(messages: Sequence[BaseMessage], settings: Settings) -> str | None:
    """The ``[safety] jailbreak_patterns`` pattern a tool result of the conversation matches, if any.

    Tool results are data the agent read (a web page, a database row, a partner's reply), not the user's
    words: instructions in them are a prompt injection. The model that read them may obey them, and grade
    its own obedience highly, so no score of its own clears a gated action after one.
    """
    policy = SafetyPolicy.from_settings(settings.safety)
    for message in messages:
        if isinstance(message, ToolMessage):
            pattern = policy.jailbreak_attempt(message.text)
            if pattern is not None:
                return pattern
    return None


def untrusted_reason(action: ProposedAction, untrusted: Sequence[str], policy: UntrustedPolicy) -> str:
    """Why the untrusted-data rule holds ``action``: the tools whose output came before it, and the policy."""
    held = "a reviewer decides" if policy == "review" else "the user confirms"
    return (
        f"{action.target} was proposed after the agent read output of {', '.join(untrusted)}, not declared "
        f"trusted ([gate] after_untrusted: {held}, whatever the score)"
    )


def _escalation_for(
    action: ProposedAction,
    band: str,
    score: float,
    problem: str | None,
    where: escalation.Where,
    ctx: RunContext,
    services: Escalating,
    injection: str | None,
    held: str | None,
    untrusted: Sequence[str],
) -> Escalation:
    """The user's confirmation (confirm band) or a reviewer's targeted question (human band).

    ``held`` is the untrusted-data rule's reason when it holds the action, ``injection`` the pattern a tool
    result matched.
    """
    settings = services.settings
    scored = f"confidence {score:.2f}" + (f" ({problem})" if problem else "")
    required = action.target in settings.gate.require_approval
    kind, options = ("confirmation", ["yes", "no"]) if band == "confirm" else ("targeted", ["approve", "reject"])
    matches = f"reads like instructions to the agent (matches {injection!r})"
    if held is not None:
        trigger = "untrusted_data"
        reason = held + (f"; a tool result {matches}" if injection is not None else "")
        read = f"text others wrote ({', '.join(untrusted)})"
        question = (
            f"I read {read} before this. Did you ask me to {action.describe()}?"
            if band == "confirm"
            else f"The agent read {read} before proposing this. Is it the user's request: {action.describe()}?"
        )
    elif injection is not None:
        trigger = "prompt_injection"
        reason = f"a tool result in this conversation {matches}"
        question = f"A tool result tried to instruct the agent. Is this the user's request: {action.describe()}?"
    elif band == "confirm":
        trigger = "medium_confidence"
        reason = f"{scored} is below {settings.gate.for_route(ctx.route).execute_above:g}"
        question = f"Before I go on: shall I {action.describe()}?"
    else:
        trigger = "approval_required" if required else "low_confidence"
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
            "untrusted_sources": list(untrusted) if held is not None else [],
        },
        settings=settings.escalation,
        now=services.clock(),
    )


async def confidence_gate(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services: GateNeeds = ctx.services
    settings = services.settings
    decision = state["messages"][-1]
    assert isinstance(decision, AIMessage)
    thresholds = settings.gate.for_route(ctx.route)
    where = escalation.Where(ctx.run_id, ctx.thread_id, ctx.tenant_id, state.get("pauses", 0))
    question = user_questions(state["messages"])[-1]
    call = CallContext(tenant_id=ctx.tenant_id, user_id=ctx.user_id, run_id=ctx.run_id, thread_id=ctx.thread_id)
    verdicts, gate_ids, rows = dict(state.get("verdicts") or {}), dict(state.get("gate_ids") or {}), []
    span = trace.get_current_span()
    injection = injected_instructions(state["messages"], settings)
    untrusted = untrusted_sources(state["messages"], ctx, services.context)
    scored = []
    for action in gated_actions(decision, ctx, settings, untrusted):
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
        policy = None if action.kind == "answer" else holding_policy(ctx.tools.get(action.target), untrusted, settings)
        band = _band(action, estimate.score, thresholds, policy, injection is not None, ctx, settings)
        held = untrusted_reason(action, untrusted, policy) if policy is not None else None
        if held is not None:
            _report_untrusted(action, untrusted, policy, ctx, services.runs)
        if band == "execute":
            verdict, pending = "execute", None
        elif band == "confirm" and action.kind == "answer":
            # An answer has nobody to confirm it with: it goes out marked as uncertain.
            verdict, pending = "hedge", None
        else:
            verdict, pending = (
                "pending",
                _escalation_for(
                    action, band, estimate.score, estimate.problem, where, ctx, services, injection, held, untrusted
                ),
            )
            rows.append(pending)
        verdicts[action.call_id] = verdict
        gate_ids[action.call_id] = _record_score(
            action, estimate, band, held, pending, state.get("steps", 0), ctx, services
        )
    update: dict[str, Any] = {"verdicts": verdicts, "gate_ids": gate_ids}
    if rows:
        services.escalations.open(rows)
        update["escalation"] = {"ids": [r.id for r in rows], "resume_to": "act" if decision.tool_calls else "respond"}
    return update


def _band(
    action: ProposedAction,
    score: float,
    thresholds: GateThresholds,
    policy: UntrustedPolicy | None,
    injected: bool,
    ctx: RunContext,
    settings: Settings,
) -> str:
    """Where one scored action goes: "execute", "confirm" (the user) or "human" (a reviewer)."""
    required = action.target in settings.gate.require_approval
    # After a suspected injection, or untrusted output under "review", a reviewer decides, whatever the score.
    band: str = "human" if required or injected or policy == "review" else thresholds.band(score)
    if band == "execute" and policy == "confirm":
        band = "confirm"
    if band == "confirm" and action.kind != "answer" and ctx.agent != SOLO_AGENT:
        # A team member's question was written by its supervisor, not a person: nobody in the chat could
        # confirm it, so a reviewer in the Inbox decides.
        band = "human"
    return band


def _report_untrusted(
    action: ProposedAction, untrusted: list[str], policy: UntrustedPolicy | None, ctx: RunContext, runs: RunStore
) -> None:
    """Say in the run's events and its span that untrusted output holds this action."""
    runs.add_event(
        ctx.run_id,
        "confidence_gate",
        "untrusted_data",
        {"action": action.describe(), "sources": untrusted, "policy": policy},
    )
    trace.get_current_span().add_event(
        "firebreak.gate.untrusted_data",
        {
            "firebreak.gate.target": action.target,
            "firebreak.gate.untrusted_sources": untrusted,
            "firebreak.gate.policy": policy,
        },
    )


def _record_score(
    action: ProposedAction,
    estimate: Estimate,
    band: str,
    held: str | None,
    pending: Escalation | None,
    step: int,
    ctx: RunContext,
    services: GateNeeds,
) -> int:
    """Record one score as a ``gate_decisions`` row, a span event and a run event; the row's id."""
    gate_id = services.gate.record(
        GateDecision(
            run_id=ctx.run_id,
            route=ctx.route,
            step=step,
            call_id=action.call_id,
            target=action.target,
            action_kind=action.kind,
            estimator=estimate.estimator,
            score=estimate.score,
            band=band,
            reason="; ".join(part for part in (held, estimate.problem) if part) or None,
            escalation_id=pending.id if pending else None,
            created_at=services.clock(),
        )
    )
    trace.get_current_span().add_event(
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
    return gate_id


def screen_triggers(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Deliver reviewers' notes, then escalate on the strongest secondary trigger of the question."""
    ctx = runtime.context
    services: Escalating = ctx.services
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

        embedder = default_embedder(services.settings.cache.embedding_runtime)
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
