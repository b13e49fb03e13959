"""The UI's pure rendering helpers, on plain values (no browser, no database)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from app.dashboards import ALL_RUNS, BudgetLine, DeadLetterCount, EscalationsWaiting, Figures
from app.gateway import Usage
from app.traces import TraceLine
from core.config import Caps
from core.errors import FirebreakError
from graph.agent import RunResult
from memory.tables import (
    Alert,
    Breaker,
    BreakerTransition,
    BudgetUsage,
    CacheEntry,
    DeadLetter,
    Escalation,
    OperatorAction,
    Run,
)
from ui.html import TABLE_CSS, duration_text, run_line
from ui.tabs import cache, chat, inbox, ops, queue, resilience, traces


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
    text = run_line("abc-123", "answered", 143, 13, 0.000169)
    assert "tokens 143 in / 13 out" in text
    assert "$0.000169" in text
    assert "[trace](?run=abc-123)" in text


def test_failed_runs_say_why_instead_of_showing_an_answer() -> None:
    message = chat.answer_message(None, "timed_out", "the run's wall clock ran out", "LINE")
    assert message.startswith("**The run timed out:** the run's wall clock ran out")
    assert message.endswith("LINE")
    assert chat.answer_message("Paris.", "answered", None, "LINE") == "Paris.\n\nLINE"


def test_stored_runs_become_a_question_and_answer_pair() -> None:
    user, assistant = chat.run_messages(make_run())
    assert user == {"role": "user", "content": "Where is order 42?"}
    assert assistant["role"] == "assistant"
    assert assistant["content"].startswith("A USB-C dock.")
    assert "?run=run-1" in assistant["content"]


def test_run_choices_shorten_long_questions() -> None:
    label, value = traces.run_choice(make_run(question="why " * 40))
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
    html = traces.trace_html("run-1", make_run(), lines)
    rows = re.findall(r'<div class="span-row[^"]*" data-name="([^"]+)" data-depth="(\d)"', html)
    assert rows == [("invoke_agent firebreak", "0"), ("chat scripted/demo", "1"), ("execute_tool sql_lookup", "1")]
    assert 'style="left:25.00%;width:50.00%"' in html
    assert "width:0.40%" in html  # a tiny span keeps a visible bar
    assert "model=scripted/demo · in=45 · cost=$0.000050" in html
    assert '<div class="span-row error" data-name="execute_tool sql_lookup"' in html
    assert "ERROR</span>" in html
    assert 'data-run-id="run-1"' in html


def test_trace_html_escapes_names_and_explains_missing_runs() -> None:
    assert "Pick a run" in traces.trace_html("", None, [])
    assert "No run with id <code>&lt;nope&gt;</code>" in traces.trace_html("<nope>", None, [])
    assert "No spans were recorded" in traces.trace_html("run-1", make_run(), [])
    html = traces.trace_html("run-1", make_run(question="<script>x</script>"), [line('a"<b>', 0, 0.0, 1.0)])
    assert "<script>" not in html
    assert 'data-name="a&quot;&lt;b&gt;"' in html


NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC).timestamp()


def breaker(name: str, state: str, **overrides: Any) -> Breaker:
    values: dict[str, Any] = {"name": name, "state": state, "version": 1, "updated_at": NOW - 60}
    values.update(overrides)
    return Breaker(**values)


def transition(name: str, from_state: str, to_state: str, at: float, reason: str = "why") -> BreakerTransition:
    return BreakerTransition(name=name, from_state=from_state, to_state=to_state, reason=reason, at=at)


def breaker_rows(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr class="breaker-row" data-name="([^"]+)" data-state="([^"]+)">', html)


def test_breakers_html_shows_each_state_with_its_own_colour() -> None:
    rows = [
        breaker("model:scripted/demo", "closed"),
        breaker("tool:sql_lookup", "open", trips=2, open_until=NOW + 29.2),
        breaker("tool:web_search", "half_open", trips=1),
    ]
    html = resilience.breakers_html(rows, NOW)
    assert breaker_rows(html) == [
        ("model:scripted/demo", "closed"),
        ("tool:sql_lookup", "open"),
        ("tool:web_search", "half_open"),
    ]
    badges = re.findall(r'class="breaker-badge" data-state="([^"]+)" style="background:(#[0-9a-f]{6})">([^<]+)<', html)
    assert [(state, label) for state, _, label in badges] == [
        ("closed", "closed"),
        ("open", "open"),
        ("half_open", "half open"),
    ]
    assert len({colour for _, colour, _ in badges}) == 3
    assert "<td>09:25:53</td>" in html  # last change, UTC
    assert '<td class="number">2</td>' in html  # trips


def test_breakers_html_counts_down_to_the_next_probe() -> None:
    def probe(row: Breaker) -> str:
        match = re.search(r'<td class="breaker-probe">([^<]*)</td>', resilience.breakers_html([row], NOW))
        assert match is not None
        return match.group(1)

    assert probe(breaker("tool:x", "open", open_until=NOW + 29.2)) == "in 30s"
    assert probe(breaker("tool:x", "open", open_until=NOW + 1)) == "in 1s"
    assert probe(breaker("tool:x", "open", open_until=NOW - 5)) == "now"  # cooldown over: the next call probes
    assert probe(breaker("tool:x", "half_open")) == "probing"
    assert probe(breaker("tool:x", "closed")) == "—"


def test_breakers_html_explains_an_empty_table_and_escapes_names() -> None:
    assert "No breaker has been used yet." in resilience.breakers_html([], NOW)
    html = resilience.breakers_html([breaker('tool:<b>"x"', "closed")], NOW)
    assert "<b>" not in html
    assert 'data-name="tool:&lt;b&gt;&quot;x&quot;"' in html


def test_transitions_html_lists_the_newest_change_first() -> None:
    rows = [
        transition("tool:sql_lookup", "open", "half_open", NOW - 30, "cooldown over: probing"),
        transition("tool:sql_lookup", "half_open", "closed", NOW - 29, "probe succeeded"),
        transition("tool:sql_lookup", "closed", "open", NOW - 60, "5 failures in 5 calls within 30s"),
    ]
    html = resilience.transitions_html(rows)
    found = re.findall(
        r'<tr class="transition-row" data-name="([^"]+)" data-from="([^"]+)" data-to="([^"]+)">'
        r"<td>([0-9:]+)</td>.*?<td>([^<]*)</td></tr>",
        html,
    )
    assert found == [
        ("tool:sql_lookup", "half_open", "closed", "09:26:24", "probe succeeded"),
        ("tool:sql_lookup", "open", "half_open", "09:26:23", "cooldown over: probing"),
        ("tool:sql_lookup", "closed", "open", "09:25:53", "5 failures in 5 calls within 30s"),
    ]
    assert "half open</span> → <span" in html


def test_transitions_html_explains_an_empty_log_and_escapes_reasons() -> None:
    assert "No transitions yet." in resilience.transitions_html([])
    html = resilience.transitions_html([transition("tool:x", "closed", "open", NOW, "<script>boom</script>")])
    assert "<script>" not in html
    assert "&lt;script&gt;boom&lt;/script&gt;" in html


def caps(tokens: float, tool_calls: float, cost_usd: float) -> Caps:
    return Caps(tokens=tokens, tool_calls=tool_calls, db_mutations=5, emails=1, cost_usd=cost_usd)


LIMITS: dict[str, object] = {
    "request": caps(8000, 10, 0.5),
    "session": caps(50000, 50, 5.0),
    "day": caps(500000, 500, 50.0),
}


def usage(scope: str, resource: str, used: float, reserved: float = 0.0, updated_at: float = NOW) -> BudgetUsage:
    return BudgetUsage(scope=scope, resource=resource, used=used, reserved=reserved, updated_at=updated_at)


def budget_rows(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr class="budget-row" data-scope="([^"]+)" data-resource="([^"]+)"', html)


def budget_row(html: str, scope: str, resource: str) -> str:
    match = re.search(
        rf'<tr class="budget-row" data-scope="{re.escape(scope)}" data-resource="{resource}".*?</tr>', html
    )
    assert match is not None
    return match.group(0)


def test_budgets_html_groups_tenant_days_then_sessions_then_requests() -> None:
    rows = [
        usage("request:run-1", "tokens", 120, updated_at=NOW),
        usage("session:thread-1", "tool_calls", 1, updated_at=NOW - 10),
        usage("day:acme:2025-03-13", "tokens", 900, updated_at=NOW - 86400),
        usage("day:acme:2025-03-14", "tool_calls", 1, updated_at=NOW),
        usage("day:acme:2025-03-14", "tokens", 120, updated_at=NOW),
        usage("session:thread-2", "tokens", 40, updated_at=NOW - 5),
    ]
    html = resilience.budgets_html(rows, LIMITS)
    assert re.findall(r'<tbody class="budget-scope" data-scope="([^"]+)">', html) == [
        "day:acme:2025-03-14",
        "day:acme:2025-03-13",
        "session:thread-2",
        "session:thread-1",
        "request:run-1",
    ]
    # Within a scope the resources keep the ledger's order: tokens before tool calls.
    assert budget_rows(html)[:2] == [("day:acme:2025-03-14", "tokens"), ("day:acme:2025-03-14", "tool_calls")]
    assert '<span class="budget-kind">tenant day</span>' in html


def test_budgets_html_shows_only_the_most_recently_updated_scopes() -> None:
    rows = [usage(f"request:run-{n}", "tokens", 1, updated_at=NOW + n) for n in range(resilience.RECENT_SCOPES + 5)]
    html = resilience.budgets_html(rows, LIMITS)
    shown = {scope for scope, _ in budget_rows(html)}
    assert len(shown) == resilience.RECENT_SCOPES
    assert "request:run-4" not in shown and "request:run-5" in shown
    assert f"The {resilience.RECENT_SCOPES} most recently updated of {resilience.RECENT_SCOPES + 5} scopes." in html


def test_a_cap_a_reviewer_raised_once_is_drawn_with_its_grant() -> None:
    row = usage("request:run-1", "tool_calls", 12)
    row.granted = 10
    html = resilience.budgets_html([row], LIMITS)
    assert '<td class="number budget-limit">20</td>' in budget_row(html, "request:run-1", "tool_calls")


def test_budgets_html_draws_used_plus_held_against_the_limit() -> None:
    html = resilience.budgets_html(
        [
            usage("request:run-1", "tool_calls", 2, reserved=1),
            usage("session:thread-1", "tokens", 41000, reserved=500),
        ],
        LIMITS,
    )
    row = budget_row(html, "request:run-1", "tool_calls")
    assert '<td class="number budget-used">2</td>' in row
    assert '<td class="number budget-held">1</td>' in row
    assert '<td class="number budget-limit">10</td>' in row
    assert 'style="width:30.0%"' in row and ">30.0%<" in row
    assert 'data-level="ok"' in row
    session = budget_row(html, "session:thread-1", "tokens")
    assert ">41,000<" in session and ">50,000<" in session and ">83.0%<" in session
    assert 'data-level="high"' in session
    # Past a cap (a cap lowered after the spending), the bar stops at its end and the percent says by how much.
    over_html = resilience.budgets_html([usage("request:run-2", "tool_calls", 12, reserved=3)], LIMITS)
    over = budget_row(over_html, "request:run-2", "tool_calls")
    assert 'style="width:100.0%"' in over and ">150.0%<" in over and 'data-level="full"' in over
    # A zero cap leaves no headroom at all, whatever was spent.
    no_emails = {"request": Caps(tokens=1, tool_calls=1, db_mutations=0, emails=0, cost_usd=1)}
    zero = budget_row(
        resilience.budgets_html([usage("request:run-3", "emails", 0)], no_emails), "request:run-3", "emails"
    )
    assert ">100.0%<" in zero and 'data-level="full"' in zero


def test_budgets_html_shows_cost_as_dollars_with_four_places() -> None:
    html = resilience.budgets_html([usage("request:run-1", "cost_usd", 0.000169, reserved=0.0125)], LIMITS)
    row = budget_row(html, "request:run-1", "cost_usd")
    assert '<td class="number budget-used">$0.0002</td>' in row
    assert '<td class="number budget-held">$0.0125</td>' in row
    assert '<td class="number budget-limit">$0.5000</td>' in row


def test_budgets_html_explains_an_empty_ledger_and_uncapped_rows() -> None:
    assert "Nothing has been spent yet." in resilience.budgets_html([], LIMITS)
    html = resilience.budgets_html([usage("request:run-1", "tokens", 5)], {})
    row = budget_row(html, "request:run-1", "tokens")
    assert '<td class="number budget-limit">—</td>' in row and "no cap" in row and "budget-bar" not in row


def test_budgets_html_escapes_scope_names() -> None:
    html = resilience.budgets_html([usage('session:<b>"x"</b>', "tokens", 1)], LIMITS)
    assert "<b>" not in html
    assert 'data-scope="session:&lt;b&gt;&quot;x&quot;&lt;/b&gt;"' in html
    assert "<code>session:&lt;b&gt;&quot;x&quot;&lt;/b&gt;</code>" in html


def dead_letter(**overrides: Any) -> DeadLetter:
    values: dict[str, Any] = {
        "id": 7,
        "run_id": "0f3c9a2e-run",
        "tenant_id": "acme",
        "reason": "scripted server error",
        "attempts": 3,
        "checkpoint_id": "1f0-checkpoint",
        "partial_state": {
            "next": ["decide"],
            "steps": 2,
            "messages": [
                {"type": "human", "content": "Where is order 42?", "tool_calls": []},
                {
                    "type": "ai",
                    "content": "",
                    "tool_calls": [{"name": "sql_lookup", "args": {"order_id": 42}, "id": "call-1"}],
                },
                {"type": "tool", "content": "USB-C dock, shipped", "tool_calls": []},
            ],
        },
        "tool_outputs": [
            {"seq": 2, "node": "act", "kind": "tool_result", "tool": "sql_lookup", "status": "success", "output": "ok"}
        ],
        "decisions": [
            {"seq": 1, "node": "decide", "kind": "decision", "model": "scripted/demo", "tool_calls": [{"n": 1}]},
            {"seq": 2, "node": "act", "kind": "tool_result", "tool": "sql_lookup", "status": "success"},
        ],
        "created_at": NOW,
    }
    values.update(overrides)
    return DeadLetter(**values)


def test_queue_counts_always_show_the_four_statuses_then_any_other() -> None:
    html = queue.queue_counts_html({"dead": 2, "queued": 5, "paused": 1})
    found = re.findall(r'<span class="queue-count" data-status="([^"]+)"><b>(\d+)</b>', html)
    assert found == [("queued", "5"), ("running", "0"), ("completed", "0"), ("dead", "2"), ("paused", "1")]
    assert "No run has been queued yet." in queue.queue_counts_html({})
    assert 'data-status="&lt;i&gt;"><b>1</b>&lt;i&gt;</span>' in queue.queue_counts_html({"<i>": 1})


def test_runs_html_lists_status_id_question_tokens_and_cost() -> None:
    html = queue.runs_html([make_run(), make_run(id="run-2", status="failed", question="<i>" + "long " * 30)])
    assert re.findall(r'<tr class="run-row" data-run="([^"]+)" data-status="([^"]+)">', html) == [
        ("run-1", "answered"),
        ("run-2", "failed"),
    ]
    assert '<a href="?run=run-1"><code>run-1</code></a>' in html
    assert "<td>Where is order 42?</td>" in html
    assert "143 in / 13 out" in html and "$0.000169" in html
    assert "<i>" not in html and "&lt;i&gt;long long" in html
    assert "…</td>" in html  # long questions are cut
    assert "No runs yet." in queue.runs_html([])


def test_dead_letters_html_lists_each_letter_with_an_escaped_truncated_reason() -> None:
    reason = "<script>alert(1)</script> " + "x" * 300
    html = queue.dead_letters_html([dead_letter(), dead_letter(id=6, run_id="run-b", reason=reason, attempts=4)])
    assert re.findall(r'<tr class="dead-letter-row" data-id="(\d+)" data-run="([^"]+)">', html) == [
        ("7", "0f3c9a2e-run"),
        ("6", "run-b"),
    ]
    assert "<td>2025-03-14 09:26:53</td>" in html  # UTC
    assert '<td class="number">4</td>' in html
    assert "<script>" not in html
    cells = re.findall(r'<td title="[^"]*">([^<]*)</td>', html)
    assert cells[0] == "scripted server error"
    assert cells[1].startswith("&lt;script&gt;alert(1)&lt;/script&gt; xxx") and cells[1].endswith("…")
    assert len(cells[1]) < 150
    assert "The dead-letter queue is empty." in queue.dead_letters_html([])


def test_dead_letter_choices_label_the_letter_and_carry_its_id() -> None:
    label, value = queue.dead_letter_choice(dead_letter(reason="boom " * 40))
    assert value == "7"
    assert label.startswith("#7 · 0f3c9a2e · boom boom")
    assert label.endswith("…")


def test_dead_letter_detail_shows_reason_checkpoint_messages_tools_and_decisions() -> None:
    html = queue.dead_letter_detail_html(dead_letter())
    assert '<div class="detail-text detail-reason">scripted server error</div>' in html
    assert "Checkpoint <code>1f0-checkpoint</code> · next node <code>decide</code> · steps 2" in html
    assert "3 attempts" in html and "<code>acme</code>" in html
    assert re.findall(r'<li class="detail-message" data-type="([^"]+)">', html) == ["human", "ai", "tool"]
    assert "calls <code>sql_lookup</code> <code>{&quot;order_id&quot;: 42}</code>" in html
    assert '<li class="detail-tool-output" data-tool="sql_lookup"><b>sql_lookup</b> · success' in html
    assert re.findall(r'<li class="detail-decision" data-kind="([^"]+)"><b>([^<]+)</b>', html) == [
        ("decision", "#1 decide · decision"),
        ("tool_result", "#2 act · tool_result"),
    ]
    assert "model=scripted/demo · tool_calls=[{&quot;n&quot;: 1}]" in html
    assert "requeued" not in html


def test_dead_letter_detail_explains_empty_parts_and_escapes_content() -> None:
    assert "Pick a dead letter" in queue.dead_letter_detail_html(None)
    html = queue.dead_letter_detail_html(
        dead_letter(
            reason="<b>bad</b>",
            checkpoint_id=None,
            partial_state={"messages": [{"type": "human", "content": "<script>x</script>"}]},
            tool_outputs=[],
            decisions=[],
            requeued_at=NOW + 60,
        )
    )
    assert "<b>bad</b>" not in html and "&lt;b&gt;bad&lt;/b&gt;" in html
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "Checkpoint <code>—</code> · next node <code>—</code> · steps —" in html
    assert "No tool outputs." in html and "No decisions recorded." in html
    assert "requeued 2025-03-14 09:27:53 UTC" in html
    assert "No messages." in queue.dead_letter_detail_html(dead_letter(partial_state={}))


def test_alerts_html_shows_time_kind_message_and_payload_escaped() -> None:
    alert = Alert(
        kind="dlq_spike", message="5 runs <dead>", payload={"dead_letters": 5, "window_s": 300.0}, created_at=NOW
    )
    html = queue.alerts_html([alert])
    assert '<tr class="alert-row" data-kind="dlq_spike">' in html
    assert "<td>2025-03-14 09:26:53</td>" in html
    assert "<td>5 runs &lt;dead&gt;</td>" in html
    assert "dead_letters=5 · window_s=300.0" in html
    assert "No alerts." in queue.alerts_html([])


def test_every_table_has_its_headers_and_one_shared_empty_message() -> None:
    html = queue.runs_html([make_run()])
    assert html.startswith(
        '<table class="runs"><thead><tr><th>Status</th><th>Run</th><th>Question</th><th>Tokens</th>'
        "<th>Cost</th></tr></thead><tbody><tr "
    )
    assert html.endswith("</tr></tbody></table>")
    empties = [
        resilience.breakers_html([], NOW),
        resilience.transitions_html([]),
        resilience.budgets_html([], LIMITS),
        queue.runs_html([]),
        queue.dead_letters_html([]),
        queue.alerts_html([]),
        inbox.escalations_html([], NOW),
        inbox.answered_html([]),
        cache.cache_stats_html([]),
        cache.cache_entries_html([]),
        queue.actions_html([]),
    ]
    assert all(re.fullmatch(r'<div class="empty">[^<]+</div>', html) for html in empties), empties
    assert ".empty {" in TABLE_CSS and ".empty {" in inbox.INBOX_CSS


def test_actions_html_shows_who_did_what_allowed_or_refused_and_escapes_it() -> None:
    refused = OperatorAction(
        operator="<ana>",
        role="reviewer",
        via="ui",
        action="canary.promote",
        target="active rollout",
        tenant_id=None,
        allowed=False,
        detail="",
        outcome="refused: <ana> is a reviewer; canary.promote needs the operator role",
        created_at=NOW,
    )

    html = queue.actions_html([refused])

    assert '<tr class="action-row" data-action="canary.promote" data-allowed="false">' in html
    assert "<td>&lt;ana&gt;</td>" in html and '<td class="mono">reviewer · ui</td>' in html
    assert '<td class="action-outcome">refused: &lt;ana&gt; is a reviewer; canary.promote needs' in html
    assert "<td>—</td>" in html  # no tenant, nothing given


def test_cache_entries_html_escapes_and_shortens_the_cached_question() -> None:
    text = "<b>Where</b> is my parcel? " + "x" * 200
    entry = CacheEntry(
        id=7,
        layer="llm_response",
        scope="s",
        tenant_id="acme",
        route="chat",
        text=text,
        hits=3,
        created_at=NOW,
        expires_at=NOW + 60,
        last_used_at=NOW,
    )

    html = cache.cache_entries_html([entry])

    assert 'data-id="7"' in html and "&lt;b&gt;Where&lt;/b&gt;" in html and "<b>Where" not in html
    assert html.count("x" * 200) == 1 and "x…</td>" in html  # the cell is shortened; the full text is its tooltip


ESCALATION_ID = "24e6f905-cacd-54e6-87e0-acbb24b19ec5"
ACTION = 'call update_order({"order_id": 2, "status": "cancelled"})'


def escalation(**overrides: Any) -> Escalation:
    """A reviewer's targeted question about a low-confidence write, opened a minute before NOW."""
    values: dict[str, Any] = {
        "id": ESCALATION_ID,
        "run_id": "7b4611af-540b-4147-8f53-191bb04ec622",
        "thread_id": "thread-1",
        "tenant_id": "acme",
        "type": "targeted",
        "trigger": "low_confidence",
        "audience": "reviewer",
        "reason": "confidence 0.40 is below the confirm threshold",
        "question": f"Is this the right thing to do: {ACTION}?",
        "options": ["approve", "reject"],
        "context": {
            "call_id": "call_1_0",
            "action": ACTION,
            "target": "update_order",
            "arguments": {"order_id": 2, "status": "cancelled"},
            "kind": "write",
            "score": 0.4,
        },
        "status": "open",
        "created_at": NOW - 60,
        "due_at": NOW + 840,
    }
    values.update(overrides)
    return Escalation(**values)


