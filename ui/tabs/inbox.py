"""The Inbox tab: the open escalations a reviewer works through, the picked one in its type's format, its
answer (the run resumes) and the recently closed ones."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import gradio as gr

from app.operators import Operator
from core.errors import FirebreakError
from core.status import RunStatus
from graph.agent import RunResult
from graph.answers import answer_as
from memory.escalations import EscalationStore
from memory.tables import Escalation
from ui.html import (
    DETAIL_CSS,
    FAILED_STATUSES,
    QUESTION_PREFIX_CHARS,
    REASON_PREFIX_CHARS,
    TABLE_CSS,
    budget_amount,
    date_time,
    duration_text,
    empty_html,
    fields_text,
    run_line,
    run_link,
    shorten,
    table,
    td,
    text_td,
    tr,
)
from ui.page import Page

INBOX_TAB = "inbox"
OPEN_ESCALATIONS = 200
RECENT_ANSWERED = 20
ESCALATION_QUESTION_CHARS = 120
GATE_KEYS = ("call_id", "action", "target", "arguments", "kind", "score")
BUDGET_KEYS = ("breach", "raise_by")
HANDOFF_KEYS = ("summary", "history")

# Open escalations, the picked one in its type's format, and the recent answers.
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
"""
    + DETAIL_CSS
)


def due_text(due_at: float, now: float) -> str:
    """ "due in 14 min", or "overdue 3 min" once the deadline has passed."""
    remaining = due_at - now
    return f"due in {duration_text(remaining)}" if remaining >= 0 else f"overdue {duration_text(-remaining)}"


def latency_text(row: Escalation) -> str:
    """How long the escalation waited for its answer (or its expiry); "—" while open."""
    return "—" if row.answered_at is None else duration_text(row.answered_at - row.created_at)


def _level_text(level: int) -> str:
    return f"passed up ×{level}" if level else ""


def escalation_choice(row: Escalation) -> tuple[str, str]:
    """A (label, escalation id) pair for the Inbox's picker."""
    label = f"{row.id[:8]} · {row.type} · {row.trigger} · {shorten(row.question, QUESTION_PREFIX_CHARS)}"
    return label, row.id


def _escalation_row(escalation: Escalation, now: float) -> str:
    level = _level_text(escalation.level)
    data = {
        "id": escalation.id,
        "run": escalation.run_id,
        "type": escalation.type,
        "audience": escalation.audience,
        "overdue": "true" if escalation.due_at < now else "false",
        "level": escalation.level,
    }
    return tr(
        "escalation-row",
        data,
        [
            td(escape(escalation.id[:8]), "mono", title=escalation.id),
            text_td(escalation.type),
            text_td(escalation.trigger),
            text_td(escalation.audience),
            td(run_link(escalation.run_id, short=True), "mono"),
            td(f"{due_text(escalation.due_at, now)}{f' · {level}' if level else ''}", "escalation-due"),
            text_td(escalation.question, limit=ESCALATION_QUESTION_CHARS),
        ],
    )


def escalations_html(rows: Sequence[Escalation], now: float) -> str:
    """The open escalations, oldest first: the queue a reviewer works through."""
    ordered = sorted(rows, key=lambda row: row.created_at)
    return table(
        "escalations",
        ("Id", "Type", "Trigger", "Audience", "Run", "Due", "Question"),
        [_escalation_row(row, now) for row in ordered],
        "No open escalations: nothing waits for a person.",
    )


def _answered_row(closed: Escalation) -> str:
    return tr(
        "answered-row",
        {"id": closed.id, "status": closed.status},
        [
            td(escape(closed.id[:8]), "mono", title=closed.id),
            text_td(closed.type),
            text_td(closed.trigger),
            text_td(closed.status),
            td(
                escape(shorten(closed.answer or "—", REASON_PREFIX_CHARS)), "answered-answer", title=closed.answer or ""
            ),
            text_td(closed.answered_by or "—", "answered-by"),
            td(latency_text(closed), "number answered-latency"),
            text_td(shorten(closed.note or "", REASON_PREFIX_CHARS)),
            td("—" if closed.answered_at is None else date_time(closed.answered_at)),
        ],
    )


