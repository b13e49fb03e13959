"""Pure rendering helpers for the UI: chat messages, the trace waterfall, the breakers, the blast-radius
budgets, the run queue and its dead letters as Markdown/HTML, and the Ops tab's panels and plot frames.

Nothing here touches Gradio or the database, so every function is testable on plain values.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pandas as pd

from app.cache.semantic import hit_note
from app.dashboards import ALL_RUNS, BudgetLine, DeadLetterCount, EscalationsWaiting, Figures, used_percent
from app.limits.ledger import RESOURCES
from app.traces import TraceLine
from memory.tables import (
    Alert,
    Breaker,
    BreakerTransition,
    BudgetUsage,
    CacheEntry,
    DeadLetter,
    EntityEvent,
    Escalation,
    OperatorAction,
    Run,
)

if TYPE_CHECKING:
    from app.operators import Attention
    from graph.agent import RunResult
    from graph.team import TeamResult

QUESTION_PREFIX_CHARS = 48
REASON_PREFIX_CHARS = 120
FAILED_STATUSES = {"failed", "timed_out"}
HANDOFF_TYPES = frozenset({"full_handoff", "immediate_transfer"})
DETAIL_LABELS = {
    "gen_ai.request.model": "model",
    "gen_ai.tool.name": "tool",
    "gen_ai.usage.input_tokens": "in",
    "gen_ai.usage.output_tokens": "out",
    "firebreak.cost_usd": "cost",
    "error.type": "error",
    "firebreak.status": "status",
    "firebreak.context.tokens_before": "context tokens before",
    "firebreak.context.tokens_after": "after",
    "firebreak.cache.similarity": "cache similarity",
    "firebreak.plan.version": "plan version",
}

# What part of the agent a node span is: the safety breaker, the containment layer, the cache or the planner.
NODE_KINDS = {
    "screen_input": "guardrail",
    "screen_actions": "guardrail",
    "screen_triggers": "gate",
    "confidence_gate": "gate",
    "budget_guard": "gate",
    "hitl": "gate",
    "cache_lookup": "cache",
    "cache_store": "cache",
    "plan": "plan",
    "replan": "plan",
}
SPAN_PREFIX_KINDS = (("invoke_agent ", "agent"), ("chat ", "model"), ("execute_tool ", "tool"), ("node ", "node"))
SPAN_KIND_COLOURS = {
    "agent": "#475569",
    "model": "#2563eb",
    "tool": "#7c3aed",
    "guardrail": "#b45309",
    "gate": "#db2777",
    "cache": "#0d9488",
    "plan": "#65a30d",
    "node": "#94a3b8",
    "other": "#6b7280",
}

# Scoped to the trace component by Gradio's css_template, so these rules cannot leak into the page.
TRACE_CSS = """
.trace-empty { color: var(--body-text-color-subdued); padding: 8px 0; }
.trace-summary { margin-bottom: 8px; font-size: 0.9em; }
.span-row { display: grid; grid-template-columns: minmax(200px, 2fr) 80px minmax(140px, 2fr) minmax(200px, 3fr);
            gap: 8px; align-items: center; padding: 2px 0; font-family: var(--font-mono); font-size: 0.85em; }