def confirmation(**overrides: Any) -> Escalation:
    values: dict[str, Any] = {
        "id": "14dc1f45-481c-5d18-89c8-1f93afc13868",
        "type": "confirmation",
        "trigger": "medium_confidence",
        "audience": "user",
        "reason": "confidence 0.70 is below 0.85",
        "question": f"Before I go on: shall I {ACTION}?",
        "options": ["yes", "no"],
    }
    values.update(overrides)
    return escalation(**values)


def handoff(**overrides: Any) -> Escalation:
    values: dict[str, Any] = {
        "id": "9c1d2e3f-0000-5000-8000-000000000001",
        "type": "immediate_transfer",
        "trigger": "human_requested",
        "reason": "the user asked for a person",
        "question": "The user asked to talk to a person. Take over and reply to them.",
        "options": [],
        "context": {
            "summary": "The user asks: 'I want to talk to a human'. Escalated because the user asked for a person.",
            "history": [
                {"role": "user", "text": "Where is order 42?"},
                {"role": "assistant", "text": " [calls sql_lookup({'order_id': 42})]"},
                {"role": "tool sql_lookup", "text": "<shipped>"},
                {"role": "user", "text": "I want to talk to a human"},
            ],
        },
    }
    values.update(overrides)
    return escalation(**values)


