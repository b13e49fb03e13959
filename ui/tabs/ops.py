"""The Ops tab: latency, errors, cost, tokens, cache hits and dead letters per route or release over time,
the window's figures, and the breakers, budgets, waiting escalations and alerts beside them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

import gradio as gr
import pandas as pd

from app.dashboards import (
    ALL_RUNS,
    DEFAULT_WINDOW_S,
    BudgetLine,
    DeadLetterCount,
    EscalationsWaiting,
    Figures,
    OpsReport,
    ops_report,
)
from memory.queue import QueueStore
from ui.html import (
    BADGE_CSS,
    BUDGET_CSS,
    QUEUE_CSS,
    budget_amount,
    budget_level,
    date_time,
    duration_text,
    empty_html,
    format_cost,
    percent_text,
    state_badge,
    table,
    td,
    text_td,
    tr,
    usage_bar,
)
from ui.page import Page
from ui.tabs.queue import RECENT_ALERTS, alerts_html

OPS_TAB = "ops"
OPS_WINDOWS = [
    ("last 15 min", 900.0),
    ("last hour", 3600.0),
    ("last 24 h", DEFAULT_WINDOW_S),
    ("last 7 days", 604_800.0),
]
OPS_GROUPS = ("route", "release")
TIME_COLUMN = "time (UTC)"
# The panels: the budget bars and breaker badges of the Resilience tab, and a few numbers.
OPS_CSS = (
    BUDGET_CSS
    + BADGE_CSS
    + """