.span-row.error .span-name { color: var(--error-text-color, #b91c1c); font-weight: 600; }
.span-duration { text-align: right; }
.span-track { position: relative; height: 10px; background: var(--background-fill-secondary); border-radius: 2px; }
.span-bar { position: absolute; top: 0; height: 100%; background: var(--color-accent); border-radius: 2px; }
.span-tree .span-row.error .span-bar { background: var(--error-text-color, #b91c1c); }
.span-legend { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 6px; font-size: 0.85em; }
.span-kind { padding: 1px 8px; border-radius: 9px; color: #fff; font-weight: 600; }
.span-flag { color: var(--error-text-color, #b91c1c); font-weight: 700; margin-left: 6px; }
.span-details { color: var(--body-text-color-subdued); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.plan { margin: 8px 0 12px; font-size: 0.9em; }
.plan-version { margin-top: 6px; }
.plan-version.current { font-weight: 600; }
.plan-step { font-family: var(--font-mono); padding-left: 16px; }
.plan-step.failed { color: var(--error-text-color, #b91c1c); }
.plan-step.dropped { text-decoration: line-through; color: var(--body-text-color-subdued); }
""" + "".join(
    f'.span-row[data-kind="{kind}"] .span-bar, .span-kind[data-kind="{kind}"] {{ background: {colour}; }}\n'
    for kind, colour in SPAN_KIND_COLOURS.items()
)

STATE_COLOURS = {"closed": "#15803d", "half_open": "#b45309", "open": "#b91c1c"}
UNKNOWN_STATE_COLOUR = "#6b7280"

# The tables' shared rules; each component's css_template scopes them, like TRACE_CSS.
TABLE_CSS = """
table { width: 100%; border-collapse: collapse; font-size: 0.9em; }
th { text-align: left; color: var(--body-text-color-subdued); font-weight: 600; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--border-color-primary); }
td.mono { font-family: var(--font-mono); }
td.number { text-align: right; }
.empty { color: var(--body-text-color-subdued); padding: 8px 0; }
"""

BADGE_CSS = """
.breaker-badge { display: inline-block; padding: 1px 8px; border-radius: 9px; color: #fff; font-size: 0.85em;
                 font-weight: 600; white-space: nowrap; }
"""
BREAKER_CSS = TABLE_CSS + BADGE_CSS

# Scope kinds in the order the budgets panel groups them: the tenant's day, then sessions, then requests.
SCOPE_KINDS = ("day", "session", "request")
SCOPE_KIND_LABELS = {"day": "tenant day", "session": "session", "request": "request"}
RECENT_SCOPES = 30
BUDGET_HIGH_PERCENT = 80.0

BUDGET_CSS = (
    TABLE_CSS
    + """
.budget-note { color: var(--body-text-color-subdued); font-size: 0.85em; margin-bottom: 4px; }
tr.budget-scope-head th { padding-top: 12px; color: var(--body-text-color); font-weight: 400; }
.budget-kind { display: inline-block; padding: 1px 8px; margin-right: 6px; border-radius: 9px; font-size: 0.85em;
               font-weight: 600; background: var(--background-fill-secondary); }
.budget-updated { color: var(--body-text-color-subdued); font-size: 0.85em; margin-left: 6px; }
.budget-track { display: inline-block; width: 160px; height: 10px; vertical-align: middle; overflow: hidden;
                background: var(--background-fill-secondary); border-radius: 2px; }
.budget-bar { display: block; height: 100%; background: #15803d; border-radius: 2px; }
.budget-row[data-level="high"] .budget-bar { background: #b45309; }
.budget-row[data-level="full"] .budget-bar { background: #b91c1c; }
.budget-percent { margin-left: 8px; font-family: var(--font-mono); font-size: 0.85em; }
"""
)

QUEUE_STATUSES = ("queued", "running", "completed", "dead")

# The Runs & DLQ tab's counts, tables and dead-letter detail, scoped like BREAKER_CSS.
QUEUE_CSS = (
    TABLE_CSS
    + """
.queue-counts { display: flex; gap: 24px; flex-wrap: wrap; }
.queue-count b { font-size: 1.4em; margin-right: 4px; }
.queue-count[data-status="dead"] b { color: var(--error-text-color, #b91c1c); }
.dead-letter-detail h4 { margin: 12px 0 4px; }
.dead-letter-detail ol, .dead-letter-detail ul { margin: 0; padding-left: 24px; }
.dead-letter-detail li { margin: 2px 0; }
.detail-text { white-space: pre-wrap; font-family: var(--font-mono); font-size: 0.85em; }
.detail-fields { color: var(--body-text-color-subdued); font-size: 0.85em; }
"""
)


def format_cost(cost_usd: float) -> str:
    """Dollars with enough places for per-token prices."""
    return f"${cost_usd:.6f}"


def trace_href(run_id: str) -> str:
    """A relative link that reopens the page on the Traces tab for ``run_id``."""
    return f"?run={quote(run_id)}"


def empty_html(message: str) -> str:
    return f'<div class="empty">{escape(message)}</div>'


def _table(name: str, headers: Sequence[str], rows: Sequence[str], empty: str) -> str:
    """A table of pre-rendered ``<tr>`` rows under plain headers, or ``empty`` (escaped) when there are none."""
    if not rows:
        return empty_html(empty)
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    return f'<table class="{escape(name)}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _run_link(run_id: str, *, short: bool = False) -> str:
    """A link to the run's trace; ``short`` shows its first eight characters, the whole id as a tooltip."""
    title = f' title="{escape(run_id)}"' if short else ""
    shown = run_id[:8] if short else run_id
    return f'<a href="{escape(trace_href(run_id))}"{title}><code>{escape(shown)}</code></a>'


def run_line(run_id: str, status: str, input_tokens: int, output_tokens: int, cost_usd: float) -> str:
    """The small Markdown line shown under an answer."""
    return (
        f"<sub>run `{run_id}` · {status} · tokens {input_tokens} in / {output_tokens} out · "
        f"{format_cost(cost_usd)} · [trace]({trace_href(run_id)})</sub>"
    )


def cache_line(hit: Mapping[str, Any]) -> str:
    """Why an answer came from the cache, and what it saved (the same words as the CLI)."""
    return f"<sub>{escape(hit_note(hit))}</sub>"


def answer_message(answer: str | None, status: str, error: str | None, line: str) -> str:
    """The assistant's final message: the answer, or a readable failure, then the run line.

    A handed-off run's answer is the reply of the person who took over, and says so.
    """
    if status in FAILED_STATUSES:
        reason = error or "no answer was produced"
        body = f"**The run {status.replace('_', ' ')}:** {reason}"
    elif status == "handed_off":
        body = f"**A person replied:** {answer or '_(no reply)_'}"
    else:
        body = answer or "_(no answer)_"
    return f"{body}\n\n{line}"


def error_message(error: Exception) -> str:
    """A refused question (empty, too long, bad route, a thread that waits for an answer): no stack trace."""
    return f"**Could not run this question:** {error}"


def _reply_options(options: Sequence[str]) -> str:
    words = [f"**{option}**" for option in options] or ["**yes**", "**no**"]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def waiting_message(rows: Sequence[Escalation]) -> str:
    """What a waiting run asks, as the assistant's message: the user's own question, or who it waits for.

    ``rows`` are the open escalations the run waits for. A confirmation (audience ``user``) is the
    question and "Reply yes or no"; anything else waits for a reviewer, whose reply comes back here.
    """
    parts = []
    for row in rows:
        if row.audience == "user":
            parts.append(f"**Waiting for your answer:** {row.question}\n\nReply {_reply_options(row.options)}.")
        else:
            parts.append(
                f"**Waiting for a reviewer** ({row.type}, {row.reason}) — the reply will appear here.\n\n"
                f"> {' '.join(row.question.split())}"
            )
    return "\n\n".join(parts) or "**Waiting for a person** — the reply will appear here."


def _closed_exchange(row: Escalation) -> list[dict[str, Any]]:
    """A closed escalation in a reopened thread: what was asked and what came back."""
    if row.status == "expired":
        answer = f" (taken as **{row.answer}**)" if row.answer else ""
        return [_message("assistant", f"{row.question}\n\n— nobody answered in time{answer}.")]
    if row.type in HANDOFF_TYPES:
        return []  # the person's reply is the run's answer, shown after this
    if row.audience == "user":
        return [_message("assistant", row.question), _message("user", row.answer or "")]
    note = f" — note: {row.note}" if row.note else ""
    return [
        _message("assistant", f"{row.question}\n\n— a reviewer ({row.answered_by}) answered **{row.answer}**{note}")
    ]


def _message(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "content": content}


def run_messages(run: Run, escalations: Sequence[Escalation] = ()) -> list[dict[str, Any]]:
    """A stored run as the chatbot shows it: the question, each answered escalation, then the answer.

    ``escalations`` are the run's; a waiting run ends with what it waits for instead of an answer.
    """
    line = run_line(run.id, run.status, run.input_tokens, run.output_tokens, run.cost_usd)
    ordered = sorted(escalations, key=lambda row: row.created_at)
    messages = [_message("user", run.question)]
    messages += [message for row in ordered if row.status != "open" for message in _closed_exchange(row)]
    if run.status == "waiting":
        waiting = [row for row in ordered if row.status == "open" and row.pauses_run]
        messages.append(_message("assistant", f"{waiting_message(waiting)}\n\n{line}"))
    else:
        messages.append(_message("assistant", answer_message(run.answer, run.status, run.error, line)))
    return messages


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis when longer."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_choice(run: Run) -> tuple[str, str]:
    """A (label, run id) pair for the recent-runs dropdown."""
    return f"{run.id[:8]} · {run.status} · {shorten(run.question, QUESTION_PREFIX_CHARS)}", run.id


def _details_text(details: dict[str, Any]) -> str:
    parts = []
    for key, label in DETAIL_LABELS.items():
        if key in details:
            value = details[key]
            shown = format_cost(float(value)) if key == "firebreak.cost_usd" else value
            parts.append(f"{label}={shown}")
    return " · ".join(parts)


def span_kind(name: str) -> str:
    """agent, model, tool, guardrail, gate, cache, plan, node (any other node) or other, from a span's name."""
    for prefix, kind in SPAN_PREFIX_KINDS:
        if name.startswith(prefix):
            return NODE_KINDS.get(name.removeprefix(prefix), kind) if kind == "node" else kind
    return "other"


def _span_legend(lines: Sequence[TraceLine]) -> str:
    """The kinds of span in this trace, in the colours of their bars, with how many of each."""
    counts = Counter(span_kind(line.name) for line in lines)
    items = "".join(
        f'<span class="span-kind" data-kind="{kind}">{kind} ×{counts[kind]}</span>'
        for kind in SPAN_KIND_COLOURS
        if counts[kind]
    )
    return f'<div class="span-legend">{items}</div>'


def _span_row(line: TraceLine, total_ms: float) -> str:
    left = 100 * line.offset_ms / total_ms
    # A floor keeps sub-millisecond spans visible in the waterfall.
    width = max(100 * line.duration_ms / total_ms, 0.4)
    failed = line.status == "ERROR"
    flag = '<span class="span-flag">ERROR</span>' if failed else ""
    return (
        f'<div class="span-row{" error" if failed else ""}" data-name="{escape(line.name)}" '
        f'data-depth="{line.depth}" data-status="{escape(line.status)}" data-span-id="{escape(line.span_id)}" '
        f'data-kind="{span_kind(line.name)}">'
        f'<span class="span-name" style="padding-left:{line.depth * 16}px">{escape(line.name)}{flag}</span>'
        f'<span class="span-duration">{line.duration_ms:.1f} ms</span>'
        f'<span class="span-track"><span class="span-bar" style="left:{left:.2f}%;width:{width:.2f}%"></span></span>'
        f'<span class="span-details">{escape(_details_text(line.details))}</span>'
        "</div>"
    )


def run_summary(run: Run) -> str:
    """One line of HTML about the run above its span tree."""
    return (
        f'<div class="trace-summary" data-run-id="{escape(run.id)}"><b>{escape(run.status)}</b> · '
        f"{escape(run.route)} · release {escape(run.release)} · "
        f"tokens {run.input_tokens} in / {run.output_tokens} out · {format_cost(run.cost_usd)} · "
        f"thread <code>{escape(run.thread_id)}</code><br>"
        f"<i>{escape(run.question)}</i></div>"
    )


def trace_html(run_id: str, run: Run | None, lines: Sequence[TraceLine]) -> str:
    """The Traces tab body: the run summary and a waterfall with one row per span."""
    if not run_id:
        return '<div class="trace-empty">Pick a run to see its trace.</div>'
    if run is None:
        return f'<div class="trace-empty">No run with id <code>{escape(run_id)}</code>.</div>'
    if not lines:
        return run_summary(run) + '<div class="trace-empty">No spans were recorded for this run.</div>'
    total_ms = max(line.offset_ms + line.duration_ms for line in lines) or 1.0
    rows = "".join(_span_row(line, total_ms) for line in lines)
    return f'{run_summary(run)}{_span_legend(lines)}<div class="span-tree">{rows}</div>'


def plan_html(report: Mapping[str, Any]) -> str:
    """Planned vs executed, above a planned run's spans: every plan version, then the calls made."""
    if not report["versions"]:
        return ""
    parts = []
    last = report["versions"][-1]["version"]
    for version in report["versions"]:
        why = (
            f" after {escape(version['trigger'])} ({escape(version['severity'])}): {escape(version['reason'])}"
            if version["trigger"]
            else ""
        )
        current = " current" if version["version"] == last else ""
        parts.append(
            f'<div class="plan-version{current}" data-version="{version["version"]}">Plan v{version["version"]} · '
            f"{escape(version['change'])} by {escape(version['made_by'])}{why}</div>"
        )
        for step in version["steps"]:
            call = f"{step['tool']}({_value_text(step['inputs'])})" if step["tool"] else "answer the user"
            note = f" — {step['note']}" if step.get("note") else ""
            parts.append(
                f'<div class="plan-step {escape(step["status"])}" data-step="{escape(step["id"])}" '
                f'data-status="{escape(step["status"])}">{escape(step["id"])} [{escape(step["status"])}] '
                f"{escape(call)}{escape(note)}</div>"
            )
    executed = ", ".join(f"{call['tool']} ({call['status']})" for call in report["executed"]) or "no tool calls"
    parts.append(f'<div class="plan-executed">Executed: {escape(executed)}</div>')
    parts.extend(f'<div class="plan-escalated">Escalated: {escape(reason)}</div>' for reason in report["escalated"])
    return f'<div class="plan"><b>Planned vs executed</b>{"".join(parts)}</div>'


def entity_changes_html(events: Sequence[EntityEvent]) -> str:
    """The shared entities a run's team changed, version by version: who, what, and the state after."""
    if not events:
        return ""
    rows = [
        f'<tr data-version="{event.version}"><td>{escape(event.kind)} {escape(event.key)}</td><td>v{event.version}</td>'
        f"<td>{escape(event.actor)}</td><td>{escape(fields_text(event.patch))}</td>"
        f"<td>{escape(fields_text(event.after))}</td></tr>"
        for event in events
    ]
    table = _table("entity-changes", ["Entity", "Version", "Changed by", "Change", "After"], rows, "")
    return f'<div class="entities"><b>Shared state changes</b>{table}</div>'


def team_html(result: TeamResult | None, changes: Sequence[EntityEvent], message: str) -> str:
    """A team run: each member run (role, link to its trace, status, answer), the verdict, the ticket's versions."""
    if result is None:
        return empty_html(message or "Run the team on a ticket to see its members and the versions they wrote.")
    rows = [
        f'<tr class="member" data-role="{escape(m["role"])}" data-status="{escape(m["status"])}">'
        f'<td>{escape(m["role"])}</td><td class="mono">{_run_link(m["run_id"], short=True)}</td>'
        f"<td>{escape(m['status'])}</td><td>{escape(shorten(m['answer'] or '', QUESTION_PREFIX_CHARS))}</td></tr>"
        for m in result.runs
    ]
    members = _table("team-members", ["Agent", "Run", "Status", "Answer"], rows, "")
    if result.status == "waiting":
        # A member's write waits for a reviewer: say who and where to answer, never show it as finished.
        waits = "; ".join(
            f"{escape(item['role'])} waits for a reviewer: escalation {escape(item['id'][:8])} "
            f"({escape(item['question'])})"
            for item in result.waiting_for
        )
        verdict = (
            f'<div class="team-verdict" data-verdict="waiting">Ticket {escape(result.ticket)}: {waits}. '
            f"Answer it in the Inbox, then: firebreak team --resume {escape(result.correlation_id)}</div>"
        )
    else:
        verdict = (
            f'<div class="team-verdict" data-verdict="{escape(result.verdict)}">Ticket {escape(result.ticket)}: '
            f"{escape(result.verdict)} after {result.rounds} round(s)</div>"
        )
    return verdict + members + entity_changes_html(changes)


def clock_time(at: float) -> str:
    """Epoch seconds as a UTC wall-clock time, HH:MM:SS."""
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")


def state_badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, UNKNOWN_STATE_COLOUR)
    label = escape(state.replace("_", " "))
    return f'<span class="breaker-badge" data-state="{escape(state)}" style="background:{colour}">{label}</span>'


def next_probe(breaker: Breaker, now: float) -> str:
    """When an open breaker admits its next probe; "now" once its cooldown is over."""
    if breaker.state == "half_open":
        return "probing"
    if breaker.state != "open":
        return "—"
    remaining = breaker.open_until - now
    return f"in {math.ceil(remaining)}s" if remaining > 0 else "now"


def _breaker_row(breaker: Breaker, now: float) -> str:
    return (
        f'<tr class="breaker-row" data-name="{escape(breaker.name)}" data-state="{escape(breaker.state)}">'
        f'<td class="mono">{escape(breaker.name)}</td>'
        f"<td>{state_badge(breaker.state)}</td>"
        f'<td class="breaker-probe">{next_probe(breaker, now)}</td>'
        f'<td class="number">{breaker.trips}</td>'
        f"<td>{clock_time(breaker.updated_at)}</td>"
        "</tr>"
    )


def breakers_html(rows: Sequence[Breaker], now: float) -> str:
    """The Resilience tab's breaker table: one row per backend that has been called."""
    return _table(
        "breakers",
        ("Backend", "State", "Next probe", "Trips", "Last change (UTC)"),
        [_breaker_row(breaker, now) for breaker in rows],
        "No breaker has been used yet.",
    )


def _transition_row(transition: BreakerTransition) -> str:
    return (
        f'<tr class="transition-row" data-name="{escape(transition.name)}" '
        f'data-from="{escape(transition.from_state)}" data-to="{escape(transition.to_state)}">'
        f"<td>{clock_time(transition.at)}</td>"
        f'<td class="mono">{escape(transition.name)}</td>'
        f"<td>{state_badge(transition.from_state)} → {state_badge(transition.to_state)}</td>"
        f"<td>{escape(transition.reason)}</td>"
        "</tr>"
    )


def transitions_html(rows: Sequence[BreakerTransition]) -> str:
    """The breaker transition log, newest first (a stable sort keeps the store's order for equal times)."""
    newest_first = sorted(rows, key=lambda transition: transition.at, reverse=True)
    return _table(
        "breaker-transitions",
        ("Time (UTC)", "Backend", "Change", "Reason"),
        [_transition_row(transition) for transition in newest_first],
        "No transitions yet.",
    )


def date_time(at: float) -> str:
    """Epoch seconds as a UTC date and time, for rows that may be days old."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def scope_kind(scope: str) -> str:
    """``day``, ``session`` or ``request``: a ledger scope's prefix before its first colon."""
    return scope.split(":", 1)[0]


def budget_amount(resource: str, value: float) -> str:
    """Dollars with 4 places for cost; whole counts with separators; anything fractional with 2 places."""
    if resource == "cost_usd":
        return f"${value:.4f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _budget_level(percent: float) -> str:
    return "full" if percent >= 100 else "high" if percent >= BUDGET_HIGH_PERCENT else "ok"


def _usage_bar(percent: float) -> str:
    """A bar of ``percent`` (full beyond 100) and the number."""
    return (
        f'<span class="budget-track"><span class="budget-bar" style="width:{min(percent, 100.0):.1f}%"></span>'
        f'</span><span class="budget-percent">{percent:.1f}%</span>'
    )


def _budget_row(row: BudgetUsage, limit: float | None) -> str:
    spent = row.used + row.reserved
    if limit is None:
        level, limit_text, usage = "uncapped", "—", '<span class="budget-percent">no cap</span>'
    else:
        percent = used_percent(spent, limit)
        level, limit_text, usage = _budget_level(percent), budget_amount(row.resource, limit), _usage_bar(percent)
    return (
        f'<tr class="budget-row" data-scope="{escape(row.scope)}" data-resource="{escape(row.resource)}" '
        f'data-level="{level}">'
        f'<td class="mono">{escape(row.resource)}</td>'
        f'<td class="number budget-used">{budget_amount(row.resource, row.used)}</td>'
        f'<td class="number budget-held">{budget_amount(row.resource, row.reserved)}</td>'
        f'<td class="number budget-limit">{limit_text}</td>'
        f'<td class="budget-usage">{usage}</td>'
        "</tr>"
    )


def _resource_order(row: BudgetUsage) -> tuple[int, str]:
    known = RESOURCES.index(row.resource) if row.resource in RESOURCES else len(RESOURCES)
    return known, row.resource


def _kind_order(kind: str) -> int:
    return SCOPE_KINDS.index(kind) if kind in SCOPE_KINDS else len(SCOPE_KINDS)


def _cap(caps: object, row: BudgetUsage) -> float | None:
    """The configured cap plus what reviewers granted on a breach (raise once)."""
    limit = getattr(caps, row.resource, None)
    return None if limit is None else float(limit) + row.granted


def _budget_scope(scope: str, rows: Sequence[BudgetUsage], updated: float, limits_by_kind: Mapping[str, object]) -> str:
    kind = scope_kind(scope)
    caps = limits_by_kind.get(kind)
    body = "".join(_budget_row(row, _cap(caps, row)) for row in sorted(rows, key=_resource_order))
    return (
        f'<tbody class="budget-scope" data-scope="{escape(scope)}">'
        f'<tr class="budget-scope-head"><th colspan="5">'
        f'<span class="budget-kind">{escape(SCOPE_KIND_LABELS.get(kind, kind))}</span>'
        f'<code>{escape(scope)}</code><span class="budget-updated">updated {date_time(updated)} UTC</span>'
        f"</th></tr>{body}</tbody>"
    )


def budgets_html(rows: Sequence[BudgetUsage], limits_by_kind: Mapping[str, object]) -> str:
    """Usage against the caps of the most recently updated scopes: tenant days, then sessions, then requests.

    ``limits_by_kind`` maps a scope kind to its caps (an object with one attribute per resource); a row
    whose kind or resource has no cap shows "no cap" instead of a bar.
    """
    if not rows:
        return empty_html("Nothing has been spent yet.")
    by_scope: dict[str, list[BudgetUsage]] = {}
    for row in rows:
        by_scope.setdefault(row.scope, []).append(row)
    updated = {scope: max(row.updated_at for row in scope_rows) for scope, scope_rows in by_scope.items()}
    recent = sorted(by_scope, key=lambda scope: updated[scope], reverse=True)[:RECENT_SCOPES]
    shown = sorted(recent, key=lambda scope: (_kind_order(scope_kind(scope)), -updated[scope], scope))
    note = (
        f'<div class="budget-note">The {RECENT_SCOPES} most recently updated of {len(by_scope)} scopes.</div>'
        if len(by_scope) > RECENT_SCOPES
        else ""
    )
    body = "".join(_budget_scope(scope, by_scope[scope], updated[scope], limits_by_kind) for scope in shown)
    return (
        f'{note}<table class="budgets"><thead><tr><th>Resource</th><th>Used</th><th>Held</th><th>Limit</th>'
        f"<th>Used + held of limit</th></tr></thead>{body}</table>"
    )


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def fields_text(values: Mapping[str, Any], skip: Sequence[str] = ()) -> str:
    """``key=value`` pairs on one line; nested values as JSON."""
    return " · ".join(f"{key}={_value_text(value)}" for key, value in values.items() if key not in skip)


def queue_counts_html(counts: Mapping[str, int]) -> str:
    """How many queued runs are in each status; the four known statuses always show, others after them."""
    if not counts:
        return empty_html("No run has been queued yet.")
    statuses = [*QUEUE_STATUSES, *sorted(set(counts) - set(QUEUE_STATUSES))]
    items = "".join(
        f'<span class="queue-count" data-status="{escape(status)}">'
        f"<b>{counts.get(status, 0)}</b>{escape(status)}</span>"
        for status in statuses
    )
    return f'<div class="queue-counts">{items}</div>'


def _run_row(run: Run) -> str:
    return (
        f'<tr class="run-row" data-run="{escape(run.id)}" data-status="{escape(run.status)}">'
        f"<td>{escape(run.status)}</td>"
        f'<td class="mono">{_run_link(run.id)}</td>'
        f"<td>{escape(shorten(run.question, QUESTION_PREFIX_CHARS))}</td>"
        f'<td class="number">{run.input_tokens} in / {run.output_tokens} out</td>'
        f'<td class="number">{format_cost(run.cost_usd)}</td>'
        "</tr>"
    )


def runs_html(runs: Sequence[Run]) -> str:
    """The recent runs, in the order given (the store's newest first), each linking to its trace."""
    return _table(
        "runs", ("Status", "Run", "Question", "Tokens", "Cost"), [_run_row(run) for run in runs], "No runs yet."
    )


def _attention_row(item: Attention) -> str:
    target = _run_link(item.target) if item.kind == "run" else f"<code>{escape(item.target)}</code>"
    return (
        f'<tr class="attention-row" data-target="{escape(item.target)}" data-status="{escape(item.status)}" '
        f'data-action="{escape(item.action)}" data-entry="{escape(item.entry)}">'
        f'<td class="mono">{target}</td>'
        f"<td>{escape(item.status)}</td>"
        f"<td>{escape(item.entry)}</td>"
        f"<td><b>{escape(item.action)}</b> {escape(item.detail)}</td>"
        f'<td title="{escape(item.reason)}">{escape(shorten(item.reason, REASON_PREFIX_CHARS))}</td>'
        f"<td>{date_time(item.at)}</td>"
        "</tr>"
    )


def attention_html(items: Sequence[Attention]) -> str:
    """Every run and event handling that did not end with a clean answer, with the action that fits
    (the same list as ``firebreak dlq list``)."""
    return _table(
        "attention",
        ("Run / event", "Status", "Entry", "Action", "Why", "Since (UTC)"),
        [_attention_row(item) for item in items],
        "Every run ended with a clean answer.",
    )


def attention_choice(item: Attention) -> tuple[str, str]:
    """A (label, target) pair for the dropdown of what may be requeued."""
    return f"{item.target[:14]} · {item.status} · {item.entry}", item.target


def dead_letter_choice(letter: DeadLetter) -> tuple[str, str]:
    """A (label, dead letter id) pair for the dead-letter dropdown."""
    return f"#{letter.id} · {letter.run_id[:8]} · {shorten(letter.reason, QUESTION_PREFIX_CHARS)}", str(letter.id)


def _dead_letter_row(letter: DeadLetter) -> str:
    return (
        f'<tr class="dead-letter-row" data-id="{letter.id}" data-run="{escape(letter.run_id)}">'
        f'<td class="number">{letter.id}</td>'
        f'<td class="mono">{_run_link(letter.run_id)}</td>'
        f'<td class="number">{letter.attempts}</td>'
        f'<td title="{escape(letter.reason)}">{escape(shorten(letter.reason, REASON_PREFIX_CHARS))}</td>'
        f"<td>{date_time(letter.created_at)}</td>"
        "</tr>"
    )


def dead_letters_html(rows: Sequence[DeadLetter]) -> str:
    """The dead-letter queue, in the order given (the store's newest first)."""
    return _table(
        "dead-letters",
        ("Id", "Run", "Attempts", "Reason", "Dead since (UTC)"),
        [_dead_letter_row(letter) for letter in rows],
        "The dead-letter queue is empty.",
    )


def _message_item(message: Mapping[str, Any]) -> str:
    calls = "".join(
        f"<li>calls <code>{escape(str(call.get('name', '?')))}</code> "
        f"<code>{escape(_value_text(call.get('args', call.get('arguments', {}))))}</code></li>"
        for call in message.get("tool_calls") or []
    )
    kind = escape(str(message.get("type", "message")))
    return (
        f'<li class="detail-message" data-type="{kind}"><b>{kind}</b>'
        f'<div class="detail-text">{escape(str(message.get("content") or ""))}</div>'
        f"{f'<ul>{calls}</ul>' if calls else ''}</li>"
    )


def _tool_output_item(output: Mapping[str, Any]) -> str:
    return (
        f'<li class="detail-tool-output" data-tool="{escape(str(output.get("tool", "")))}">'
        f"<b>{escape(str(output.get('tool', '?')))}</b> · {escape(str(output.get('status', '?')))}"
        f'<div class="detail-text">{escape(_value_text(output.get("output", "")))}</div></li>'
    )


def _decision_item(decision: Mapping[str, Any]) -> str:
    kind = str(decision.get("kind", "?"))
    return (
        f'<li class="detail-decision" data-kind="{escape(kind)}">'
        f"<b>#{escape(str(decision.get('seq', '?')))} {escape(str(decision.get('node', '?')))} · {escape(kind)}</b>"
        f'<div class="detail-fields">{escape(fields_text(decision, skip=("seq", "node", "kind")))}</div></li>'
    )


def _detail_list(title: str, items: Sequence[str], empty: str) -> str:
    body = f"<ol>{''.join(items)}</ol>" if items else empty_html(empty)
    return f"<h4>{escape(title)}</h4>{body}"


def dead_letter_detail_html(letter: DeadLetter | None) -> str:
    """Everything a person needs to triage one dead letter: why, where it stopped, and what happened."""
    if letter is None:
        return empty_html("Pick a dead letter to see its detail.")
    state = letter.partial_state
    next_nodes = ", ".join(str(node) for node in state.get("next") or []) or "—"
    steps = state.get("steps")
    requeued = f" · requeued {date_time(letter.requeued_at)} UTC" if letter.requeued_at is not None else ""
    return (
        f'<div class="dead-letter-detail" data-id="{letter.id}" data-run="{escape(letter.run_id)}">'
        f"<div>Dead letter <b>#{letter.id}</b> · run {_run_link(letter.run_id)} · tenant "
        f"<code>{escape(letter.tenant_id)}</code> · {letter.attempts} attempts · "
        f"dead since {date_time(letter.created_at)} UTC{requeued}</div>"
        f'<h4>Reason</h4><div class="detail-text detail-reason">{escape(letter.reason)}</div>'
        f"<div>Checkpoint <code>{escape(letter.checkpoint_id or '—')}</code> · next node "
        f"<code>{escape(next_nodes)}</code> · steps {'—' if steps is None else escape(str(steps))}</div>"
        + _detail_list("Messages", [_message_item(m) for m in state.get("messages") or []], "No messages.")
        + _detail_list("Tool outputs", [_tool_output_item(o) for o in letter.tool_outputs], "No tool outputs.")
        + _detail_list("Decision history", [_decision_item(d) for d in letter.decisions], "No decisions recorded.")
        + "</div>"
    )


def _alert_row(alert: Alert) -> str:
    return (
        f'<tr class="alert-row" data-kind="{escape(alert.kind)}">'
        f"<td>{date_time(alert.created_at)}</td>"
        f'<td class="mono">{escape(alert.kind)}</td>'
        f"<td>{escape(alert.message)}</td>"
        f'<td class="mono">{escape(fields_text(alert.payload))}</td>'
        "</tr>"
    )


def alerts_html(rows: Sequence[Alert]) -> str:
    """Recent alerts, in the order given (the store's newest first)."""
    return _table(
        "alerts", ("Time (UTC)", "Kind", "Message", "Details"), [_alert_row(alert) for alert in rows], "No alerts."
    )


def _action_row(row: OperatorAction) -> str:
    return (
        f'<tr class="action-row" data-action="{escape(row.action)}" data-allowed="{str(row.allowed).lower()}">'
        f"<td>{date_time(row.created_at)}</td>"
        f"<td>{escape(row.operator)}</td>"
        f'<td class="mono">{escape(row.role or "—")} · {escape(row.via)}</td>'
        f'<td class="mono">{escape(row.action)}</td>'
        f'<td class="mono">{escape(row.target)}</td>'
        f"<td>{escape(row.tenant_id or '—')}</td>"
        f"<td>{escape(row.detail or '—')}</td>"
        f'<td class="action-outcome">{escape(row.outcome)}</td>'
        "</tr>"
    )


def actions_html(rows: Sequence[OperatorAction]) -> str:
    """The audit log's rows, in the order given (newest first): who did what, allowed or refused, and how it went."""
    return _table(
        "actions",
        ("Time (UTC)", "Operator", "Role · via", "Action", "Target", "Tenant", "Given", "Outcome"),
        [_action_row(row) for row in rows],
        "No operator actions yet.",
    )


# The Inbox tab: open escalations, the picked one in its type's format, and the recent answers.
INBOX_CSS = (
    TABLE_CSS
    + """
.escalation-row[data-overdue="true"] .escalation-due { color: var(--error-text-color, #b91c1c); font-weight: 600; }
.escalation-detail h4 { margin: 12px 0 4px; }
.escalation-detail ol, .escalation-detail ul { margin: 0; padding-left: 24px; }
.escalation-detail li { margin: 2px 0; }
.escalation-question { font-weight: 600; }
.escalation-score { font-family: var(--font-mono); font-weight: 700; }
.escalation-facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
.escalation-facts dt { color: var(--body-text-color-subdued); }
.escalation-facts dd { margin: 0; font-family: var(--font-mono); }
.history-line b { margin-right: 6px; }
.detail-text { white-space: pre-wrap; font-family: var(--font-mono); font-size: 0.85em; }
.detail-fields { color: var(--body-text-color-subdued); font-size: 0.85em; }
"""
)
ESCALATION_QUESTION_CHARS = 120


def duration_text(seconds: float) -> str:
    """A short human duration: 0.4s, 42s, 14 min, 2 h 5 min, 3 d 4 h."""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"
    return f"{seconds // 86400:.0f} d {seconds % 86400 // 3600:.0f} h"


def due_text(due_at: float, now: float) -> str:
    """ "due in 14 min", or "overdue 3 min" once the deadline has passed."""
    remaining = due_at - now
    return f"due in {duration_text(remaining)}" if remaining >= 0 else f"overdue {duration_text(-remaining)}"


def _level_text(level: int) -> str:
    return f"passed up ×{level}" if level else ""


def escalation_choice(row: Escalation) -> tuple[str, str]:
    """A (label, escalation id) pair for the Inbox's picker."""
    label = f"{row.id[:8]} · {row.type} · {row.trigger} · {shorten(row.question, QUESTION_PREFIX_CHARS)}"
    return label, row.id


def _escalation_row(row: Escalation, now: float) -> str:
    level = _level_text(row.level)
    return (
        f'<tr class="escalation-row" data-id="{escape(row.id)}" data-run="{escape(row.run_id)}" '
        f'data-type="{escape(row.type)}" data-audience="{escape(row.audience)}" '
        f'data-overdue="{"true" if row.due_at < now else "false"}" data-level="{row.level}">'
        f'<td class="mono" title="{escape(row.id)}">{escape(row.id[:8])}</td>'
        f"<td>{escape(row.type)}</td>"
        f"<td>{escape(row.trigger)}</td>"
        f"<td>{escape(row.audience)}</td>"
        f'<td class="mono">{_run_link(row.run_id, short=True)}</td>'
        f'<td class="escalation-due">{due_text(row.due_at, now)}{f" · {level}" if level else ""}</td>'
        f'<td title="{escape(row.question)}">{escape(shorten(row.question, ESCALATION_QUESTION_CHARS))}</td>'
        "</tr>"
    )


def escalations_html(rows: Sequence[Escalation], now: float) -> str:
    """The open escalations, oldest first: the queue a reviewer works through."""
    ordered = sorted(rows, key=lambda row: row.created_at)
    return _table(
        "escalations",
        ("Id", "Type", "Trigger", "Audience", "Run", "Due", "Question"),
        [_escalation_row(row, now) for row in ordered],
        "No open escalations: nothing waits for a person.",
    )


def latency_text(row: Escalation) -> str:
    """How long the escalation waited for its answer (or its expiry); "—" while open."""
    return "—" if row.answered_at is None else duration_text(row.answered_at - row.created_at)


def _answered_row(row: Escalation) -> str:
    closed = "—" if row.answered_at is None else date_time(row.answered_at)
    return (
        f'<tr class="answered-row" data-id="{escape(row.id)}" data-status="{escape(row.status)}">'
        f'<td class="mono" title="{escape(row.id)}">{escape(row.id[:8])}</td>'
        f"<td>{escape(row.type)}</td>"
        f"<td>{escape(row.trigger)}</td>"
        f"<td>{escape(row.status)}</td>"
        f'<td class="answered-answer" title="{escape(row.answer or "")}">'
        f"{escape(shorten(row.answer or '—', REASON_PREFIX_CHARS))}</td>"
        f'<td class="answered-by">{escape(row.answered_by or "—")}</td>'
        f'<td class="number answered-latency">{latency_text(row)}</td>'
        f"<td>{escape(shorten(row.note or '', REASON_PREFIX_CHARS))}</td>"
        f"<td>{closed}</td>"
        "</tr>"
    )


def answered_html(rows: Sequence[Escalation]) -> str:
    """Recently closed escalations (answered or expired), most recently closed first."""
    ordered = sorted(rows, key=lambda row: row.answered_at or row.created_at, reverse=True)
    return _table(
        "answered-escalations",
        ("Id", "Type", "Trigger", "Status", "Answer", "By", "Latency", "Note", "Closed (UTC)"),
        [_answered_row(row) for row in ordered],
        "No escalation has been answered yet.",
    )


def _facts(items: Sequence[tuple[str, str, str]]) -> str:
    """A definition list of (css name, label, value) facts, values escaped."""
    body = "".join(
        f'<dt>{escape(label)}</dt><dd class="fact-{escape(name)}">{escape(value)}</dd>' for name, label, value in items
    )
    return f'<dl class="escalation-facts">{body}</dl>'


def _gate_context(context: Mapping[str, Any]) -> str:
    score = context.get("score")
    shown = f"{score:.2f}" if isinstance(score, int | float) else "—"
    target, kind = escape(str(context.get("target", "?"))), escape(str(context.get("kind", "?")))
    return (
        f'<div class="escalation-action" data-target="{target}" data-kind="{kind}">'
        f"<div>Action: <code>{escape(str(context.get('action', '?')))}</code></div>"
        f'<div>Confidence score: <span class="escalation-score">{shown}</span> · '
        f"{kind} action on <code>{target}</code></div></div>"
    )


def _budget_context(context: Mapping[str, Any]) -> str:
    hit = context.get("breach") or {}
    resource = str(hit.get("resource", "?"))

    def amount(value: Any) -> str:
        return budget_amount(resource, float(value)) if isinstance(value, int | float) else "—"

    return (
        '<div class="escalation-budget">'
        + _facts(
            [
                ("cap", "Cap", f"{resource} of {hit.get('scope', '?')}: {amount(hit.get('limit'))}"),
                ("used", "Used or held", amount(hit.get("used"))),
                ("requested", "This call needs", amount(hit.get("requested"))),
                ("raise-by", "Raise once by", amount(context.get("raise_by"))),
            ]
        )
        + "</div>"
    )


def _history_line(line: Mapping[str, Any]) -> str:
    role = str(line.get("role", "?"))
    return (
        f'<li class="history-line" data-role="{escape(role)}"><b>{escape(role)}</b>'
        f'<span class="detail-text">{escape(str(line.get("text", "")))}</span></li>'
    )


def _handoff_context(context: Mapping[str, Any]) -> str:
    lines = "".join(_history_line(line) for line in context.get("history") or [] if isinstance(line, Mapping))
    history = f'<ol class="escalation-history">{lines}</ol>' if lines else empty_html("No messages.")
    summary = escape(str(context.get("summary") or "—"))
    return f'<h4>Summary</h4><div class="escalation-summary">{summary}</div><h4>History</h4>{history}'


GATE_KEYS = ("call_id", "action", "target", "arguments", "kind", "score")
BUDGET_KEYS = ("breach", "raise_by")
HANDOFF_KEYS = ("summary", "history")


def escalation_context_html(row: Escalation) -> str:
    """The context in the escalation's format: the gated action and its score, a budget breach's cap and
    use, or a handoff's summary and history as a transcript; any other keys as ``key=value`` fields."""
    context = row.context or {}
    parts: list[str] = []
    known: set[str] = set()
    if "call_id" in context:
        parts.append(_gate_context(context))
        known.update(GATE_KEYS)
    if "breach" in context:
        parts.append(_budget_context(context))
        known.update(BUDGET_KEYS)
    if "summary" in context or "history" in context:
        parts.append(_handoff_context(context))
        known.update(HANDOFF_KEYS)
    rest = {key: value for key, value in context.items() if key not in known}
    if rest:
        parts.append(f'<div class="detail-fields escalation-other">{escape(fields_text(rest))}</div>')
    return "".join(parts) or empty_html("No context.")


def _options_html(options: Sequence[str]) -> str:
    if not options:
        return empty_html("No options: the answer is free text.")
    items = "".join(f'<li data-option="{escape(option)}"><code>{escape(option)}</code></li>' for option in options)
    return f'<ul class="escalation-options">{items}</ul>'


def _answer_html(row: Escalation) -> str:
    if row.status == "open":
        return ""
    at = "" if row.answered_at is None else f" at {date_time(row.answered_at)} UTC"
    note = f'<div class="escalation-note">Note: {escape(row.note)}</div>' if row.note else ""
    return (
        f'<h4>Answer</h4><div class="escalation-answer"><b>{escape(row.answer or "—")}</b> · '
        f"{escape(row.status)} by {escape(row.answered_by or '—')}{at} · after {latency_text(row)}</div>{note}"
    )


def escalation_detail_html(row: Escalation | None, now: float) -> str:
    """One escalation in its format: who and why, the question, the options, the context, and any answer."""
    if row is None:
        return empty_html("Pick an escalation to see it and answer it.")
    level = _level_text(row.level)
    due = f" · {due_text(row.due_at, now)}" if row.status == "open" else ""
    return (
        f'<div class="escalation-detail" data-id="{escape(row.id)}" data-run="{escape(row.run_id)}" '
        f'data-type="{escape(row.type)}" data-status="{escape(row.status)}">'
        f"<div>Escalation <b>{escape(row.id[:8])}</b> · {escape(row.type)} · trigger {escape(row.trigger)} · "
        f"for the {escape(row.audience)} · {escape(row.status)}{due}{f' · {level}' if level else ''}</div>"
        f"<div>Run {_run_link(row.run_id)} · thread <code>{escape(row.thread_id)}</code> · tenant "
        f"<code>{escape(row.tenant_id)}</code> · opened {date_time(row.created_at)} UTC"
        f"{'' if row.pauses_run else ' · the run goes on meanwhile'}</div>"
        f'<h4>Reason</h4><div class="escalation-reason">{escape(row.reason)}</div>'
        f'<h4>Question</h4><div class="escalation-question">{escape(row.question)}</div>'
        f"<h4>Options</h4>{_options_html(row.options)}"
        f'<h4>Context</h4><div class="escalation-context">{escalation_context_html(row)}</div>'
        f"{_answer_html(row)}</div>"
    )


def answer_outcome(row: Escalation, answer: str, result: RunResult | None) -> str:
    """What answering did, as Markdown: the resumed run's status and answer, or why nothing resumed."""
    head = f"Answered `{row.id[:8]}` with **{answer}**."
    if result is None:
        if not row.pauses_run:
            return f"{head} The run did not stop for this; the agent reads it on its next turn."
        return f"{head} The run waits for other answers."
    usage = result.usage
    line = run_line(result.run_id, result.status, usage.input_tokens, usage.output_tokens, usage.cost_usd)
    if result.status == "queued":
        body = "The run is back in the queue: a worker resumes it (with retries and the dead-letter queue)."
    elif result.status == "waiting":
        asks = "; ".join(item.get("question", "?") for item in result.escalations) or "another answer"
        body = f"The run resumed and now waits again: {asks}"
    elif result.status in FAILED_STATUSES:
        body = f"The run resumed and {result.status.replace('_', ' ')}: {result.error or 'no answer was produced'}"
    else:
        body = f"The run resumed and ended **{result.status}**:\n\n> {' '.join((result.answer or '—').split())}"
    return f"{head} {body}\n\n{line}"


def answer_error(error: Exception) -> str:
    """An answer that was refused (a bad option, an escalation someone else closed first)."""
    return f"**Not answered:** {error}"


def _cache_stats_row(row: Mapping[str, Any]) -> str:
    return (
        f'<tr class="cache-stats-row" data-layer="{escape(row["layer"])}">'
        f"<td>{escape(row['layer'])}</td>"
        f"<td>{escape(row['tenant_id'] or '—')}</td>"
        f'<td class="mono">{escape(row["route"] or "—")}</td>'
        f'<td class="number">{row["entries"]}</td>'
        f'<td class="number">{row["hits"]}</td>'
        "</tr>"
    )


def cache_stats_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """Live cache entries and their hits per layer, tenant and route (``CacheStore.stats``)."""
    return _table(
        "cache-stats",
        ("Layer", "Tenant", "Route", "Entries", "Hits"),
        [_cache_stats_row(row) for row in rows],
        "The cache is empty.",
    )


def _cache_entry_row(entry: CacheEntry) -> str:
    return (
        f'<tr class="cache-entry-row" data-id="{entry.id}">'
        f'<td class="number">{entry.id}</td>'
        f"<td>{escape(entry.tenant_id)}</td>"
        f'<td class="mono">{escape(entry.route)}</td>'
        f'<td class="number">{entry.hits}</td>'
        f'<td title="{escape(entry.text)}">{escape(shorten(entry.text, REASON_PREFIX_CHARS))}</td>'
        f"<td>{date_time(entry.last_used_at)}</td>"
        "</tr>"
    )


def cache_entries_html(entries: Sequence[CacheEntry]) -> str:
    """The most recently used cached answers, in the order given (newest first)."""
    return _table(
        "cache-entries",
        ("Entry", "Tenant", "Route", "Hits", "Question", "Last used"),
        [_cache_entry_row(entry) for entry in entries],
        "No cached answers.",
    )


# The Ops tab's panels: the budget bars and breaker badges of the Resilience tab, and a few numbers.
OPS_CSS = (
    BUDGET_CSS
    + BADGE_CSS
    + """
.ops-breakers, .ops-escalations { display: flex; gap: 16px; flex-wrap: wrap; align-items: center; }
.ops-count b { font-size: 1.4em; margin-right: 4px; }
.ops-note { color: var(--body-text-color-subdued); font-size: 0.85em; }
"""
)
TIME_COLUMN = "time (UTC)"


def percent_text(rate: float | None) -> str:
    """A rate (0–1) as a percent with one place; "—" when there was nothing to count."""
    return "—" if rate is None else f"{100 * rate:.1f}%"


def _seconds_text(seconds: float | None) -> str:
    return "—" if seconds is None else duration_text(seconds)


def _figures_row(row: Figures) -> str:
    return (
        f'<tr class="ops-row" data-group="{escape(row.group)}"{" data-total" if row.group == ALL_RUNS else ""}>'
        f'<td class="mono">{escape(row.group)}</td>'
        f'<td class="number ops-runs">{row.runs}</td>'
        f'<td class="number ops-errors">{row.errors}</td>'
        f'<td class="number ops-error-rate">{percent_text(row.error_rate)}</td>'
        f'<td class="number ops-p50">{_seconds_text(row.latency_p50_s)}</td>'
        f'<td class="number ops-p95">{_seconds_text(row.latency_p95_s)}</td>'
        f'<td class="number ops-cost">{format_cost(row.cost_usd)}</td>'
        f'<td class="number ops-tokens">{row.input_tokens} in / {row.output_tokens} out</td>'
        f'<td class="number ops-cache-hits">{row.cached} ({percent_text(row.cache_hit_rate)})</td>'
        "</tr>"
    )


def ops_figures_html(rows: Sequence[Figures], group_label: str) -> str:
    """The window's figures per route or per release (``group_label``), then the line for every run."""
    return _table(
        "ops-figures",
        (group_label, "Runs", "Errors", "Error rate", "Latency p50", "p95", "Cost", "Tokens", "Cache hits"),
        [_figures_row(row) for row in rows],
        "No runs in this window.",
    )


def _count(name: str, count: int, label: str) -> str:
    return f'<span class="ops-count" data-name="{escape(name)}"><b>{count}</b>{label}</span>'


def breaker_states_html(states: Mapping[str, int], not_closed: Sequence[str]) -> str:
    """How many breakers are in each state now, and which are not closed."""
    if not states:
        return empty_html("No breaker has been used yet.")
    counts = "".join(_count(state, states[state], state_badge(state)) for state in sorted(states))
    names = ", ".join(f"<code>{escape(name)}</code>" for name in not_closed)
    note = f'<span class="ops-note">not closed: {names}</span>' if names else ""
    return f'<div class="ops-breakers">{counts}{note}</div>'


def _budget_line_row(line: BudgetLine) -> str:
    percent = line.percent or 0.0  # the report holds capped lines only
    return (
        f'<tr class="budget-row ops-budget-row" data-scope="{escape(line.scope)}" '
        f'data-resource="{escape(line.resource)}" data-level="{_budget_level(percent)}">'
        f'<td class="mono">{escape(line.scope)}</td>'
        f'<td class="mono">{escape(line.resource)}</td>'
        f'<td class="number budget-used">{budget_amount(line.resource, line.used + line.reserved)}</td>'
        f'<td class="number budget-limit">{budget_amount(line.resource, line.limit or 0.0)}</td>'
        f'<td class="budget-usage">{_usage_bar(percent)}</td>'
        "</tr>"
    )


def budget_lines_html(lines: Sequence[BudgetLine]) -> str:
    """Budget lines against their caps, in the order given (the report's fullest first)."""
    return _table(
        "ops-budgets",
        ("Scope", "Resource", "Used + held", "Limit", "Of limit"),
        [_budget_line_row(line) for line in lines],
        "No budget was spent in this window.",
    )


def escalations_waiting_html(waiting: EscalationsWaiting) -> str:
    """How many escalations wait for a person, of which types, and the oldest wait."""
    if not waiting.open:
        return f'<div class="ops-escalations" data-open="0">{empty_html("Nothing waits for a person.")}</div>'
    types = "".join(_count(kind, count, escape(kind)) for kind, count in waiting.by_type.items())
    return (
        f'<div class="ops-escalations" data-open="{waiting.open}">{_count("open", waiting.open, "waiting")}{types}'
        f'<span class="ops-note">oldest waits {_seconds_text(waiting.oldest_wait_s)}</span></div>'
    )


def _plot_time(start: datetime | None) -> datetime | None:
    # The plots draw naive timestamps as they are: UTC, as the axis title says.
    return None if start is None else start.astimezone(UTC).replace(tzinfo=None)


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(100 * rate, 1)


def ops_frame(rows: Sequence[Figures]) -> pd.DataFrame:
    """One row per group and bucket: what the Ops plots of counts and rates draw."""
    return pd.DataFrame(
        {
            TIME_COLUMN: [_plot_time(row.start) for row in rows],
            "group": [row.group for row in rows],
            "runs": [row.runs for row in rows],
            "error rate %": [_percent(row.error_rate) for row in rows],
            "cache hit rate %": [_percent(row.cache_hit_rate) for row in rows],
            "cost USD": [row.cost_usd for row in rows],
            "tokens": [row.input_tokens + row.output_tokens for row in rows],
        }
    )


def latency_frame(rows: Sequence[Figures]) -> pd.DataFrame:
    """p50 and p95 per group and bucket as separate lines ("scripted/demo p95"); buckets without any left out."""
    points = [
        (_plot_time(row.start), f"{row.group} {name}", value)
        for row in rows
        for name, value in (("p50", row.latency_p50_s), ("p95", row.latency_p95_s))
        if value is not None
    ]
    return pd.DataFrame(points, columns=[TIME_COLUMN, "line", "seconds"])


def dead_letter_frame(counts: Sequence[DeadLetterCount]) -> pd.DataFrame:
    """Dead letters per bucket."""
    return pd.DataFrame(
        [(_plot_time(count.start), count.dead_letters) for count in counts], columns=[TIME_COLUMN, "dead letters"]
    )