def budget_breach(**overrides: Any) -> Escalation:
    values: dict[str, Any] = {
        "id": "5db53a3e-e9c9-5f83-935f-135b4d7409c4",
        "trigger": "budget_breach",
        "reason": "the cost_usd cap of request:run-1 is 0.5 (0.4987 used or held; this call needs 0.0125)",
        "question": "This run reached its cost_usd cap for request run-1. Raise this cap once by 0.5, or stop?",
        "options": ["raise", "stop"],
        "context": {
            "breach": {
                "scope": "request:run-1",
                "resource": "cost_usd",
                "limit": 0.5,
                "used": 0.4987,
                "requested": 0.0125,
                "message": "...",
                "resume_to": "decide",
            },
            "raise_by": 0.5,
        },
    }
    values.update(overrides)
    return escalation(**values)


def test_duration_and_due_texts_read_like_a_person_would_say_them() -> None:
    assert [duration_text(s) for s in (0.42, 42, 14 * 60 + 59, 2 * 3600 + 5 * 60, 3 * 86400 + 4 * 3600)] == [
        "0.4s",
        "42s",
        "14 min",
        "2 h 5 min",
        "3 d 4 h",
    ]
    assert duration_text(-5) == "0.0s"
    assert inbox.due_text(NOW + 840, NOW) == "due in 14 min"
    assert inbox.due_text(NOW - 180, NOW) == "overdue 3 min"


