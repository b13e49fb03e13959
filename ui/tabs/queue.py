"""The Runs & DLQ tab: the run queue's counts, the recent runs, every run that needs an operator (with the
action that fits), the dead-letter queue (to inspect and requeue), the recent alerts and the operators' actions."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from html import escape
from typing import Any

import gradio as gr

from app.operators import Attention, find_attention, needs_attention, requeue_as, visible_actions
from core.errors import FirebreakError
from memory.audit import AuditLog
from memory.events import is_event_letter
from memory.queue import QueueStore
from memory.tables import Alert, DeadLetter, OperatorAction, Run
from ui.html import (
    QUESTION_PREFIX_CHARS,
    QUEUE_CSS,
    REASON_PREFIX_CHARS,
    date_time,
    empty_html,
    fields_text,
    format_cost,
    run_link,
    shorten,
    table,
    td,
    text_td,
    tr,
    value_text,
)
from ui.page import Page

QUEUE_TAB = "queue"
RECENT_RUNS = 50
RECENT_ALERTS = 20
RECENT_ACTIONS = 50
# A queued job's statuses (not a run's): the four the counts always show.
QUEUE_STATUSES = ("queued", "running", "completed", "dead")


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
    return tr(
        "run-row",
        {"run": run.id, "status": run.status},
        [
            text_td(run.status),
            td(run_link(run.id), "mono"),
            text_td(shorten(run.question, QUESTION_PREFIX_CHARS)),
            td(f"{run.input_tokens} in / {run.output_tokens} out", "number"),
            td(format_cost(run.cost_usd), "number"),
        ],
    )


def runs_html(runs: Sequence[Run]) -> str:
    """The recent runs, in the order given (the store's newest first), each linking to its trace."""
    return table(
        "runs", ("Status", "Run", "Question", "Tokens", "Cost"), [_run_row(run) for run in runs], "No runs yet."
    )


def _attention_row(item: Attention) -> str:
    target = run_link(item.target) if item.kind == "run" else f"<code>{escape(item.target)}</code>"
    return tr(
        "attention-row",
        {"target": item.target, "status": item.status, "action": item.action, "entry": item.entry},
        [
            td(target, "mono"),
            text_td(item.status),
            text_td(item.entry),
            td(f"<b>{escape(item.action)}</b> {escape(item.detail)}"),
            text_td(item.reason, limit=REASON_PREFIX_CHARS),
            td(date_time(item.at)),
        ],
    )


def attention_html(items: Sequence[Attention]) -> str:
    """Every run and event handling that did not end with a clean answer, with the action that fits
    (the same list as ``firebreak dlq list``)."""
    return table(
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
    return tr(
        "dead-letter-row",
        {"id": letter.id, "run": letter.run_id},
        [
            td(letter.id, "number"),
            td(run_link(letter.run_id), "mono"),
            td(letter.attempts, "number"),
            text_td(letter.reason, limit=REASON_PREFIX_CHARS),
            td(date_time(letter.created_at)),
        ],
    )


def dead_letters_html(rows: Sequence[DeadLetter]) -> str:
    """The dead-letter queue, in the order given (the store's newest first)."""
    return table(
        "dead-letters",
        ("Id", "Run", "Attempts", "Reason", "Dead since (UTC)"),
        [_dead_letter_row(letter) for letter in rows],
        "The dead-letter queue is empty.",
    )


def _message_item(message: Mapping[str, Any]) -> str:
    calls = "".join(
        f"<li>calls <code>{escape(str(call.get('name', '?')))}</code> "
        f"<code>{escape(value_text(call.get('args', call.get('arguments', {}))))}</code></li>"
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
        f'<div class="detail-text">{escape(value_text(output.get("output", "")))}</div></li>'
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
        f"<div>Dead letter <b>#{letter.id}</b> · run {run_link(letter.run_id)} · tenant "
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
    return tr(
        "alert-row",
        {"kind": alert.kind},
        [
            td(date_time(alert.created_at)),
            text_td(alert.kind, "mono"),
            text_td(alert.message),
            text_td(fields_text(alert.payload), "mono"),
        ],
    )


def alerts_html(rows: Sequence[Alert]) -> str:
    """Recent alerts, in the order given (the store's newest first)."""
    return table(
        "alerts", ("Time (UTC)", "Kind", "Message", "Details"), [_alert_row(alert) for alert in rows], "No alerts."
    )


def _action_row(action: OperatorAction) -> str:
    return tr(
        "action-row",
        {"action": action.action, "allowed": str(action.allowed).lower()},
        [
            td(date_time(action.created_at)),
            text_td(action.operator),
            td(f"{escape(action.role or '—')} · {escape(action.via)}", "mono"),
            text_td(action.action, "mono"),
            text_td(action.target, "mono"),
            text_td(action.tenant_id or "—"),
            text_td(action.detail or "—"),
            text_td(action.outcome, "action-outcome"),
        ],
    )


def actions_html(rows: Sequence[OperatorAction]) -> str:
    """The audit log's rows, in the order given (newest first): who did what, allowed or refused, and how it went."""
    return table(
        "actions",
        ("Time (UTC)", "Operator", "Role · via", "Action", "Target", "Tenant", "Given", "Outcome"),
        [_action_row(action) for action in rows],
        "No operator actions yet.",
    )


@dataclass(frozen=True)
class QueueHandlers:
    """The Runs & DLQ tab's events: views of the tenants the operator may see, and requeues as the operator."""

    page: Page

    async def _store(self) -> QueueStore:
        return QueueStore((await self.page.services()).engine)

    async def queue_views(self, selected: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Counts, recent runs, what needs an operator (every run that did not end cleanly, with its action),
        the dead letters (keeping the pick while it is still dead), its detail, alerts; the runs and letters
        only of tenants the operator may see."""
        operator = self.page.reader(request)
        services = await self.page.services()
        store = QueueStore(services.engine)
        letters = [letter for letter in store.dead_letters() if operator.sees(letter.tenant_id)]
        picked = next((letter for letter in letters if str(letter.id) == selected), None)
        attention = needs_attention(services.engine, operator, now=time.time())
        return (
            queue_counts_html(store.counts()),
            runs_html([run for run in services.runs.recent(limit=RECENT_RUNS) if operator.sees(run.tenant_id)]),
            attention_html(attention),
            gr.Dropdown(choices=[attention_choice(item) for item in attention if item.action == "requeue"], value=None),
            dead_letters_html(letters),
            gr.Dropdown(
                choices=[dead_letter_choice(letter) for letter in letters],
                value=None if picked is None else str(picked.id),
            ),
            dead_letter_detail_html(picked),
            # Alerts name runs and tenants across the fleet: for operators of every tenant only.
            alerts_html([] if operator.tenants else store.alerts(limit=RECENT_ALERTS)),
            actions_html(visible_actions(AuditLog(services.engine), operator, limit=RECENT_ACTIONS)),
        )

    async def pick_dead_letter(self, selected: str | None, request: gr.Request) -> str:
        operator = self.page.reader(request)
        letter = (await self._store()).dead_letter(int(selected)) if selected else None
        return dead_letter_detail_html(letter if letter and operator.sees(letter.tenant_id) else None)

    async def _requeue_one(self, target: str, request: gr.Request) -> str:
        """Requeue ``target`` (a run id or event:<dead letter id>) as the operator; what came of it."""
        store = await self._store()
        operator, now = self.page.operator(request), time.time()
        try:
            item = find_attention(store.engine, replace(operator, tenants=()), target, now=now)
            moved = requeue_as(store, operator, item, now=now, max_attempts=self.page.settings.queue.max_attempts)
        except FirebreakError as exc:
            return f"Not requeued: {exc}"
        what = f"{item.kind} `{target}`"
        return f"Requeued {what}." if moved else f"The {what} is no longer dead: nothing to requeue."

    async def requeue(self, selected: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Requeue the picked dead letter's run (or event); the views then show the list without it."""
        letter = (await self._store()).dead_letter(int(selected)) if selected else None
        if letter is None:
            message = "Pick a dead letter to requeue."
        else:
            target = f"event:{letter.id}" if is_event_letter(letter) else letter.run_id
            message = await self._requeue_one(target, request)
        return (message, *(await self.queue_views(None, request)))

    async def requeue_target(self, target: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Requeue the picked run (one that failed in the chat, `ask` or the API, say) or event."""
        message = await self._requeue_one(target, request) if target else "Pick a run or event to requeue."
        return (message, *(await self.queue_views(None, request)))

    async def requeue_all(self, request: gr.Request) -> tuple[Any, ...]:
        """Requeue everything the view says to requeue that the operator may see."""
        store = await self._store()
        operator, now = self.page.operator(request), time.time()
        targets = [item for item in needs_attention(store.engine, operator, now=now) if item.action == "requeue"]
        max_attempts = self.page.settings.queue.max_attempts
        try:
            requeued = [requeue_as(store, operator, item, now=now, max_attempts=max_attempts) for item in targets]
            message = f"Requeued {sum(requeued)} of {len(targets)} dead runs." if targets else "Nothing to requeue."
        except FirebreakError as exc:
            message = f"Not requeued: {exc}"
        return (message, *(await self.queue_views(None, request)))


def _view(html: str, elem_id: str) -> gr.HTML:
    return gr.HTML(html, css_template=QUEUE_CSS, elem_id=elem_id)


def queue_tab(page: Page, demo: gr.Blocks) -> None:
    """Lay out the Runs & DLQ tab and wire its events (it fills on page load too)."""
    handlers = QueueHandlers(page)
    with gr.Tab("Runs & DLQ", id=QUEUE_TAB, elem_id="queue-tab") as tab:
        refresh_btn = gr.Button("Refresh", elem_id="refresh-queue")
        gr.Markdown("### Run queue")
        counts_view = _view(queue_counts_html({}), "queue-counts")
        gr.Markdown("### Recent runs")
        runs_view = _view(runs_html([]), "recent-runs-view")
        gr.Markdown("### Needs an operator (every run that did not end with a clean answer)")
        attention_view = _view(attention_html([]), "attention-view")
        with gr.Row():
            attention_pick = gr.Dropdown(label="Run or event to requeue", choices=[], elem_id="attention-pick", scale=4)
            requeue_target_btn = gr.Button("Requeue", elem_id="requeue-target-button", scale=1)
        gr.Markdown("### Dead letters")
        dead_letters_view = _view(dead_letters_html([]), "dead-letters-view")
        with gr.Row():
            dead_letter_pick = gr.Dropdown(label="Dead letter", choices=[], elem_id="dead-letter-pick", scale=4)
            requeue_btn = gr.Button("Requeue", variant="primary", elem_id="requeue-button", scale=1)
            requeue_all_btn = gr.Button("Requeue all", elem_id="requeue-all-button", scale=1)
        result = gr.Markdown(elem_id="requeue-result")
        detail_view = _view(dead_letter_detail_html(None), "dead-letter-detail")
        gr.Markdown("### Recent alerts")
        alerts_view = _view(alerts_html([]), "alerts-view")
        gr.Markdown("### Operator actions (an admin sees everyone's; others their own)")
        actions_view = _view(actions_html([]), "actions-view")
    outputs = [
        counts_view,
        runs_view,
        attention_view,
        attention_pick,
        dead_letters_view,
        dead_letter_pick,
        detail_view,
        alerts_view,
        actions_view,
    ]
    refresh_btn.click(handlers.queue_views, dead_letter_pick, outputs)
    tab.select(handlers.queue_views, dead_letter_pick, outputs)
    demo.load(handlers.queue_views, dead_letter_pick, outputs)
    # Only a person's pick redraws the detail: queue_views already draws it when it updates the dropdown.
    dead_letter_pick.input(handlers.pick_dead_letter, dead_letter_pick, detail_view)
    requeue_btn.click(handlers.requeue, dead_letter_pick, [result, *outputs])
    requeue_all_btn.click(handlers.requeue_all, None, [result, *outputs])
    requeue_target_btn.click(handlers.requeue_target, attention_pick, [result, *outputs])
