"""The UI's pure rendering helpers, on plain values (no browser, no database)."""

from __future__ import annotations

import re
from typing import Any

from app.traces import TraceLine
from memory.tables import Run
from ui import render


def make_run(**overrides: Any) -> Run:
    values: dict[str, Any] = {
        "id": "run-1",
        "thread_id": "thread-1",
        "tenant_id": "default",
        "user_id": "local",
        "route": "scripted/demo",
        "status": "answered",
        "question": "Where is order 42?",
        "answer": "A USB-C dock.",
        "input_tokens": 143,
        "output_tokens": 13,
        "cost_usd": 0.000169,
    }
    values.update(overrides)
    return Run(**values)


def line(name: str, depth: int, offset_ms: float, duration_ms: float, **details: object) -> TraceLine:
    status = "ERROR" if "error.type" in details else "UNSET"
    return TraceLine(
        depth=depth,
        name=name,
        duration_ms=duration_ms,
        offset_ms=offset_ms,
        status=status,
        details=dict(details),
        span_id=f"span-{name}",
    )


def test_run_line_shows_tokens_cost_and_a_trace_link() -> None:
    text = render.run_line("abc-123", "answered", 143, 13, 0.000169)
    assert "tokens 143 in / 13 out" in text
    assert "$0.000169" in text
    assert "[trace](?run=abc-123)" in text


def test_failed_runs_say_why_instead_of_showing_an_answer() -> None:
    message = render.answer_message(None, "timed_out", "the run's wall clock ran out", "LINE")
    assert message.startswith("**The run timed out:** the run's wall clock ran out")
    assert message.endswith("LINE")
    assert render.answer_message("Paris.", "answered", None, "LINE") == "Paris.\n\nLINE"


def test_stored_runs_become_a_question_and_answer_pair() -> None:
    user, assistant = render.run_messages(make_run())
    assert user == {"role": "user", "content": "Where is order 42?"}
    assert assistant["role"] == "assistant"
    assert assistant["content"].startswith("A USB-C dock.")
    assert "?run=run-1" in assistant["content"]


def test_run_choices_shorten_long_questions() -> None:
    label, value = render.run_choice(make_run(question="why " * 40))
    assert value == "run-1"
    assert label.startswith("run-1 · answered · why why")
    assert label.endswith("…")
    assert len(label) < 80


def test_trace_html_draws_a_waterfall_relative_to_the_root() -> None:
    lines = [
        line("invoke_agent firebreak", 0, 0.0, 200.0),
        line(
            "chat scripted/demo",
            1,
            50.0,
            100.0,
            **{"gen_ai.request.model": "scripted/demo", "gen_ai.usage.input_tokens": 45, "firebreak.cost_usd": 0.00005},
        ),
        line("execute_tool sql_lookup", 1, 150.0, 0.01, **{"gen_ai.tool.name": "sql_lookup", "error.type": "timeout"}),
    ]
    html = render.trace_html("run-1", make_run(), lines)
    rows = re.findall(r'<div class="span-row[^"]*" data-name="([^"]+)" data-depth="(\d)"', html)
    assert rows == [("invoke_agent firebreak", "0"), ("chat scripted/demo", "1"), ("execute_tool sql_lookup", "1")]
    assert 'style="left:25.00%;width:50.00%"' in html
    assert "width:0.40%" in html  # a tiny span keeps a visible bar
    assert "model=scripted/demo · in=45 · cost=$0.000050" in html
    assert '<div class="span-row error" data-name="execute_tool sql_lookup"' in html
    assert "ERROR</span>" in html
    assert 'data-run-id="run-1"' in html


def test_trace_html_escapes_names_and_explains_missing_runs() -> None:
    assert "Pick a run" in render.trace_html("", None, [])
    assert "No run with id <code>&lt;nope&gt;</code>" in render.trace_html("<nope>", None, [])
    assert "No spans were recorded" in render.trace_html("run-1", make_run(), [])
    html = render.trace_html("run-1", make_run(question="<script>x</script>"), [line('a"<b>', 0, 0.0, 1.0)])
    assert "<script>" not in html
    assert 'data-name="a&quot;&lt;b&gt;"' in html