def test_escalation_choices_label_the_escalation_and_carry_its_whole_id() -> None:
    label, value = inbox.escalation_choice(escalation())
    assert value == ESCALATION_ID
    assert label.startswith("24e6f905 · targeted · low_confidence · Is this the right thing to do: call")
    assert label.endswith("…")


def escalation_rows(html: str) -> list[tuple[str, ...]]:
    return re.findall(
        r'<tr class="escalation-row" data-id="([^"]+)" data-run="[^"]+" data-type="([^"]+)" '
        r'data-audience="([^"]+)" data-overdue="(true|false)" data-level="(\d+)">',
        html,
    )


def test_escalations_html_lists_the_open_ones_oldest_first_with_their_deadline() -> None:
    overdue = confirmation(created_at=NOW - 900, due_at=NOW - 300)
    passed_up = handoff(created_at=NOW - 30, level=1)
    html = inbox.escalations_html([escalation(), passed_up, overdue], NOW)
    assert escalation_rows(html) == [
        (overdue.id, "confirmation", "user", "true", "0"),
        (ESCALATION_ID, "targeted", "reviewer", "false", "0"),
        (passed_up.id, "immediate_transfer", "reviewer", "false", "1"),
    ]
    assert f'<td class="mono" title="{ESCALATION_ID}">24e6f905</td>' in html
    assert '<a href="?run=7b4611af-540b-4147-8f53-191bb04ec622" title="7b4611af-540b-4147-8f53-191bb04ec622">' in html
    assert "<code>7b4611af</code></a>" in html
    assert '<td class="escalation-due">overdue 5 min</td>' in html
    assert '<td class="escalation-due">due in 14 min</td>' in html
    assert '<td class="escalation-due">due in 14 min · passed up ×1</td>' in html
    assert "<td>low_confidence</td>" in html and "<td>reviewer</td>" in html
    assert "call update_order({&quot;order_id&quot;: 2, &quot;status&quot;: &quot;cancelled&quot;})?</td>" in html
    assert "No open escalations" in inbox.escalations_html([], NOW)


