"""The Resilience tab: every backend's circuit breaker, their recent transitions, and the blast-radius budgets
(usage against the caps per request, session and tenant day)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

import gradio as gr

from app.dashboards import used_percent
from app.limits.ledger import RESOURCES
from memory.tables import Breaker, BreakerTransition, BudgetUsage
from ui.html import (
    BADGE_CSS,
    BUDGET_CSS,
    TABLE_CSS,
    budget_amount,
    budget_level,
    clock_time,
    date_time,
    empty_html,
    state_badge,
    table,
    td,
    text_td,
    tr,
    usage_bar,
)
from ui.page import Page, readable

RESILIENCE_TAB = "resilience"
RECENT_TRANSITIONS = 100
BREAKER_CSS = TABLE_CSS + BADGE_CSS
# Scope kinds in the order the budgets panel groups them: the tenant's day, then sessions, then requests.
SCOPE_KINDS = ("day", "session", "request")
SCOPE_KIND_LABELS = {"day": "tenant day", "session": "session", "request": "request"}
RECENT_SCOPES = 30


def next_probe(breaker: Breaker, now: float) -> str:
    """When an open breaker admits its next probe; "now" once its cooldown is over."""
    if breaker.state == "half_open":
        return "probing"
    if breaker.state != "open":
        return "—"
    remaining = breaker.open_until - now
    return f"in {math.ceil(remaining)}s" if remaining > 0 else "now"


def _breaker_row(breaker: Breaker, now: float) -> str:
    return tr(
        "breaker-row",
        {"name": breaker.name, "state": breaker.state},
        [
            text_td(breaker.name, "mono"),
            td(state_badge(breaker.state)),
            td(next_probe(breaker, now), "breaker-probe"),
            td(breaker.trips, "number"),
            td(clock_time(breaker.updated_at)),
        ],
    )


def breakers_html(rows: Sequence[Breaker], now: float) -> str:
    """The Resilience tab's breaker table: one row per backend that has been called."""
    return table(
        "breakers",
        ("Backend", "State", "Next probe", "Trips", "Last change (UTC)"),
        [_breaker_row(breaker, now) for breaker in rows],
        "No breaker has been used yet.",
    )


def _transition_row(transition: BreakerTransition) -> str:
    return tr(
        "transition-row",
        {"name": transition.name, "from": transition.from_state, "to": transition.to_state},
        [
            td(clock_time(transition.at)),
            text_td(transition.name, "mono"),
            td(f"{state_badge(transition.from_state)} → {state_badge(transition.to_state)}"),
            text_td(transition.reason),
        ],
    )


def transitions_html(rows: Sequence[BreakerTransition]) -> str:
    """The breaker transition log, newest first (a stable sort keeps the store's order for equal times)."""
    newest_first = sorted(rows, key=lambda transition: transition.at, reverse=True)
    return table(
        "breaker-transitions",
        ("Time (UTC)", "Backend", "Change", "Reason"),
        [_transition_row(transition) for transition in newest_first],
        "No transitions yet.",
    )


def scope_kind(scope: str) -> str:
    """``day``, ``session`` or ``request``: a ledger scope's prefix before its first colon."""
    return scope.split(":", 1)[0]


def _budget_row(usage: BudgetUsage, limit: float | None) -> str:
    spent = usage.used + usage.reserved
    if limit is None:
        level, limit_text, bar = "uncapped", "—", '<span class="budget-percent">no cap</span>'
    else:
        percent = used_percent(spent, limit)
        level, limit_text, bar = budget_level(percent), budget_amount(usage.resource, limit), usage_bar(percent)
    return tr(
        "budget-row",
        {"scope": usage.scope, "resource": usage.resource, "level": level},
        [
            text_td(usage.resource, "mono"),
            td(budget_amount(usage.resource, usage.used), "number budget-used"),
            td(budget_amount(usage.resource, usage.reserved), "number budget-held"),
            td(limit_text, "number budget-limit"),
            td(bar, "budget-usage"),
        ],
    )


def _resource_order(usage: BudgetUsage) -> tuple[int, str]:
    known = RESOURCES.index(usage.resource) if usage.resource in RESOURCES else len(RESOURCES)
    return known, usage.resource


def _kind_order(kind: str) -> int:
    return SCOPE_KINDS.index(kind) if kind in SCOPE_KINDS else len(SCOPE_KINDS)


def _cap(caps: object, usage: BudgetUsage) -> float | None:
    """The configured cap plus what reviewers granted on a breach (raise once)."""
    limit = getattr(caps, usage.resource, None)
    return None if limit is None else float(limit) + usage.granted


def _budget_scope(scope: str, rows: Sequence[BudgetUsage], updated: float, limits_by_kind: Mapping[str, object]) -> str:
    kind = scope_kind(scope)
    caps = limits_by_kind.get(kind)
    body = "".join(_budget_row(usage, _cap(caps, usage)) for usage in sorted(rows, key=_resource_order))
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
    for usage in rows:
        by_scope.setdefault(usage.scope, []).append(usage)
    updated = {scope: max(usage.updated_at for usage in scope_rows) for scope, scope_rows in by_scope.items()}
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


@dataclass(frozen=True)
class ResilienceHandlers:
    """The Resilience tab's one view: breakers and budgets cover every tenant, so only fleet readers see them."""

    page: Page

    async def resilience_views(self, request: gr.Request) -> tuple[str, str, str]:
        """Every breaker with its state, the latest transitions (newest first), and the budgets' usage."""
        operator = self.page.operator(request)
        if operator.tenants:  # on every page load: say why it is empty rather than raise an error
            scope = ", ".join(operator.tenants)
            notice = f"{operator.name} acts only for {scope}: breakers and budgets cover every tenant."
            return empty_html(notice), "", ""
        readable(operator)
        services = await self.page.services()
        store = services.breakers.store
        limits = services.settings.limits
        return (
            breakers_html(store.all(), time.time()),
            transitions_html(store.transitions(limit=RECENT_TRANSITIONS)),
            budgets_html(
                services.limits.store.usage(),
                {"request": limits.request, "session": limits.session, "day": limits.day},
            ),
        )


def resilience_tab(page: Page, demo: gr.Blocks) -> None:
    """Lay out the Resilience tab and wire its events (it fills on page load too)."""
    handlers = ResilienceHandlers(page)
    with gr.Tab("Resilience", id=RESILIENCE_TAB, elem_id="resilience-tab") as tab:
        refresh_btn = gr.Button("Refresh", elem_id="refresh-breakers")
        gr.Markdown("### Circuit breakers")
        breakers_view = gr.HTML(breakers_html([], time.time()), css_template=BREAKER_CSS, elem_id="breakers-view")
        gr.Markdown("### Recent transitions")
        transitions_view = gr.HTML(transitions_html([]), css_template=BREAKER_CSS, elem_id="breaker-transitions-view")
        gr.Markdown("### Budgets")
        budgets_view = gr.HTML(budgets_html([], {}), css_template=BUDGET_CSS, elem_id="budgets-view")
    outputs = [breakers_view, transitions_view, budgets_view]
    refresh_btn.click(handlers.resilience_views, None, outputs)
    tab.select(handlers.resilience_views, None, outputs)
    demo.load(handlers.resilience_views, None, outputs)
