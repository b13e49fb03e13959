"""``summarize``: context checkpointing before the model decides (seed pattern 11).

The prompt the next ``decide`` call would send is counted with the gateway's
token counter. When it reaches ``[context] max_fraction`` of the route's
context window (or ``every_turns`` earlier user turns are in the raw history),
the older messages (at least twice ``summary_max_tokens`` of them) are
replaced by one system message: a model-written summary
plus the key facts (ids, emails, amounts) found in them by code, carried
forward from checkpoint to checkpoint. The newest ``keep_recent`` messages stay
verbatim, and so does the current question; a cut never separates a tool call
from its results (providers reject a result whose call is gone).

Each checkpoint is a ``context_checkpoints`` row holding the raw messages it
replaced, keyed by the thread and the last replaced message: running the same
checkpoint again (a resumed step) reuses the row instead of summarising twice.
A summariser that fails leaves a plain note instead, so the run goes on with
its facts intact.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from typing import Any, Protocol

from langchain_core.messages import AnyMessage, RemoveMessage, SystemMessage, ToolMessage
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime
from opentelemetry import trace

from app.containment.escalation import is_user_question
from app.gateway import CallContext
from core.errors import BudgetExceeded, ModelError
from graph.messages import to_openai
from graph.state import AgentState, RunContext
from memory.context import ContextStore
from memory.tables import ContextCheckpoint
from nodes.needs import Prompting

SUMMARY_PREFIX = "context-summary-"
FALLBACK = "fallback"
MAX_VALUES_PER_FACT = 10
INSTRUCTIONS = (
    "You compress the earlier part of a conversation between a user and an assistant so that it can go on "
    "without it. Write a short summary of what was asked, answered, decided and done. Keep every id, number, "
    "name, date and constraint exactly. Reply with the summary only."
)
# Key facts a summary must not lose, found by code in the replaced messages (the model may drop them).
FACT_PATTERNS = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "order": r"\border\s*(?:number|no\.?|id)?\s*(?:is\s*)?#?\s*(\d{2,})",
        "ticket": r"\bticket\s*(?:number|no\.?|id)?\s*(?:is\s*)?#?\s*([A-Z]*-?\d{2,})",
        "invoice": r"\binvoice\s*(?:number|no\.?|id)?\s*(?:is\s*)?#?\s*([A-Z]*-?\d{2,})",
        "account": r"\baccount\s*(?:number|no\.?|id)?\s*(?:is\s*)?#?\s*([A-Z]*-?\d{3,})",
        "email": r"([\w.+-]+@[\w-]+(?:\.[\w-]+)+)",
        "amount": r"((?:[$€£]\s?\d[\d,]*(?:\.\d+)?)|(?:\d[\d,]*(?:\.\d+)?\s?(?:USD|EUR|GBP)))",
    }.items()
}


class SummarizerNeeds(Prompting, Protocol):
    """Counts and summarises through the gateway; keeps each context checkpoint once."""

    @property
    def context(self) -> ContextStore: ...


def cut_point(messages: Sequence[AnyMessage], keep_recent: int) -> int:
    """How many of the oldest messages a checkpoint replaces (0: none).

    It keeps the newest ``keep_recent`` messages and the current question, and never starts the kept part
    with a tool result: the call it answers stays with it.
    """
    questions = [index for index, message in enumerate(messages) if is_user_question(message)]
    cut = min(len(messages) - keep_recent, questions[-1] if questions else len(messages))
    while cut > 0 and isinstance(messages[cut], ToolMessage):
        cut -= 1
    # Replacing only the previous summary would summarise a summary and gain nothing.
    if cut == 1 and _is_summary(messages[0]):
        return 0
    return max(cut, 0)


def extract_facts(messages: Sequence[dict[str, Any]], known: dict[str, list[str]]) -> dict[str, list[str]]:
    """``known`` facts plus those found in the messages, each value once, the newest last (a few per kind)."""
    facts = {name: list(values) for name, values in known.items()}
    for message in messages:
        text = " ".join([str(message.get("content") or ""), json.dumps(message.get("tool_calls") or "")])
        for name, pattern in FACT_PATTERNS.items():
            for value in pattern.findall(text):
                values = facts.setdefault(name, [])
                if value in values:
                    values.remove(value)
                values.append(value)
                del values[:-MAX_VALUES_PER_FACT]
    return facts


def summary_message(row: ContextCheckpoint) -> SystemMessage:
    """The system message that stands for the replaced messages; it carries the facts forward."""
    facts = "; ".join(f"{name}: {', '.join(values)}" for name, values in sorted(row.facts.items()))
    content = f"Summary of the earlier conversation ({row.messages_replaced} messages):\n{row.summary}"
    if facts:
        content += f"\nKey facts: {facts}"
    return SystemMessage(content=content, id=f"{SUMMARY_PREFIX}{row.id}", additional_kwargs={"facts": row.facts})


async def summarize(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services: SummarizerNeeds = ctx.services
    settings = services.settings.context
    if not settings.enabled:
        return {}
    messages = state["messages"]
    tools = ctx.tools.specs() or None
    before = services.gateway.count_tokens(to_openai(messages, ctx.system_prompt), route=ctx.route, tools=tools)
    window = services.gateway.context_window(ctx.route)
    span = trace.get_current_span()
    span.set_attributes({"firebreak.context.tokens": before, "firebreak.context.window": window or 0})
    earlier_turns = sum(is_user_question(message) for message in messages) - 1
    due = (window is not None and before >= settings.max_fraction * window) or (
        settings.every_turns > 0 and earlier_turns >= settings.every_turns
    )
    cut = cut_point(messages, settings.keep_recent) if due else 0
    if cut == 0:
        return {}
    replaced, kept = messages[:cut], messages[cut:]
    # Too little to gain: a summary may be as long as summary_max_tokens (and lose detail).
    if (
        services.gateway.count_tokens(to_openai(list(replaced)), route=ctx.route, tools=None)
        < 2 * settings.summary_max_tokens
    ):
        span.set_attribute("firebreak.context.skipped", "too little to replace")
        return {}
    key = hashlib.sha256(f"{ctx.thread_id}\n{replaced[-1].id}".encode()).hexdigest()
    row = services.context.get(key)
    if row is None:
        row = await _checkpoint(replaced, kept, key, before, ctx, services, tools)
    span.set_attributes(
        {
            "firebreak.context.checkpoint_id": row.id or 0,
            "firebreak.context.messages_replaced": row.messages_replaced,
            "firebreak.context.tokens_before": row.tokens_before,
            "firebreak.context.tokens_after": row.tokens_after,
            "firebreak.context.summarized_by": row.summarized_by,
        }
    )
    services.runs.add_event(
        ctx.run_id,
        "summarize",
        "context_checkpoint",
        {"checkpoint_id": row.id, "replaced": row.messages_replaced, "before": row.tokens_before},
    )
    return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), summary_message(row), *kept]}


async def _checkpoint(
    replaced: Sequence[AnyMessage],
    kept: Sequence[AnyMessage],
    key: str,
    before: int,
    ctx: RunContext,
    services: SummarizerNeeds,
    tools: list[dict[str, Any]] | None,
) -> ContextCheckpoint:
    """Summarise ``replaced`` (or note why not), count what remains, store the row once."""
    raw = to_openai(list(replaced))
    known: dict[str, list[str]] = {}
    if replaced and _is_summary(replaced[0]):
        known = dict(replaced[0].additional_kwargs.get("facts") or {})
    facts = extract_facts(raw, known)
    summary, summarized_by = await _summary(raw, ctx, services)
    row = ContextCheckpoint(
        key=key,
        thread_id=ctx.thread_id,
        run_id=ctx.run_id,
        messages_replaced=len(replaced),
        tokens_before=before,
        tokens_after=0,
        summary=summary,
        facts=facts,
        raw=raw,
        summarized_by=summarized_by,
        created_at=time.time(),
    )
    remaining = to_openai([summary_message(row), *kept], ctx.system_prompt)
    row.tokens_after = services.gateway.count_tokens(remaining, route=ctx.route, tools=tools)
    stored, _ = services.context.add_once(row)
    return stored


async def _summary(raw: list[dict[str, Any]], ctx: RunContext, services: Prompting) -> tuple[str, str]:
    """(summary, who wrote it): the ``summarize`` route's model, or a plain note when it cannot."""
    lines = []
    for message in raw:
        calls = "".join(
            f" [calls {call['function']['name']}({call['function']['arguments']})]"
            for call in message.get("tool_calls") or []
        )
        lines.append(f"{message['role']}: {message.get('content') or ''}{calls}")
    prompt = [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": "Conversation:\n" + "\n".join(lines) + "\n\nSummary:"},
    ]
    try:
        reply = await services.gateway.chat(
            prompt,
            route=ctx.route,
            task="summarize",
            context=CallContext(ctx.tenant_id, ctx.user_id, ctx.run_id, ctx.thread_id),
            deadline=ctx.deadline,
            max_output_tokens=services.settings.context.summary_max_tokens,
        )
    except (ModelError, BudgetExceeded) as exc:
        return f"(The earlier messages could not be summarised: {exc}. Their key facts are kept.)", FALLBACK
    return reply.text.strip() or "(The summariser returned nothing.)", reply.model


def _is_summary(message: AnyMessage) -> bool:
    return isinstance(message, SystemMessage) and str(message.id or "").startswith(SUMMARY_PREFIX)