def test_escalations_html_escapes_and_shortens_questions() -> None:
    html = inbox.escalations_html([escalation(question="<script>x</script> " + "why " * 60)], NOW)
    assert "<script>" not in html
    cell = re.search(r'<td title="[^"]*">([^<]*)</td></tr>', html)
    assert cell is not None
    assert cell.group(1).startswith("&lt;script&gt;x&lt;/script&gt; why") and cell.group(1).endswith("…")


def test_answered_html_shows_the_answer_who_gave_it_and_how_long_it_took() -> None:
    approved = escalation(
        status="answered", answer="approve", answered_by="reviewer:ui", note="asked by <phone>", answered_at=NOW + 30
    )
    expired = confirmation(status="expired", answer="no", answered_by="timeout", answered_at=NOW + 540)
    html = inbox.answered_html([approved, expired])
    assert re.findall(r'<tr class="answered-row" data-id="([^"]+)" data-status="([^"]+)">', html) == [
        (expired.id, "expired"),  # most recently closed first
        (ESCALATION_ID, "answered"),
    ]
    assert '<td class="answered-answer" title="approve">approve</td>' in html
    assert '<td class="answered-by">reviewer:ui</td>' in html
    assert '<td class="number answered-latency">1 min</td>' in html  # opened NOW - 60, answered NOW + 30
    assert '<td class="number answered-latency">10 min</td>' in html
    assert "<td>asked by &lt;phone&gt;</td>" in html
    assert "<td>2025-03-14 09:27:23</td>" in html
    assert inbox.latency_text(escalation()) == "—"
    assert "No escalation has been answered yet." in inbox.answered_html([])