.ops-breakers, .ops-escalations { display: flex; gap: 16px; flex-wrap: wrap; align-items: center; }
.ops-count b { font-size: 1.4em; margin-right: 4px; }
.ops-note { color: var(--body-text-color-subdued); font-size: 0.85em; }
"""
)


def _seconds_text(seconds: float | None) -> str:
    return "—" if seconds is None else duration_text(seconds)


def _figures_row(figures: Figures) -> str:
    return tr(
        "ops-row",
        {"group": figures.group, "total": figures.group == ALL_RUNS},
        [
            text_td(figures.group, "mono"),
            td(figures.runs, "number ops-runs"),
            td(figures.errors, "number ops-errors"),
            td(percent_text(figures.error_rate), "number ops-error-rate"),
            td(_seconds_text(figures.latency_p50_s), "number ops-p50"),
            td(_seconds_text(figures.latency_p95_s), "number ops-p95"),
            td(format_cost(figures.cost_usd), "number ops-cost"),
            td(f"{figures.input_tokens} in / {figures.output_tokens} out", "number ops-tokens"),
            td(f"{figures.cached} ({percent_text(figures.cache_hit_rate)})", "number ops-cache-hits"),
        ],
    )


def ops_figures_html(rows: Sequence[Figures], group_label: str) -> str:
    """The window's figures per route or per release (``group_label``), then the line for every run."""
    return table(
        "ops-figures",
        (group_label, "Runs", "Errors", "Error rate", "Latency p50", "p95", "Cost", "Tokens", "Cache hits"),
        [_figures_row(figures) for figures in rows],
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
    return tr(
        "budget-row ops-budget-row",
        {"scope": line.scope, "resource": line.resource, "level": budget_level(percent)},
        [
            text_td(line.scope, "mono"),
            text_td(line.resource, "mono"),
            td(budget_amount(line.resource, line.used + line.reserved), "number budget-used"),
            td(budget_amount(line.resource, line.limit or 0.0), "number budget-limit"),
            td(usage_bar(percent), "budget-usage"),
        ],
    )


def budget_lines_html(lines: Sequence[BudgetLine]) -> str:
    """Budget lines against their caps, in the order given (the report's fullest first)."""
    return table(
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


def _series(report: OpsReport, group: str) -> list[Figures]:
    return report.route_series if group == "route" else report.release_series


@dataclass(frozen=True)
class OpsHandlers:
    """The Ops tab's one view; it covers every tenant, so only fleet readers see it."""

    page: Page

    async def ops_views(self, window_s: float, group: str, request: gr.Request) -> tuple[Any, ...]:
        """The Ops plots per ``group`` (route or release), the figures tables and the panels, for the window."""
        self.page.reader(request, fleet=True)
        services = await self.page.services()
        report = ops_report(services.engine, services.limits, window_s=float(window_s or DEFAULT_WINDOW_S))
        series = _series(report, group)
        frame = ops_frame(series)
        return (
            f"{date_time(report.since.timestamp())} to {date_time(report.until.timestamp())} UTC, "
            f"in buckets of {duration_text(report.bucket_s)} · plots per {group}",
            latency_frame(series),
            frame,
            frame,
            frame,
            frame,
            dead_letter_frame(report.dead_letters),
            ops_figures_html(report.by_route, "Route"),
            ops_figures_html(report.by_release, "Release"),
            breaker_states_html(report.breakers, report.breakers_not_closed),
            escalations_waiting_html(report.escalations),
            budget_lines_html(report.budgets),
            alerts_html(QueueStore(services.engine).alerts(limit=RECENT_ALERTS)),
        )


def _ops_plot(
    kind: type[gr.ScatterPlot] | type[gr.BarPlot], elem_id: str, title: str, *, y: str, color: str | None = "group"
) -> gr.ScatterPlot | gr.BarPlot:
    """An empty Ops plot of ``y`` over time, one colour per ``color`` value; the Ops views fill it.

    Rates and latencies are points, one per bucket: a line plot draws nothing for a lone bucket.
    """
    return kind(x=TIME_COLUMN, y=y, color=color, title=title, x_title=TIME_COLUMN, height=260, elem_id=elem_id)


def _plots() -> list[gr.ScatterPlot | gr.BarPlot]:
    """The six plots, two to a row, in the order ``ops_views`` fills them."""
    with gr.Row():
        latency = _ops_plot(gr.ScatterPlot, "ops-latency", "Latency p50 / p95", y="seconds", color="line")
        errors = _ops_plot(gr.ScatterPlot, "ops-errors", "Error rate", y="error rate %")
    with gr.Row():
        cost = _ops_plot(gr.BarPlot, "ops-cost", "Cost", y="cost USD")
        tokens = _ops_plot(gr.BarPlot, "ops-tokens", "Tokens", y="tokens")
    with gr.Row():
        cache = _ops_plot(gr.ScatterPlot, "ops-cache", "Cache hit rate", y="cache hit rate %")
        dlq = _ops_plot(gr.BarPlot, "ops-dlq", "Dead letters", y="dead letters", color=None)
    return [latency, errors, cost, tokens, cache, dlq]


def _panels() -> list[gr.HTML]:
    """The figures tables and the panels, in the order ``ops_views`` fills them."""
    gr.Markdown("### Per route")
    routes = gr.HTML(ops_figures_html([], "Route"), css_template=OPS_CSS, elem_id="ops-by-route")
    gr.Markdown("### Per release")
    releases = gr.HTML(ops_figures_html([], "Release"), css_template=OPS_CSS, elem_id="ops-by-release")
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Circuit breakers now")
            breakers = gr.HTML(breaker_states_html({}, []), css_template=OPS_CSS, elem_id="ops-breakers")
        with gr.Column():
            gr.Markdown("### Escalations waiting")
            escalations = gr.HTML(css_template=OPS_CSS, elem_id="ops-escalations")
    gr.Markdown("### Budgets closest to their caps")
    budgets = gr.HTML(budget_lines_html([]), css_template=OPS_CSS, elem_id="ops-budgets")
    gr.Markdown("### Recent alerts")
    alerts = gr.HTML(alerts_html([]), css_template=QUEUE_CSS, elem_id="ops-alerts")
    return [routes, releases, breakers, escalations, budgets, alerts]


def ops_tab(page: Page) -> None:
    """Lay out the Ops tab and wire its events."""
    handlers = OpsHandlers(page)
    with gr.Tab("Ops", id=OPS_TAB, elem_id="ops-tab") as tab:
        with gr.Row():
            window = gr.Dropdown(
                label="Window", choices=OPS_WINDOWS, value=DEFAULT_WINDOW_S, elem_id="ops-window", scale=2
            )
            group = gr.Radio(label="Plot per", choices=list(OPS_GROUPS), value="route", elem_id="ops-group", scale=2)
            refresh_btn = gr.Button("Refresh", elem_id="refresh-ops", scale=1)
        period = gr.Markdown(elem_id="ops-period")
        outputs = [period, *_plots(), *_panels()]
    inputs = [window, group]
    refresh_btn.click(handlers.ops_views, inputs, outputs)
    tab.select(handlers.ops_views, inputs, outputs)
    window.input(handlers.ops_views, inputs, outputs)
    group.input(handlers.ops_views, inputs, outputs)