def answered_html(rows: Sequence[Escalation]) -> str:
    """Recently closed escalations (answered or expired), most recently closed first."""
    ordered = sorted(rows, key=lambda row: row.answered_at or row.created_at, reverse=True)
    return table(
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
        f"<div>Run {run_link(row.run_id)} · thread <code>{escape(row.thread_id)}</code> · tenant "
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
    if result.status == RunStatus.QUEUED:
        body = "The run is back in the queue: a worker resumes it (with retries and the dead-letter queue)."
    elif result.status == RunStatus.WAITING:
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


def _recently_closed(store: EscalationStore, operator: Operator) -> list[Escalation]:
    rows = [*store.list(status="answered", limit=RECENT_ANSWERED), *store.list(status="expired", limit=RECENT_ANSWERED)]
    rows = [row for row in rows if operator.sees(row.tenant_id)]
    rows.sort(key=lambda row: row.answered_at or row.created_at, reverse=True)
    return rows[:RECENT_ANSWERED]


def _option_picker(row: Escalation | None) -> gr.Radio:
    """The picked escalation's options, nothing chosen; hidden when its answer is free text."""
    options = list(row.options) if row is not None else []
    return gr.Radio(choices=options, value=None, visible=bool(options))


@dataclass(frozen=True)
class InboxHandlers:
    """The Inbox tab's events: every view shows only the escalations of tenants the operator may see."""

    page: Page

    async def inbox_views(self, selected: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Pass up or expire overdue escalations, then: the open ones (keeping the pick while it is open),
        the picked one's detail and options, and the recently answered ones (those the operator may see)."""
        operator = self.page.reader(request)
        agent = await self.page.agent()
        try:
            await agent.sweep()
        except FirebreakError as exc:
            raise gr.Error(f"could not pass up overdue escalations: {exc}") from exc
        store = agent.services.escalations
        now = agent.services.clock()
        rows = [row for row in store.list(status="open", limit=OPEN_ESCALATIONS) if operator.sees(row.tenant_id)]
        picked = next((row for row in rows if row.id == selected), None)
        return (
            escalations_html(rows, now),
            gr.Dropdown(choices=[escalation_choice(row) for row in rows], value=None if picked is None else picked.id),
            escalation_detail_html(picked, now),
            # A still-open pick keeps the option the reviewer may have chosen already.
            _option_picker(None) if picked is None else gr.skip(),
            answered_html(_recently_closed(store, operator)),
        )

    async def pick_escalation(self, selected: str | None, request: gr.Request) -> tuple[Any, ...]:
        operator = self.page.reader(request)
        services = await self.page.services()
        row = services.escalations.get(selected) if selected else None
        row = row if row is not None and operator.sees(row.tenant_id) else None
        return escalation_detail_html(row, services.clock()), _option_picker(row), ""

    async def answer_escalation(
        self, selected: str | None, option: str | None, text: str, note: str, request: gr.Request
    ) -> tuple[Any, ...]:
        """Answer the picked escalation as the operator: its option, else the written answer; show what the
        resumed run did."""
        agent = await self.page.agent()
        row = agent.services.escalations.get(selected) if selected else None
        answer = (option or "").strip() or text.strip()
        cleared: tuple[Any, ...] = (gr.skip(), gr.skip())
        if row is None:
            message = "Pick an escalation to answer."
        elif not answer:
            message = "Choose one of its options or write an answer." if row.options else "Write an answer."
        else:
            try:
                operator = self.page.operator(request)
                result = await answer_as(agent, operator, row, answer, note=note.strip() or None)
            except FirebreakError as exc:
                message = answer_error(exc)
            else:
                message, cleared = answer_outcome(row, answer, result), ("", "")
        return (message, *cleared, *(await self.inbox_views(selected, request)))


def inbox_tab(page: Page) -> None:
    """Lay out the Inbox tab and wire its events."""
    handlers = InboxHandlers(page)
    with gr.Tab("Inbox", id=INBOX_TAB, elem_id="inbox-tab") as tab:
        refresh_btn = gr.Button("Refresh", elem_id="refresh-inbox")
        gr.Markdown("### Open escalations")
        open_view = gr.HTML(escalations_html([], time.time()), css_template=INBOX_CSS, elem_id="inbox-open")
        pick = gr.Dropdown(label="Escalation", choices=[], elem_id="inbox-pick")
        detail = gr.HTML(escalation_detail_html(None, time.time()), css_template=INBOX_CSS, elem_id="inbox-detail")
        option = gr.Radio(label="Answer", choices=[], visible=False, elem_id="inbox-option")
        with gr.Row():
            written = gr.Textbox(
                label="Written answer",
                placeholder="for questions without options (a handoff's reply); an option above wins",
                elem_id="inbox-answer",
                lines=2,
                scale=3,
            )
            note = gr.Textbox(
                label="Note (optional)",
                placeholder="why; kept with the answer as labeled data",
                elem_id="inbox-note",
                lines=2,
                scale=2,
            )
        answer_btn = gr.Button("Answer", variant="primary", elem_id="inbox-answer-button")
        result = gr.Markdown(elem_id="inbox-result")
        gr.Markdown("### Recently answered")
        answered_view = gr.HTML(answered_html([]), css_template=INBOX_CSS, elem_id="inbox-answered")
    outputs = [open_view, pick, detail, option, answered_view]
    refresh_btn.click(handlers.inbox_views, pick, outputs)
    tab.select(handlers.inbox_views, pick, outputs)
    # Only a person's pick redraws the detail: inbox_views already draws it when it updates the dropdown.
    pick.input(handlers.pick_escalation, pick, [detail, option, written])
    answer_btn.click(handlers.answer_escalation, [pick, option, written, note], [result, written, note, *outputs])
