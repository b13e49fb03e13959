"""``cache_lookup`` and ``cache_store``: the semantic cache at the front of the graph.

``cache_lookup`` runs after the input is screened and the secondary triggers
are checked: a question that means the same as an earlier one in a scope the
asker may read is answered from the cache and goes straight to ``respond``. A
question with write intent (``[cache] write_intent_patterns``) is never
answered from the cache: a hit must not skip a side effect the user asked for.
Nor is a team member's (orchestrated or subscribed): it works on a shared entity that
changes between its runs.

Two scopes are searched, both keyed by everything that must match (tenant,
route, models, system prompt, tools, graph, the conversation so far): the
tenant's, and the asking user's own (the same key plus the user). An answer is
stored tenant-wide only when every tool result the model saw came from a tool
declared ``shared`` (a price list, a help centre) and nothing else the model
saw is outside the key (a summary of earlier turns, a reviewer's note):
anything else may hold data only this user may see ("my balance"), so the
answer is kept in the user's scope.

``cache_store`` sits on the edge from the confidence gate to ``respond``: it
keeps the model's own final answer (before any post-processing node), and only
from a clean run: no write, no flagged question, no hedge, no tool that failed,
timed out or was refused, no substituted or rewritten plan, no fallback model.
A run it does not store says why on its span (``firebreak.cache.store_skipped``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from collections.abc import Sequence
from typing import Any, Protocol

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.runtime import Runtime
from opentelemetry import trace

from app.cache.semantic import SemanticCache, scope_key
from app.containment.escalation import REVIEWER, this_run, user_questions
from app.limits.ledger import BlastRadius
from core.config import Settings
from core.status import RunStatus
from graph.state import SOLO_AGENT, AgentState, RunContext
from memory.plans import PlanStore
from memory.tables import ModelCall
from nodes.needs import Configured

# Why a tool result made the run degraded, by the error type ``act`` records on it (none: ``act`` refused it).
FAILURE_REASONS = {"ToolTimeout": "tool_timeout", "CircuitOpen": "circuit_open", None: "tool_refused"}
# A plan version other than the first says the run did not go as planned.
PLAN_REASONS = {"patched": "substituted", "replanned": "replanned", "escalated": "escalated"}


class LookupNeeds(Configured, Protocol):
    """Searches the cache; a hit's savings count in the blast-radius ledger."""

    @property
    def cache(self) -> SemanticCache: ...

    @property
    def limits(self) -> BlastRadius: ...


class StoreNeeds(Configured, Protocol):
    """Stores a clean answer; the plan's versions say whether it went as planned."""

    @property
    def cache(self) -> SemanticCache: ...

    @property
    def plans(self) -> PlanStore: ...


@functools.lru_cache(maxsize=16)
def _write_intent(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE) if patterns else None


@functools.lru_cache(maxsize=16)
def _tools_digest(specs: str) -> str:
    return hashlib.sha256(specs.encode()).hexdigest()


def _context(messages: list[AnyMessage]) -> list[str]:
    """The conversation before this question, as text: the same words in another conversation are another key."""
    earlier = messages[:-1]
    return [f"{m.type}:{m.text}" for m in earlier if isinstance(m, HumanMessage | AIMessage) and m.text]


def _scopes(state: AgentState, ctx: RunContext, settings: Settings) -> tuple[str, str]:
    """The tenant's scope for this question, and the asking user's own."""
    tenant = scope_key(
        tenant=ctx.tenant_id,
        route=ctx.route,
        models=settings.route(ctx.route).models,
        system_prompt=ctx.system_prompt,
        tools=_tools_digest(json.dumps(ctx.tools.specs(), sort_keys=True)),
        graph=ctx.graph_digest,
        context=_context(state["messages"]),
    )
    return tenant, scope_key(scope=tenant, user=ctx.user_id)


