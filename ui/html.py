"""The UI's one set of HTML helpers every tab draws with: tables, badges, budget bars, the shared CSS, escaping,
and how times, durations, costs and percents read.

Nothing here touches Gradio or the database, so every function is testable on plain values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from core.status import RunStatus

QUESTION_PREFIX_CHARS = 48
REASON_PREFIX_CHARS = 120
# The statuses a run's message reads as "the run failed / timed out" (an error on the way, not a deliberate stop).
FAILED_STATUSES = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT})

STATE_COLOURS = {"closed": "#15803d", "half_open": "#b45309", "open": "#b91c1c"}
UNKNOWN_STATE_COLOUR = "#6b7280"
BUDGET_HIGH_PERCENT = 80.0

# The tables' shared rules; each component's css_template scopes them, so they cannot leak into the page.
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

# A detail's preformatted text and its subdued key=value fields (a dead letter's, an escalation's).
DETAIL_CSS = """.detail-text { white-space: pre-wrap; font-family: var(--font-mono); font-size: 0.85em; }
.detail-fields { color: var(--body-text-color-subdued); font-size: 0.85em; }
"""

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

# The Runs & DLQ tab's counts, tables and dead-letter detail; the Cache and Team tabs' tables use it too.
QUEUE_CSS = (
    TABLE_CSS
    + """
.queue-counts { display: flex; gap: 24px; flex-wrap: wrap; }
.queue-count b { font-size: 1.4em; margin-right: 4px; }
.queue-count[data-status="dead"] b { color: var(--error-text-color, #b91c1c); }
.dead-letter-detail h4 { margin: 12px 0 4px; }
.dead-letter-detail ol, .dead-letter-detail ul { margin: 0; padding-left: 24px; }
.dead-letter-detail li { margin: 2px 0; }
"""
    + DETAIL_CSS
)


def empty_html(message: str) -> str:
    """A subdued line saying why a view is empty (``message`` is escaped)."""
    return f'<div class="empty">{escape(message)}</div>'


def table(name: str, headers: Sequence[str], rows: Sequence[str], empty: str) -> str:
    """A table of pre-rendered ``<tr>`` rows under plain headers, or ``empty`` (escaped) when there are none."""
    if not rows:
        return empty_html(empty)
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    return f'<table class="{escape(name)}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def tr(name: str, data: Mapping[str, object], cells: Iterable[str]) -> str:
    """A ``<tr>`` of class ``name`` (none when empty) with escaped ``data-*`` attributes, around ``cells``.

    An attribute whose value is ``True`` is written bare; ``False`` or ``None`` leaves it out.
    """
    attrs = f' class="{name}"' if name else ""
    for key, value in data.items():
        if value is True:
            attrs += f" data-{key}"
        elif value is not None and value is not False:
            attrs += f' data-{key}="{escape(str(value))}"'
    return f"<tr{attrs}>{''.join(cells)}</tr>"


def td(content: object, name: str = "", *, title: str | None = None) -> str:
    """A ``<td>`` around ``content`` (HTML, written as given), with an optional class and an escaped tooltip."""
    attrs = f' class="{name}"' if name else ""
    if title is not None:
        attrs += f' title="{escape(title)}"'
    return f"<td{attrs}>{content}</td>"


def text_td(text: str, name: str = "", *, limit: int | None = None) -> str:
    """A cell of plain ``text``, escaped; cut to ``limit`` characters with the whole text as a tooltip."""
    if limit is None:
        return td(escape(text), name)
    return td(escape(shorten(text, limit)), name, title=text)


def state_badge(state: str) -> str:
    """A breaker state as a coloured badge."""
    colour = STATE_COLOURS.get(state, UNKNOWN_STATE_COLOUR)
    label = escape(state.replace("_", " "))
    return f'<span class="breaker-badge" data-state="{escape(state)}" style="background:{colour}">{label}</span>'


def budget_amount(resource: str, value: float) -> str:
    """Dollars with 4 places for cost; whole counts with separators; anything fractional with 2 places."""
    if resource == "cost_usd":
        return f"${value:.4f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def budget_level(percent: float) -> str:
    """full, high or ok: how close a budget is to its cap (its bar's colour)."""
    return "full" if percent >= 100 else "high" if percent >= BUDGET_HIGH_PERCENT else "ok"


def usage_bar(percent: float) -> str:
    """A bar of ``percent`` (full beyond 100) and the number."""
    return (
        f'<span class="budget-track"><span class="budget-bar" style="width:{min(percent, 100.0):.1f}%"></span>'
        f'</span><span class="budget-percent">{percent:.1f}%</span>'
    )


def format_cost(cost_usd: float) -> str:
    """Dollars with enough places for per-token prices."""
    return f"${cost_usd:.6f}"


def percent_text(rate: float | None) -> str:
    """A rate (0–1) as a percent with one place; "—" when there was nothing to count."""
    return "—" if rate is None else f"{100 * rate:.1f}%"


def clock_time(at: float) -> str:
    """Epoch seconds as a UTC wall-clock time, HH:MM:SS."""
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")


def date_time(at: float) -> str:
    """Epoch seconds as a UTC date and time, for rows that may be days old."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


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


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis when longer."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def value_text(value: Any) -> str:
    """A string as it is; anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def fields_text(values: Mapping[str, Any], skip: Sequence[str] = ()) -> str:
    """``key=value`` pairs on one line; nested values as JSON."""
    return " · ".join(f"{key}={value_text(value)}" for key, value in values.items() if key not in skip)


def trace_href(run_id: str) -> str:
    """A relative link that reopens the page on the Traces tab for ``run_id``."""
    return f"?run={quote(run_id)}"


def run_link(run_id: str, *, short: bool = False) -> str:
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