def test_escalation_detail_shows_a_gated_action_with_its_score_and_options() -> None:
    html = inbox.escalation_detail_html(escalation(), NOW)
    assert f'<div class="escalation-detail" data-id="{ESCALATION_ID}"' in html and 'data-status="open"' in html
    assert (
        "Escalation <b>24e6f905</b> · targeted · trigger low_confidence · for the reviewer · open · due in 14 min"
        in html
    )
    assert '<a href="?run=7b4611af-540b-4147-8f53-191bb04ec622"><code>' in html
    assert "thread <code>thread-1</code> · tenant <code>acme</code> · opened 2025-03-14 09:25:53 UTC" in html
    assert '<div class="escalation-reason">confidence 0.40 is below the confirm threshold</div>' in html
    assert '<div class="escalation-question">Is this the right thing to do: call update_order(' in html
    assert re.findall(r'<li data-option="([^"]+)">', html) == ["approve", "reject"]
    assert '<div class="escalation-action" data-target="update_order" data-kind="write">' in html
    assert (
        "Action: <code>call update_order({&quot;order_id&quot;: 2, &quot;status&quot;: &quot;cancelled&quot;})" in html
    )
    assert (
        'Confidence score: <span class="escalation-score">0.40</span> · write action on <code>update_order</code>'
        in html
    )
    assert "escalation-other" not in html  # every gate key is shown in the action's format
    assert "<h4>Answer</h4>" not in html


def test_escalation_detail_shows_a_handoff_summary_and_its_history_as_a_transcript() -> None:
    html = inbox.escalation_detail_html(handoff(level=1), NOW)
    assert "· passed up ×1" in html
    assert "No options: the answer is free text." in html
    assert '<div class="escalation-summary">The user asks: &#x27;I want to talk to a human&#x27;.' in html
    assert re.findall(
        r'<li class="history-line" data-role="([^"]+)"><b>[^<]+</b><span class="detail-text">([^<]*)', html
    ) == [
        ("user", "Where is order 42?"),
        ("assistant", " [calls sql_lookup({&#x27;order_id&#x27;: 42})]"),
        ("tool sql_lookup", "&lt;shipped&gt;"),
        ("user", "I want to talk to a human"),
    ]
    assert "No messages." in inbox.escalation_context_html(handoff(context={"summary": "s", "history": []}))


def test_escalation_detail_shows_a_budget_breach_cap_use_request_and_raise() -> None:
    html = inbox.escalation_context_html(budget_breach())
    facts = dict(re.findall(r'<dt>([^<]+)</dt><dd class="fact-[a-z-]+">([^<]*)</dd>', html))
    assert facts == {
        "Cap": "cost_usd of request:run-1: $0.5000",
        "Used or held": "$0.4987",
        "This call needs": "$0.0125",
        "Raise once by": "$0.5000",
    }
    tokens = budget_breach(context={"breach": {"scope": "day:acme:2025-03-14", "resource": "tokens", "limit": 500000}})
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>([^<]*)</dd>", inbox.escalation_context_html(tokens)))
    assert facts["Cap"] == "tokens of day:acme:2025-03-14: 500,000"
    assert facts["Used or held"] == facts["Raise once by"] == "—"


def test_escalation_context_shows_unknown_keys_as_fields_and_says_when_there_is_none() -> None:
    html = inbox.escalation_context_html(escalation(context={"sentiment": -0.8, "words": ["<angry>"]}))
    assert (
        html == '<div class="detail-fields escalation-other">sentiment=-0.8 · words=[&quot;&lt;angry&gt;&quot;]</div>'
    )
    assert "No context." in inbox.escalation_context_html(escalation(context={}))


def test_escalation_detail_of_a_closed_one_shows_its_answer_and_escapes_everything() -> None:
    assert "Pick an escalation" in inbox.escalation_detail_html(None, NOW)
    html = inbox.escalation_detail_html(
        escalation(
            status="answered",
            answer="<b>approve</b>",
            answered_by="reviewer:ui",
            note="<i>ok</i>",
            answered_at=NOW + 30,
            reason="<script>r</script>",
            pauses_run=False,
        ),
        NOW,
    )
    assert "due in" not in html and "· the run goes on meanwhile" in html
    assert "<b>approve</b>" not in html and "<script>" not in html and "<i>ok</i>" not in html
    assert (
        '<div class="escalation-answer"><b>&lt;b&gt;approve&lt;/b&gt;</b> · answered by reviewer:ui at '
        "2025-03-14 09:27:23 UTC · after 1 min</div>"
    ) in html
    assert '<div class="escalation-note">Note: &lt;i&gt;ok&lt;/i&gt;</div>' in html


