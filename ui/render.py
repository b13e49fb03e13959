"""Pure rendering helpers for the UI: chat messages, the trace waterfall and the breakers as Markdown/HTML.

Nothing here touches Gradio or the database, so every function is testable on plain values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from app.traces import TraceLine
from memory.tables import Breaker, BreakerTransition, Run

QUESTION_PREFIX_CHARS = 48
FAILED_STATUSES = {"failed", "timed_out"}
DETAIL_LABELS = {
    "gen_ai.request.model": "model",
    "gen_ai.tool.name": "tool",
    "gen_ai.usage.input_tokens": "in",
    "gen_ai.usage.output_tokens": "out",
    "firebreak.cost_usd": "cost",
    "error.type": "error",
    "firebreak.status": "status",
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
.span-row.error .span-bar { background: var(--error-text-color, #b91c1c); }
.span-flag { color: var(--error-text-color, #b91c1c); font-weight: 700; margin-left: 6px; }
.span-details { color: var(--body-text-color-subdued); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
"""

STATE_COLOURS = {"closed": "#15803d", "half_open": "#b45309", "open": "#b91c1c"}
UNKNOWN_STATE_COLOUR = "#6b7280"

# Scoped to each breaker table by css_template, like TRACE_CSS.
BREAKER_CSS = """
.breaker-empty { color: var(--body-text-color-subdued); padding: 8px 0; }
table { width: 100%; border-collapse: collapse; font-size: 0.9em; }
th { text-align: left; color: var(--body-text-color-subdued); font-weight: 600; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--border-color-primary); }
td.mono { font-family: var(--font-mono); }
td.number { text-align: right; }
.breaker-badge { display: inline-block; padding: 1px 8px; border-radius: 9px; color: #fff; font-size: 0.85em;
                 font-weight: 600; white-space: nowrap; }
"""


def format_cost(cost_usd: float) -> str:
    """Dollars with enough places for per-token prices."""
    return f"${cost_usd:.6f}"


def trace_href(run_id: str) -> str:
    """A relative link that reopens the page on the Traces tab for ``run_id``."""
    return f"?run={quote(run_id)}"


def run_line(run_id: str, status: str, input_tokens: int, output_tokens: int, cost_usd: float) -> str:
    """The small Markdown line shown under an answer."""
    return (
        f"<sub>run `{run_id}` · {status} · tokens {input_tokens} in / {output_tokens} out · "
        f"{format_cost(cost_usd)} · [trace]({trace_href(run_id)})</sub>"
    )


def answer_message(answer: str | None, status: str, error: str | None, line: str) -> str:
    """The assistant's final message: the answer, or a readable failure, then the run line."""
    if status in FAILED_STATUSES:
        reason = error or "no answer was produced"
        body = f"**The run {status.replace('_', ' ')}:** {reason}"
    else:
        body = answer or "_(no answer)_"
    return f"{body}\n\n{line}"


def error_message(error: Exception) -> str:
    """A refused question (empty, too long, bad route): the message without a stack trace."""
    return f"**Could not run this question:** {error}"


def run_messages(run: Run) -> list[dict[str, Any]]:
    """A stored run as the user/assistant message pair the chatbot shows."""
    line = run_line(run.id, run.status, run.input_tokens, run.output_tokens, run.cost_usd)
    return [
        {"role": "user", "content": run.question},
        {"role": "assistant", "content": answer_message(run.answer, run.status, run.error, line)},
    ]


def run_choice(run: Run) -> tuple[str, str]:
    """A (label, run id) pair for the recent-runs dropdown."""
    question = " ".join(run.question.split())
    if len(question) > QUESTION_PREFIX_CHARS:
        question = question[: QUESTION_PREFIX_CHARS - 1] + "…"
    return f"{run.id[:8]} · {run.status} · {question}", run.id


def _details_text(details: dict[str, Any]) -> str:
    parts = []
    for key, label in DETAIL_LABELS.items():
        if key in details:
            value = details[key]
            shown = format_cost(float(value)) if key == "firebreak.cost_usd" else value
            parts.append(f"{label}={shown}")
    return " · ".join(parts)


def _span_row(line: TraceLine, total_ms: float) -> str:
    left = 100 * line.offset_ms / total_ms
    # A floor keeps sub-millisecond spans visible in the waterfall.
    width = max(100 * line.duration_ms / total_ms, 0.4)
    failed = line.status == "ERROR"
    flag = '<span class="span-flag">ERROR</span>' if failed else ""
    return (
        f'<div class="span-row{" error" if failed else ""}" data-name="{escape(line.name)}" '
        f'data-depth="{line.depth}" data-status="{escape(line.status)}" data-span-id="{escape(line.span_id)}">'
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
        f"{escape(run.route)} · tokens {run.input_tokens} in / {run.output_tokens} out · "
        f"{format_cost(run.cost_usd)} · thread <code>{escape(run.thread_id)}</code><br>"
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
    return f'{run_summary(run)}<div class="span-tree">{rows}</div>'


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
    if not rows:
        return '<div class="breaker-empty">No breaker has been used yet.</div>'
    body = "".join(_breaker_row(breaker, now) for breaker in rows)
    return (
        '<table class="breakers"><thead><tr><th>Backend</th><th>State</th><th>Next probe</th>'
        "<th>Trips</th><th>Last change (UTC)</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
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
    if not rows:
        return '<div class="breaker-empty">No transitions yet.</div>'
    newest_first = sorted(rows, key=lambda transition: transition.at, reverse=True)
    body = "".join(_transition_row(transition) for transition in newest_first)
    return (
        '<table class="breaker-transitions"><thead><tr><th>Time (UTC)</th><th>Backend</th>'
        f"<th>Change</th><th>Reason</th></tr></thead><tbody>{body}</tbody></table>"
    )
