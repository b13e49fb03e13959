"""``cache_lookup`` and ``cache_store``: the semantic cache at the front of the graph.

``cache_lookup`` runs after the input is screened and the secondary triggers
are checked: a question that means the same as an earlier one in the same
scope is answered from the cache and goes straight to ``respond``. A question
with write intent (``[cache] write_intent_patterns``) is never answered from
the cache: a hit must not skip a side effect the user asked for.

``cache_store`` sits on the edge from the confidence gate to ``respond``: it
keeps the model's own final answer (before any post-processing node), and only
from a run that called no write tool, whose question the safety screen did not
flag, and whose answer the gate did not mark as uncertain.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.runtime import Runtime
from opentelemetry import trace

from app.cache.semantic import scope_key
from app.containment.escalation import this_run, user_questions
from graph.state import AgentState, RunContext


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


def _scope(state: AgentState, ctx: RunContext) -> str:
    settings = ctx.services.settings
    return scope_key(
        tenant=ctx.tenant_id,
        route=ctx.route,
        models=settings.route(ctx.route).models,
        system_prompt=ctx.system_prompt,
        tools=_tools_digest(json.dumps(ctx.tools.specs(), sort_keys=True)),
        graph=ctx.graph_digest,
        context=_context(state["messages"]),
    )


def cache_lookup(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services = ctx.services
    settings = services.settings.cache
    span = trace.get_current_span()
    if not settings.enabled:
        return {"cache": None}
    question = user_questions(state["messages"])[-1]
    intent = _write_intent(tuple(settings.write_intent_patterns))
    if intent is not None and intent.search(question):
        span.set_attribute("firebreak.cache.skipped", "write_intent")
        return {"cache": None}
    scope = _scope(state, ctx)
    found = services.cache.lookup(scope, question, route=ctx.route)
    span.set_attributes(
        {
            "firebreak.cache.hit": found.hit is not None,
            "firebreak.cache.candidates": found.candidates,
            "firebreak.cache.refused": len(found.refused),
        }
    )
    if found.best_similarity is not None:
        span.set_attribute("firebreak.cache.best_similarity", round(found.best_similarity, 4))
    if found.hit is None:
        return {"cache": {"scope": scope, "hit": None}}
    hit = found.hit
    span.set_attributes(
        {
            "firebreak.cache.similarity": round(hit.similarity, 4),
            "firebreak.cache.entry_id": hit.entry_id,
            "firebreak.cache.saved_tokens": hit.saved_tokens,
            "firebreak.cache.saved_s": hit.saved_s,
        }
    )
    services.limits.record_saving(ctx.tenant_id, hit.saved_tokens, hit.saved_s)
    view = {
        "similarity": round(hit.similarity, 4),
        "matched": hit.matched,
        "entry_id": hit.entry_id,
        "saved_tokens": hit.saved_tokens,
        "saved_s": hit.saved_s,
    }
    services.runs.add_event(ctx.run_id, "cache_lookup", "cache_hit", view)
    return {"cache": {"scope": scope, "hit": view}, "messages": [AIMessage(content=hit.answer, name="cache")]}


def _wrote(messages: Sequence[AnyMessage], ctx: RunContext) -> bool:
    """Whether this run called a write tool (its answer depends on a side effect: never reused)."""
    names = {m.name for m in messages if isinstance(m, ToolMessage) and m.name in ctx.tools}
    return any(ctx.tools.get(str(name)).kind == "write" for name in names)


def cache_store(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services = ctx.services
    cached = state.get("cache") or {}
    run_messages = this_run(state["messages"])
    answer = state["messages"][-1]
    if (
        not cached.get("scope")
        or state.get("flagged")
        or (state.get("verdicts") or {}).get("answer") == "hedge"
        or not isinstance(answer, AIMessage)
        or answer.tool_calls
        or not answer.text
        or _wrote(run_messages, ctx)
    ):
        return {}
    usage = services.runs.model_calls(ctx.run_id)
    started = ctx.deadline - services.settings.agent.run_wall_clock_s
    entry_id = services.cache.put(
        cached["scope"],
        user_questions(state["messages"])[-1],
        answer.text,
        tenant_id=ctx.tenant_id,
        route=ctx.route,
        tokens=sum(call.input_tokens + call.output_tokens for call in usage),
        seconds=time.monotonic() - started,
    )
    trace.get_current_span().set_attribute("firebreak.cache.stored_entry_id", entry_id)
    return {}