def test_a_waiting_run_asks_the_user_or_says_which_reviewer_it_waits_for() -> None:
    assert chat.waiting_message([confirmation()]) == (
        f"**Waiting for your answer:** Before I go on: shall I {ACTION}?\n\nReply **yes** or **no**."
    )
    assert chat.waiting_message([escalation()]) == (
        "**Waiting for a reviewer** (targeted, confidence 0.40 is below the confirm threshold) — the reply will "
        f"appear here.\n\n> Is this the right thing to do: {ACTION}?"
    )
    both = chat.waiting_message([confirmation(), handoff(question="Take\nover.")])
    assert "Reply **yes** or **no**.\n\n**Waiting for a reviewer** (immediate_transfer, the user" in both
    assert both.endswith("> Take over.")
    assert "Reply **raise**, **stop** or **wait**." in chat.waiting_message(
        [confirmation(options=["raise", "stop", "wait"])]
    )
    assert chat.waiting_message([]) == "**Waiting for a person** — the reply will appear here."


def test_a_handed_off_answer_is_the_reply_of_the_person_who_took_over() -> None:
    assert chat.answer_message("I refunded it.", "handed_off", None, "LINE") == (
        "**A person replied:** I refunded it.\n\nLINE"
    )


def test_a_reopened_waiting_run_ends_with_what_it_waits_for() -> None:
    user, waiting = chat.run_messages(make_run(status="waiting", answer=None), [escalation()])
    assert user == {"role": "user", "content": "Where is order 42?"}
    assert waiting["content"].startswith("**Waiting for a reviewer** (targeted, confidence 0.40")
    assert "run `run-1` · waiting" in waiting["content"]


def test_a_reopened_run_shows_each_answered_escalation_before_its_answer() -> None:
    confirmed = confirmation(status="answered", answer="yes", answered_by="user:local", created_at=NOW - 90)
    approved = escalation(status="answered", answer="approve", answered_by="reviewer:ui", note="fine")
    expired = escalation(id="e2", status="expired", answer="reject", answered_by="timeout", created_at=NOW)
    replied = handoff(status="answered", answer="Hello, I am Ada.", answered_by="reviewer:ui")
    messages = chat.run_messages(make_run(answer="Done."), [expired, approved, replied, confirmed])
    assert [(m["role"], m["content"].split("\n\n")) for m in messages] == [
        ("user", ["Where is order 42?"]),
        ("assistant", [f"Before I go on: shall I {ACTION}?"]),
        ("user", ["yes"]),
        (
            "assistant",
            [
                f"Is this the right thing to do: {ACTION}?",
                "— a reviewer (reviewer:ui) answered **approve** — note: fine",
            ],
        ),
        (
            "assistant",
            [f"Is this the right thing to do: {ACTION}?", "— nobody answered in time (taken as **reject**)."],
        ),
        ("assistant", ["Done.", run_line("run-1", "answered", 143, 13, 0.000169)]),
    ]  # the handoff's reply is the run's answer, so it is not shown twice


def result(status: str, answer: str | None = None, **overrides: Any) -> RunResult:
    return RunResult("run-1", "thread-1", status, answer, "trace", Usage(200, 17, 0.000247), **overrides)


def test_answer_outcomes_say_what_the_resumed_run_did() -> None:
    row = escalation()
    answered = inbox.answer_outcome(row, "approve", result("answered", "Order 2\nis cancelled."))
    assert answered.startswith(
        "Answered `24e6f905` with **approve**. The run resumed and ended **answered**:\n\n> Order 2 is cancelled."
    )
    assert answered.endswith(run_line("run-1", "answered", 200, 17, 0.000247))
    again = inbox.answer_outcome(row, "raise", result("waiting", escalations=[{"question": "Shall I send it?"}]))
    assert "The run resumed and now waits again: Shall I send it?" in again
    failed = inbox.answer_outcome(row, "approve", result("timed_out", error="the run's wall clock ran out"))
    assert "The run resumed and timed out: the run's wall clock ran out" in failed
    assert inbox.answer_outcome(row, "approve", None) == (
        "Answered `24e6f905` with **approve**. The run waits for other answers."
    )
    note = inbox.answer_outcome(escalation(type="collaborative", pauses_run=False), "calm them down", None)
    assert note.endswith("The run did not stop for this; the agent reads it on its next turn.")


def test_a_refused_answer_reads_as_a_message() -> None:
    error = FirebreakError("escalation 24e6f905 is already answered by reviewer:ui ('approve')")
    assert inbox.answer_error(error) == (
        "**Not answered:** escalation 24e6f905 is already answered by reviewer:ui ('approve')"
    )


def test_entity_changes_show_each_version_who_made_it_and_the_state_after() -> None:
    from memory.tables import EntityEvent

    def event(version: int, actor: str, patch: dict[str, Any], after: dict[str, Any]) -> EntityEvent:
        return EntityEvent(
            event_id=f"e{version}",
            tenant_id="t",
            kind="ticket",
            key="T-1",
            version=version,
            type="changed",
            actor=actor,
            patch=patch,
            after=after,
            created_at=0.0,
        )

    html = traces.entity_changes_html(
        [
            event(3, "writer (run 1a2b)", {"draft": "<b>Hi</b>"}, {"draft": "<b>Hi</b>"}),
            event(4, "reviewer", {"status": "ok"}, {}),
        ]
    )

    rows = re.findall(r'<tr data-version="(\d+)"><td>ticket T-1</td><td>v\d+</td><td>([^<]+)</td>', html)
    assert rows == [("3", "writer (run 1a2b)"), ("4", "reviewer")]
    assert "draft=&lt;b&gt;Hi&lt;/b&gt;" in html and "<b>Hi</b>" not in html
    assert traces.entity_changes_html([]) == ""