def cache_lookup(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services: LookupNeeds = ctx.services
    settings = services.settings.cache
    span = trace.get_current_span()
    if not settings.enabled:
        return {"cache": None}
    if ctx.agent != SOLO_AGENT:
        # A team member works on a shared entity that changes between its runs, and its question names the
        # entity, not its state: an answer cached from an earlier run may describe a ticket that is no more.
        span.set_attribute("firebreak.cache.skipped", "team_member")
        return {"cache": None}
    question = user_questions(state["messages"])[-1]
    intent = _write_intent(tuple(settings.write_intent_patterns))
    if intent is not None and intent.search(question):
        span.set_attribute("firebreak.cache.skipped", "write_intent")
        return {"cache": None}
    tenant, user = _scopes(state, ctx, services.settings)
    # The user's own answers first: between equally close entries, theirs is the one they were given before.
    found = services.cache.lookup((user, tenant), question, route=ctx.route)
    span.set_attributes(
        {
            "firebreak.cache.hit": found.hit is not None,
            "firebreak.cache.candidates": found.candidates,
            "firebreak.cache.refused": len(found.refused),
        }
    )
    if found.best_similarity is not None:
        span.set_attribute("firebreak.cache.best_similarity", round(found.best_similarity, 4))
    if found.probability is not None:
        span.set_attribute("firebreak.cache.verifier_probability", round(found.probability, 4))
    if found.refused:
        span.set_attribute("firebreak.cache.refused_why", found.refused[:5])
    scopes = {"scope": tenant, "user_scope": user}
    if found.hit is None:
        return {"cache": {**scopes, "hit": None}}
    hit = found.hit
    similarity, scope = round(hit.similarity, 4), "user" if hit.scope == user else "tenant"
    span.set_attributes(
        {
            "firebreak.cache.similarity": similarity,
            "firebreak.cache.entry_id": hit.entry_id,
            "firebreak.cache.saved_tokens": hit.saved_tokens,
            "firebreak.cache.saved_s": hit.saved_s,
            "firebreak.cache.scope": scope,
        }
    )
    services.limits.record_saving(ctx.tenant_id, hit.saved_tokens, hit.saved_s)
    view = {
        "similarity": similarity,
        "matched": hit.matched,
        "entry_id": hit.entry_id,
        "saved_tokens": hit.saved_tokens,
        "saved_s": hit.saved_s,
        "scope": scope,
    }
    services.runs.add_event(ctx.run_id, "cache_lookup", "cache_hit", view)
    return {"cache": {**scopes, "hit": view}, "messages": [AIMessage(content=hit.answer, name="cache")]}


def _wrote(messages: Sequence[AnyMessage], ctx: RunContext) -> bool:
    """Whether this run called a write tool (its answer depends on a side effect: never reused)."""
    names = {m.name for m in messages if isinstance(m, ToolMessage) and m.name in ctx.tools}
    return any(ctx.tools.get(str(name)).kind == "write" for name in names)


def _shared(ctx: RunContext, name: str | None) -> bool:
    return name is not None and name in ctx.tools and ctx.tools.get(name).shared


def per_user(messages: Sequence[AnyMessage], ctx: RunContext) -> bool:
    """Whether the model saw anything that not every user of the tenant may see and the key does not hold: a
    result of a tool not declared shared (in this run or an earlier one of the conversation), a summary of
    earlier turns (whatever they read), a reviewer's note."""
    return any(
        (isinstance(m, ToolMessage) and not _shared(ctx, m.name))
        or isinstance(m, SystemMessage)
        or (isinstance(m, HumanMessage) and m.name == REVIEWER)
        for m in messages
    )


def degraded(state: AgentState, ctx: RunContext, plans: PlanStore, calls: Sequence[ModelCall]) -> str | None:
    """Why this run's answer is not one to serve again, or None for a clean answer."""
    status = state.get("status") or RunStatus.RUNNING
    if status != RunStatus.RUNNING:
        return f"status_{status}"
    if state.get("flagged"):
        return "flagged"
    if (state.get("verdicts") or {}).get("answer") == "hedge":
        return "hedged"
    answer = state["messages"][-1]
    if not isinstance(answer, AIMessage) or answer.tool_calls or not answer.text:
        return "no_answer"
    if state.get("plan"):
        # A substitute or a new plan follows a failure: the most specific reason, so it comes first.
        changes = [v.change for v in plans.versions(ctx.run_id) if v.change != "planned"]
        if changes:
            return PLAN_REASONS.get(changes[0], changes[0])
    run_messages = this_run(state["messages"])
    for message in run_messages:
        if isinstance(message, ToolMessage) and message.status == "error":
            return FAILURE_REASONS.get(message.additional_kwargs.get("error_type"), "tool_failed")
    if any(call.fallback_position > 0 for call in calls):
        return "fallback_model"
    if _wrote(run_messages, ctx):
        return "wrote"
    return None


def cache_store(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services: StoreNeeds = ctx.services
    span = trace.get_current_span()
    cached = state.get("cache") or {}
    # No scope: the cache is off, the question had write intent, or the run began before scopes were per user.
    # Then nothing is stored, and the run's model calls are not read.
    scoped = bool(cached.get("user_scope"))
    calls = services.runs.model_calls(ctx.run_id) if scoped else []
    skipped = degraded(state, ctx, services.plans, calls) if scoped else "not_looked_up"
    if skipped is not None:
        span.set_attribute("firebreak.cache.store_skipped", skipped)
        return {}
    private = per_user(state["messages"], ctx)
    started = ctx.deadline - services.settings.agent.run_wall_clock_s
    entry_id = services.cache.put(
        cached["user_scope"] if private else cached["scope"],
        user_questions(state["messages"])[-1],
        state["messages"][-1].text,
        tenant_id=ctx.tenant_id,
        route=ctx.route,
        tokens=sum(call.input_tokens + call.output_tokens for call in calls),
        seconds=time.monotonic() - started,
    )
    span.set_attributes(
        {"firebreak.cache.stored_entry_id": entry_id, "firebreak.cache.scope": "user" if private else "tenant"}
    )
    return {}
