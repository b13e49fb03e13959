"""The Traces tab: the runs (filtered by status, route, release and tenant) and the picked run's span tree as a
waterfall, under its plan (planned vs executed) and the shared entities its team changed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import gradio as gr

from app.dashboards import RunFilter, find_runs, run_facets
from app.operators import Operator
from app.planning.report import plan_report
from app.traces import TraceLine, trace_lines
from memory.shared_state import EntityStore
from memory.tables import EntityEvent, Run
from ui.html import QUESTION_PREFIX_CHARS, fields_text, format_cost, shorten, table, td, tr, value_text
from ui.page import Page, readable
from ui.tabs.chat import ChatTab

TRACES_TAB = "traces"
RECENT_RUNS = 50
ANY = ("any", "")  # a run filter's choice that matches every value
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


def _plan_version(version: Mapping[str, Any], last: int) -> list[str]:
    """One plan version's line, then one line per step."""
    why = (
        f" after {escape(version['trigger'])} ({escape(version['severity'])}): {escape(version['reason'])}"
        if version["trigger"]
        else ""
    )
    current = " current" if version["version"] == last else ""
    parts = [
        f'<div class="plan-version{current}" data-version="{version["version"]}">Plan v{version["version"]} · '
        f"{escape(version['change'])} by {escape(version['made_by'])}{why}</div>"
    ]
    for step in version["steps"]:
        call = f"{step['tool']}({value_text(step['inputs'])})" if step["tool"] else "answer the user"
        note = f" — {step['note']}" if step.get("note") else ""
        parts.append(
            f'<div class="plan-step {escape(step["status"])}" data-step="{escape(step["id"])}" '
            f'data-status="{escape(step["status"])}">{escape(step["id"])} [{escape(step["status"])}] '
            f"{escape(call)}{escape(note)}</div>"
        )
    return parts


def plan_html(report: Mapping[str, Any]) -> str:
    """Planned vs executed, above a planned run's spans: every plan version, then the calls made."""
    if not report["versions"]:
        return ""
    last = report["versions"][-1]["version"]
    parts = [part for version in report["versions"] for part in _plan_version(version, last)]
    executed = ", ".join(f"{call['tool']} ({call['status']})" for call in report["executed"]) or "no tool calls"
    parts.append(f'<div class="plan-executed">Executed: {escape(executed)}</div>')
    parts.extend(f'<div class="plan-escalated">Escalated: {escape(reason)}</div>' for reason in report["escalated"])
    return f'<div class="plan"><b>Planned vs executed</b>{"".join(parts)}</div>'


def entity_changes_html(events: Sequence[EntityEvent]) -> str:
    """The shared entities a run's team changed, version by version: who, what, and the state after."""
    if not events:
        return ""
    rows = [
        tr(
            "",
            {"version": event.version},
            [
                td(f"{escape(event.kind)} {escape(event.key)}"),
                td(f"v{event.version}"),
                td(escape(event.actor)),
                td(escape(fields_text(event.patch))),
                td(escape(fields_text(event.after))),
            ],
        )
        for event in events
    ]
    changes = table("entity-changes", ["Entity", "Version", "Changed by", "Change", "After"], rows, "")
    return f'<div class="entities"><b>Shared state changes</b>{changes}</div>'


def _filter_choice(values: list[str], kept: str) -> gr.Dropdown:
    """A run filter's dropdown over the values present, showing ``kept``."""
    return gr.Dropdown(choices=[ANY, *values], value=kept)