def figures(group: str, **overrides: Any) -> Figures:
    values: dict[str, Any] = {
        "group": group,
        "start": None,
        "runs": 3,
        "finished": 3,
        "errors": 1,
        "error_rate": 1 / 3,
        "cached": 1,
        "cache_hit_rate": 1 / 3,
        "latency_p50_s": 0.25,
        "latency_p95_s": 12.0,
        "cost_usd": 0.000169,
        "input_tokens": 143,
        "output_tokens": 13,
    }
    values.update(overrides)
    return Figures(**values)


def test_span_kinds_name_the_part_of_the_agent_each_span_belongs_to() -> None:
    names = {
        "invoke_agent firebreak": "agent",
        "chat scripted/demo": "model",
        "execute_tool sql_lookup": "tool",
        "node screen_input": "guardrail",
        "node screen_actions": "guardrail",
        "node confidence_gate": "gate",
        "node screen_triggers": "gate",
        "node cache_lookup": "cache",
        "node plan": "plan",
        "node replan": "plan",
        "node decide": "node",
        "something else": "other",
    }
    assert {name: traces.span_kind(name) for name in names} == names


def test_the_waterfall_marks_each_span_with_its_kind_and_counts_the_kinds_in_a_legend() -> None:
    lines = [
        line("invoke_agent firebreak", 0, 0.0, 10.0),
        line("node cache_lookup", 1, 1.0, 1.0),
        line("chat scripted/demo", 1, 2.0, 3.0),
        line("chat scripted/demo", 1, 6.0, 3.0),
    ]
    html = traces.trace_html("run-1", make_run(), lines)

    assert re.findall(r'data-kind="(\w+)">', html.split('<div class="span-tree">')[1]) == [
        "agent",
        "cache",
        "model",
        "model",
    ]
    legend = re.findall(r'<span class="span-kind" data-kind="(\w+)">([^<]+)</span>', html)
    assert legend == [("agent", "agent ×1"), ("model", "model ×2"), ("cache", "cache ×1")]


def test_ops_figures_show_each_group_then_every_run() -> None:
    html = ops.ops_figures_html([figures("scripted/demo"), figures(ALL_RUNS, runs=4)], "Route")

    assert re.findall(r'<tr class="ops-row" data-group="([^"]+)"', html) == ["scripted/demo", ALL_RUNS]
    assert "<th>Route</th>" in html
    row = html.split("</tr>")[1]
    assert '<td class="number ops-runs">3</td>' in row
    assert '<td class="number ops-error-rate">33.3%</td>' in row
    assert '<td class="number ops-p50">0.2s</td>' in row and '<td class="number ops-p95">12s</td>' in row
    assert '<td class="number ops-cost">$0.000169</td>' in row
    assert '<td class="number ops-cache-hits">1 (33.3%)</td>' in row


def test_ops_figures_without_finished_runs_show_dashes_and_an_empty_window_says_so() -> None:
    html = ops.ops_figures_html(
        [figures("x", finished=0, error_rate=None, latency_p50_s=None, latency_p95_s=None)], "Release"
    )
    assert '<td class="number ops-error-rate">—</td>' in html and '<td class="number ops-p95">—</td>' in html
    assert "No runs in this window." in ops.ops_figures_html([], "Route")


def test_breaker_states_count_each_state_and_name_the_breakers_not_closed() -> None:
    html = ops.breaker_states_html({"closed": 2, "open": 1}, ["model:<x>"])

    assert re.findall(r'data-name="(\w+)"><b>(\d+)</b>', html) == [("closed", "2"), ("open", "1")]
    assert "not closed: <code>model:&lt;x&gt;</code>" in html
    assert "No breaker has been used yet." in ops.breaker_states_html({}, [])


def test_budget_lines_draw_used_plus_held_against_the_limit() -> None:
    lines = [BudgetLine("day:acme:2025-03-14", "tokens", 700.0, 150.0, 0.0, 1000.0)]
    html = ops.budget_lines_html(lines)

    assert 'data-scope="day:acme:2025-03-14" data-resource="tokens" data-level="high"' in html
    assert '<td class="number budget-used">850</td>' in html
    assert "width:85.0%" in html
    assert "No budget was spent" in ops.budget_lines_html([])


def test_escalations_waiting_count_them_by_type_with_the_oldest_wait() -> None:
    html = ops.escalations_waiting_html(EscalationsWaiting(3, {"confirmation": 1, "targeted": 2}, 840.0))

    assert 'data-open="3"' in html
    assert re.findall(r'data-name="(\w+)"><b>(\d+)</b>', html) == [
        ("open", "3"),
        ("confirmation", "1"),
        ("targeted", "2"),
    ]
    assert "oldest waits 14 min" in html
    assert "Nothing waits for a person." in ops.escalations_waiting_html(EscalationsWaiting(0, {}, None))


def test_ops_frames_put_each_group_and_bucket_on_one_row_in_utc() -> None:
    start = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    rows = [figures("scripted/demo", start=start), figures("chat", start=start, latency_p95_s=None)]

    frame = ops.ops_frame(rows)
    assert list(frame["group"]) == ["scripted/demo", "chat"]
    assert frame[ops.TIME_COLUMN][0] == datetime(2025, 3, 14, 9, 0)
    assert frame["error rate %"][0] == 33.3
    assert list(frame["tokens"]) == [156, 156]
    latency = ops.latency_frame(rows)
    assert list(latency["line"]) == ["scripted/demo p50", "scripted/demo p95", "chat p50"]
    dead = ops.dead_letter_frame([DeadLetterCount(start, 2)])
    assert dead.to_dict("records") == [{ops.TIME_COLUMN: datetime(2025, 3, 14, 9, 0), "dead letters": 2}]
