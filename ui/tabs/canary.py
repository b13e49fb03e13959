"""The Canary tab: start, promote and roll back a release; the ramp, both arms side by side, the step's analysis
and every decision."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import gradio as gr

from app.canary.controller import Canary
from app.canary.report import metric_figure, rollout_report
from app.operators import acting
from core.errors import FirebreakError
from memory.audit import AuditLog
from memory.tables import Rollout
from ui.html import BADGE_CSS, TABLE_CSS, date_time
from ui.page import Page

CANARY_TAB = "canary"
CANARY_CSS = (
    TABLE_CSS
    + BADGE_CSS
    + """
.canary-ramp { display: flex; gap: 8px; margin: 8px 0; }
.canary-step { padding: 2px 10px; border-radius: 12px; border: 1px solid var(--border-color-primary); }
.canary-step.current { font-weight: bold; background: var(--color-accent-soft); }
.canary-status[data-status="rolled_back"] { color: var(--error-text-color, #b91c1c); font-weight: bold; }
.canary-status[data-status="promoted"] { color: #15803d; font-weight: bold; }
td.failed { color: var(--error-text-color, #b91c1c); font-weight: bold; }
"""
)


def _metric_rows(metrics: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for metric in metrics:
        name = metric["name"]
        p_value = "–" if metric["p_value"] is None else f"{metric['p_value']:.3g}"
        rows.append(
            f'<tr data-metric="{escape(name)}"><td>{escape(name)}{" (critical)" if metric["critical"] else ""}</td>'
            f'<td class="control">{metric_figure(name, metric["control"])}</td>'
            f'<td class="canary">{metric_figure(name, metric["canary"])}</td>'
            f"<td>{p_value}</td>"
            f'<td class="{escape(metric["verdict"])}">{escape(metric["verdict"])}</td></tr>'
        )
    return "".join(rows)


def _arms_table(title: str, control: str, canary: str, counts: str, metrics: Sequence[Mapping[str, Any]]) -> str:
    return (
        f"<h4>{escape(title)}</h4><p>{escape(counts)}</p>"
        f"<table><thead><tr><th>metric</th><th>control · {escape(control)}</th><th>canary · {escape(canary)}</th>"
        f"<th>p</th><th>verdict</th></tr></thead><tbody>{_metric_rows(metrics)}</tbody></table>"
    )


def _history(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>No decision yet.</p>"
    items = "".join(
        f'<li data-action="{escape(row["action"])}">{date_time(row["created_at"])} · step {row["weight"]:g}% · '
        f"{escape(row['verdict'])} → <b>{escape(row['action'])}</b> by {escape(row['by'])} "
        f"(canary {row['canary_runs']} runs, control {row['control_runs']})</li>"
        for row in rows
    )
    return f'<ol class="canary-history">{items}</ol>'


def canary_html(report: Mapping[str, Any]) -> str:
    """The stable release and the active (or latest) rollout, as ``app.canary.report.rollout_report`` gives it."""
    stable = f'<p>Stable release: <b class="canary-stable">{escape(report["stable"])}</b></p>'
    rollout = report["rollout"]
    if rollout is None:
        return stable + '<div class="empty">No rollout yet. Start one above or with `firebreak canary start`.</div>'
    ramp = "".join(
        f'<span class="canary-step{" current" if i == rollout["step"] else ""}">{weight:g}%</span>'
        for i, weight in enumerate(rollout["steps"])
    )
    head = (
        f'<div class="canary-rollout" data-status="{escape(rollout["status"])}">'
        f"<p>Rollout {rollout['id']}: <b>{escape(rollout['release'])}</b> vs {escape(rollout['control'])} · "
        f'<span class="canary-status" data-status="{escape(rollout["status"])}">{escape(rollout["status"])}</span>'
        f" at {rollout['weight']:g}% · started by {escape(rollout['started_by'])}</p>"
        f'<div class="canary-ramp">{ramp}</div>'
        + (f'<p class="canary-reason">{escape(rollout["reason"])}</p>' if rollout["reason"] else "")
    )
    arms = rollout["arms"]
    body = _arms_table(
        "Both arms, whole rollout",
        rollout["control"],
        rollout["release"],
        f"control {arms['control_runs']} runs · canary {arms['canary_runs']} runs",
        arms["metrics"],
    )
    step = rollout["analysis"]
    if step is not None:
        body += _arms_table(
            f"This step ({rollout['weight']:g}%): {step['verdict']}",
            rollout["control"],
            rollout["release"],
            f"control {step['control_runs']} · canary {step['canary_runs']} runs; each arm needs {step['min_runs']}",
            step["metrics"],
        )
    return f"{stable}{head}{body}<h4>Decisions</h4>{_history(rollout['history'])}</div>"


@dataclass(frozen=True)
class CanaryHandlers:
    """The Canary tab's events: every action is the operator's, audited; the view covers the whole fleet."""

    page: Page

    async def canary_view(self, request: gr.Request) -> str:
        """The stable release and the active (or latest) rollout, both arms side by side."""
        self.page.reader(request, fleet=True)
        return canary_html(rollout_report((await self.page.services()).canary))

    async def _act(
        self, request: gr.Request, action: str, act: Callable[[Canary, str], Rollout], target: str, detail: str = ""
    ) -> tuple[str, str]:
        """Do ``act(canary, operator name)`` as the audited ``action``; the message says what happened, or why not."""
        services = await self.page.services()
        canary, operator = services.canary, self.page.operator(request)
        try:
            with acting(AuditLog(services.engine), operator, action, target=target, detail=detail):
                rollout = act(canary, operator.name)
        except FirebreakError as exc:
            return str(exc), canary_html(rollout_report(canary))
        message = f"Rollout {rollout.id} of {rollout.release}: {rollout.status} at {rollout.steps[rollout.step]:g}%."
        return message, canary_html(rollout_report(canary))

    async def start_rollout(self, release: str | None, request: gr.Request) -> tuple[str, str]:
        name = (release or "").strip()
        return await self._act(request, "canary.start", lambda canary, by: canary.start(name, by=by), name)

    async def promote_rollout(self, request: gr.Request) -> tuple[str, str]:
        return await self._act(
            request, "canary.promote", lambda canary, by: canary.promote(by=by), "active rollout", "one step"
        )

    async def roll_back(self, reason: str, request: gr.Request) -> tuple[str, str]:
        reason = reason.strip() or "rolled back by hand"
        return await self._act(
            request,
            "canary.rollback",
            lambda canary, by: canary.rollback(by=by, reason=reason),
            "active rollout",
            reason,
        )


def canary_tab(page: Page) -> None:
    """Lay out the Canary tab and wire its events."""
    handlers = CanaryHandlers(page)
    with gr.Tab("Canary", id=CANARY_TAB, elem_id="canary-tab") as tab:
        with gr.Row():
            release = gr.Dropdown(
                label="Release",
                choices=sorted(page.settings.releases),
                allow_custom_value=True,
                elem_id="canary-release",
                scale=2,
            )
            start_btn = gr.Button("Start rollout", variant="primary", elem_id="canary-start", scale=1)
            promote_btn = gr.Button("Promote a step", elem_id="canary-promote", scale=1)
            refresh_btn = gr.Button("Refresh", elem_id="refresh-canary", scale=1)
        with gr.Row():
            reason = gr.Textbox(label="Rollback reason", elem_id="canary-reason", scale=4)
            rollback_btn = gr.Button("Roll back", variant="stop", elem_id="canary-rollback", scale=1)
        result = gr.Markdown(elem_id="canary-result")
        status = gr.HTML(canary_html({"stable": "…", "rollout": None}), css_template=CANARY_CSS, elem_id="canary-view")
    refresh_btn.click(handlers.canary_view, None, status)
    tab.select(handlers.canary_view, None, status)
    outputs = [result, status]
    start_btn.click(handlers.start_rollout, release, outputs)
    promote_btn.click(handlers.promote_rollout, None, outputs)
    rollback_btn.click(handlers.roll_back, reason, outputs)