@dataclass(frozen=True)
class TracesHandlers:
    """The Traces tab's events; ``?run=<id>`` (the chat's trace links) opens the page on a run."""

    page: Page

    async def _trace_view(self, run_id: str, operator: Operator) -> str:
        run_id = run_id.strip()
        if not run_id:
            return trace_html("", None, [])
        services = await self.page.services()
        runs = services.runs
        run = runs.get(run_id)
        if run is not None and not readable(operator).sees(run.tenant_id):
            # Another tenant's run reads exactly like a run that does not exist.
            return trace_html(run_id, None, [])
        trace = trace_html(run_id, run, trace_lines(runs.spans(run_id)))
        if run is None:
            return trace
        plan = plan_html(plan_report(services.plans.versions(run_id), runs.events(run_id)))
        changes = entity_changes_html(EntityStore(services.engine).changes_in(run.correlation_id or run.id))
        return plan + changes + trace

    async def recent_runs(
        self, status: str, route_: str, release: str, tenant: str, request: gr.Request
    ) -> gr.Dropdown:
        """The newest runs matching the filters (and that the operator may see); empty matches every run."""
        operator = self.page.reader(request)
        which = RunFilter(status or None, route_ or None, release or None, tenant or None)
        runs = find_runs((await self.page.services()).engine, which, limit=RECENT_RUNS)
        return gr.Dropdown(choices=[run_choice(run) for run in runs if operator.sees(run.tenant_id)])

    async def run_picker(
        self, status: str, route_: str, release: str, tenant: str, request: gr.Request
    ) -> tuple[gr.Dropdown, ...]:
        """The filters over the values runs have now, and the runs they match."""
        operator = self.page.reader(request)
        facets = run_facets((await self.page.services()).engine)
        tenants = [name for name in facets.tenants if operator.sees(name)]
        present = (facets.statuses, facets.routes, facets.releases, tenants)
        # A pick stays while some run still has that value; otherwise the filter goes back to "any".
        kept = [
            current if current in values else ""
            for current, values in zip((status, route_, release, tenant), present, strict=True)
        ]
        filters = [_filter_choice(values, pick) for values, pick in zip(present, kept, strict=True)]
        return (*filters, await self.recent_runs(kept[0], kept[1], kept[2], kept[3], request))

    async def show_run(self, run_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Switch to the Traces tab and draw ``run_id``."""
        if not run_id:
            return gr.skip(), gr.skip(), gr.skip()
        return gr.Tabs(selected=TRACES_TAB), run_id, await self._trace_view(run_id, self.page.operator(request))

    async def on_load(self, request: gr.Request) -> tuple[Any, ...]:
        """Open the run named by ``?run=<id>`` (the chat's trace links), and fill the filters and runs list."""
        picker = await self.run_picker("", "", "", "", request)
        run_id = request.query_params.get("run", "")
        return (*(await self.show_run(run_id, request)), *picker)

    async def pick_run(self, run_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        if not run_id:
            return gr.skip(), gr.skip()
        return run_id, await self._trace_view(run_id, self.page.operator(request))

    async def view_run(self, run_id: str, request: gr.Request) -> str:
        return await self._trace_view(run_id, self.page.operator(request))


def traces_tab(page: Page, demo: gr.Blocks, tabs: gr.Tabs, chat: ChatTab) -> None:
    """Lay out the Traces tab and wire its events, the chat's "Show trace" and the page's ``?run=`` link."""
    handlers = TracesHandlers(page)
    with gr.Tab("Traces", id=TRACES_TAB, elem_id="traces-tab") as tab:
        with gr.Row():
            status_filter = gr.Dropdown(label="Status", choices=[ANY], value="", elem_id="filter-status")
            route_filter = gr.Dropdown(label="Route", choices=[ANY], value="", elem_id="filter-route")
            release_filter = gr.Dropdown(label="Release", choices=[ANY], value="", elem_id="filter-release")
            tenant_filter = gr.Dropdown(label="Tenant", choices=[ANY], value="", elem_id="filter-tenant")
        with gr.Row():
            runs_list = gr.Dropdown(label="Recent runs", choices=[], elem_id="runs-list", scale=5)
            refresh_btn = gr.Button("Refresh", elem_id="refresh-runs", scale=1)
        with gr.Row():
            run_box = gr.Textbox(label="Run id", elem_id="run-id", scale=5)
            view_btn = gr.Button("Show", elem_id="view-run", scale=1)
        trace_view = gr.HTML(trace_html("", None, []), css_template=TRACE_CSS, elem_id="trace-view")
    chat.show_trace.click(handlers.show_run, chat.last_run, [tabs, run_box, trace_view])
    run_filters = [status_filter, route_filter, release_filter, tenant_filter]
    refresh_btn.click(handlers.run_picker, run_filters, [*run_filters, runs_list])
    tab.select(handlers.run_picker, run_filters, [*run_filters, runs_list])
    for run_filter in run_filters:
        run_filter.input(handlers.recent_runs, run_filters, runs_list)
    runs_list.change(handlers.pick_run, runs_list, [run_box, trace_view])
    run_box.submit(handlers.view_run, run_box, trace_view)
    view_btn.click(handlers.view_run, run_box, trace_view)
    demo.load(handlers.on_load, None, [tabs, run_box, trace_view, *run_filters, runs_list])
