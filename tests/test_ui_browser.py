"""The UI in a real browser: a scripted run streams into the chat, its trace opens in the Traces tab,
and the Resilience tab shows the breakers its model and tool calls went through and the budget it spent; a
run a real worker dead-lettered shows in the Runs & DLQ tab, with its detail, and is requeued from there.

The production mutation behind the confidence gate: a scripted model proposes ``update_order`` and grades
it low, so the chat says the run waits for a reviewer; the reviewer approves (or rejects) it in the Inbox
tab and the run resumes there: the order changes exactly once (or never). A medium grade asks the user in
the chat instead, and their "yes" runs it once. The Ops tab plots real runs; the Canary tab shows a release
that real runs got rolled back, and an operator rolls one back by hand.

Nothing of Firebreak is mocked: the UI serves a real Agent on a temporary SQLite database, and the
scripted model calls the real ``sql_lookup`` and ``update_order`` tools against the seeded demo orders.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import urljoin

import pytest
from conftest import ScriptWriter, approving_team, order_2, run, unavailable
from playwright.sync_api import Browser, Page, expect
from test_canary import canary_settings, traffic

from app.operators import hash_token
from app.services import build_services, prepare_database
from core.config import Settings, load_settings
from evals.browser import chromium, chromium_path, free_port
from evals.browser import serve as serve_ui
from evals.state import PRICING_DOWN, seed_replan_script
from graph.agent import Agent
from graph.worker import Worker, submit
from memory.queue import QueueStore
from memory.shared_state import EntityStore
from ui.app import AgentSlot

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
PRICES = {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002, "context_window": 8000}
EXPECTED_SPANS = ("invoke_agent firebreak", "chat scripted/demo", "execute_tool sql_lookup")
EXPECTED_BREAKERS = ("model:scripted/demo", "tool:sql_lookup")
# Every model call fails and is not retried; each run attempt follows the last at once, so a run dies fast.
FAST_DEATH = {"retries": {"attempts": 1}, "queue": {"retry_base_delay_s": 0.0, "dlq_alert_threshold": 1}}


def ui_settings(make_settings: Callable[..., Settings], database_url: str, script: str, **overrides: Any) -> Settings:
    return make_settings(
        database_url,
        script=script,
        ui={"host": "127.0.0.1", "port": free_port()},
        models={"scripted/demo": PRICES},
        **overrides,
    )


def serve(settings: Settings, slot: AgentSlot | None = None) -> AbstractContextManager[str]:
    """The UI on ``settings.ui``, answering with the scripted route; yields its URL."""
    return serve_ui(settings, route="scripted/demo", slot=slot)


@pytest.fixture
def chat_ui(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> Iterator[tuple[str, Settings]]:
    """The UI on an empty database, answering with one ``sql_lookup`` call: (url, its settings)."""
    script = write_script(
        {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 42}}]},
        # The expectation proves the real tool's result reached the model.
        {"expect": "USB-C dock", "text": "Order 42 is a USB-C dock and it has shipped."},
    )
    settings = ui_settings(make_settings, sqlite_url, script)
    with serve(settings) as url:
        yield url, settings


async def dead_letter_runs(settings: Settings, *questions: str) -> list[str]:
    """Submit the questions and let a real worker try them until each is dead-lettered; returns their run ids."""
    agent = await Agent.create(settings)
    try:
        store = QueueStore(agent.services.engine)
        jobs = [submit(store, settings, question, route="scripted/demo") for question in questions]
        await Worker(agent, store).run_until_idle()
    finally:
        await agent.close()
    assert store.counts() == {"dead": len(jobs)}
    return [job.id for job in jobs]


@pytest.fixture
def dead_run_ui(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> Iterator[tuple[str, list[str]]]:
    """The UI on a database where two runs were dead-lettered before the page opened: (url, run ids)."""
    script = write_script({"repeat": True, "error": "server"}, name="failing.jsonl")
    settings = ui_settings(make_settings, sqlite_url, script, **FAST_DEATH)
    run_ids = run(dead_letter_runs(settings, "Where is order 42?", "Cancel order 7."))
    with serve(settings) as url:
        yield url, run_ids


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        unavailable("Chromium", "install Debian's chromium package (apt-get install chromium)")
    with chromium(executable) as browser:
        yield browser


def expect_span_rows(page: Page) -> None:
    view = page.locator("#trace-view")
    for name in EXPECTED_SPANS:
        expect(view.locator(f'.span-row[data-name="{name}"]').first).to_be_visible(timeout=TIMEOUT_MS)


def expect_closed_breakers(page: Page) -> None:
    page.get_by_role("tab", name="Resilience").click()
    view = page.locator("#breakers-view")
    for name in EXPECTED_BREAKERS:
        expect(view.locator(f'.breaker-row[data-name="{name}"]')).to_have_attribute(
            "data-state", "closed", timeout=TIMEOUT_MS
        )
    expect(page.locator("#breaker-transitions-view")).to_contain_text("No transitions yet.", timeout=TIMEOUT_MS)


def expect_tool_call_spent(page: Page, tenant: str) -> None:
    """The run's one tool call is used (settled, nothing held) in its tenant's day, under the day cap."""
    row = page.locator(f'#budgets-view .budget-row[data-scope^="day:{tenant}:"][data-resource="tool_calls"]')
    expect(row).to_be_visible(timeout=TIMEOUT_MS)
    expect(row.locator(".budget-used")).to_have_text("1")
    expect(row.locator(".budget-held")).to_have_text("0")


def test_chat_streams_an_answer_links_to_its_trace_and_shows_its_breakers_and_budgets(
    chat_ui: tuple[str, Settings], browser: Browser
) -> None:
    ui_url, settings = chat_ui
    page = browser.new_page()
    page.goto(ui_url)
    page.locator("#question textarea").fill("Where is order 42?")
    page.locator("#send").click()

    chat = page.locator("#chat")
    expect(chat).to_contain_text("USB-C dock", timeout=TIMEOUT_MS)
    expect(chat).to_contain_text(
        re.compile(r"answered · tokens [1-9]\d* in / [1-9]\d* out · \$0\.0*[1-9]"), timeout=TIMEOUT_MS
    )
    link = chat.get_by_role("link", name="trace")
    href = link.get_attribute("href", timeout=TIMEOUT_MS)
    assert href is not None and href.startswith("?run=")
    run_id = href.removeprefix("?run=")

    page.locator("#show-trace").click()
    expect(page.locator("#run-id textarea, #run-id input").first).to_have_value(run_id, timeout=TIMEOUT_MS)
    expect_span_rows(page)

    # The link itself: a fresh page load opens the Traces tab on this run.
    page.goto(urljoin(ui_url, href))
    expect(page.locator(f'#trace-view .trace-summary[data-run-id="{run_id}"]')).to_be_visible(timeout=TIMEOUT_MS)
    expect_span_rows(page)

    # Every model and tool call went through its breaker, and a healthy run leaves both closed.
    expect_closed_breakers(page)
    expect_tool_call_spent(page, settings.identity.default_tenant)
    page.close()


def test_a_second_users_question_is_answered_while_the_first_users_turn_is_still_running(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings], browser: Browser
) -> None:
    # The first call the model gets is slow, the second quick; the semantic cache is off so both reach it.
    script = write_script({"delay_s": 15.0, "text": "The slow answer."}, {"text": "The quick answer."})
    settings = ui_settings(make_settings, sqlite_url, script, cache={"enabled": False})
    with serve(settings) as url:
        first, second = browser.new_page(), browser.new_page()
        for page in (first, second):
            page.goto(url)
        ask(first, "Tell me something slowly.")
        expect(first.locator("#chat")).to_contain_text("…", timeout=TIMEOUT_MS)
        first.wait_for_timeout(3000)  # its run reaches the model (a few nodes) and takes the slow reply
        ask(second, "Tell me something quickly.")

        expect(second.locator("#chat")).to_contain_text("The quick answer.", timeout=TIMEOUT_MS)
        assert "The slow answer." not in first.locator("#chat").inner_text()  # still running
        expect(first.locator("#chat")).to_contain_text("The slow answer.", timeout=TIMEOUT_MS)


def test_dead_lettered_runs_are_inspected_and_requeued_from_the_runs_and_dlq_tab(
    dead_run_ui: tuple[str, list[str]], browser: Browser
) -> None:
    url, (run_id, other_run_id) = dead_run_ui
    page = browser.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Runs & DLQ").click()

    counts = page.locator("#queue-counts")
    expect(counts.locator('.queue-count[data-status="dead"] b')).to_have_text("2", timeout=TIMEOUT_MS)
    expect(page.locator(f'#recent-runs-view .run-row[data-run="{run_id}"]')).to_have_attribute(
        "data-status", "failed", timeout=TIMEOUT_MS
    )
    row = page.locator(f'#dead-letters-view .dead-letter-row[data-run="{run_id}"]')
    expect(row).to_be_visible(timeout=TIMEOUT_MS)
    expect(row).to_contain_text("scripted server error")
    expect(page.locator('#alerts-view .alert-row[data-kind="dlq_spike"]')).to_be_visible(timeout=TIMEOUT_MS)

    page.locator("#dead-letter-pick input").click()
    page.get_by_role("option").filter(has_text=run_id[:8]).click()
    detail = page.locator("#dead-letter-detail")
    expect(detail.locator(f'.dead-letter-detail[data-run="{run_id}"]')).to_be_visible(timeout=TIMEOUT_MS)
    expect(detail.locator(".detail-reason")).to_contain_text("scripted server error")
    expect(detail.locator('.detail-message[data-type="human"]')).to_contain_text("Where is order 42?")

    page.locator("#requeue-button").click()
    result = page.locator("#requeue-result")
    expect(result).to_contain_text(f"Requeued run {run_id}", timeout=TIMEOUT_MS)
    expect(row).to_have_count(0, timeout=TIMEOUT_MS)
    expect(page.locator(f'#dead-letters-view .dead-letter-row[data-run="{other_run_id}"]')).to_be_visible()
    expect(detail).to_contain_text("Pick a dead letter")
    expect(page.locator("#dead-letter-pick input")).to_have_value("")  # the requeued letter is no longer picked
    expect(counts.locator('.queue-count[data-status="queued"] b')).to_have_text("1")
    expect(counts.locator('.queue-count[data-status="dead"] b')).to_have_text("1")

    page.locator("#requeue-all-button").click()
    expect(result).to_contain_text("Requeued 1 of 1 dead runs.", timeout=TIMEOUT_MS)
    expect(page.locator("#dead-letters-view")).to_contain_text("The dead-letter queue is empty.", timeout=TIMEOUT_MS)
    expect(counts.locator('.queue-count[data-status="queued"] b')).to_have_text("2")
    expect(counts.locator('.queue-count[data-status="dead"] b')).to_have_text("0")
    # Each requeue is an audit row of the person at this machine.
    actions = page.locator('#actions-view .action-row[data-action="dlq.requeue"][data-allowed="true"]')
    expect(actions).to_have_count(2)
    expect(actions.first).to_contain_text("local:ui")
    expect(actions.first.locator(".action-outcome")).to_have_text("done")
    page.close()


# The production mutation: the model cancels demo order 2 (seeded "pending") and grades its own action.
CANCEL_ORDER_2 = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]}
ORDER_2_BEFORE = "pending"
CANCELLED = "Order 2 is cancelled."
NOT_CANCELLED = "I did not cancel order 2: a person declined it."
ACTION = 'call update_order({"order_id": 2, "status": "cancelled"})'
REVIEWER_QUESTION = f"Is this the right thing to do: {ACTION}?"


def gated_cancel_script(write_script: ScriptWriter, score: str, *, executed: bool) -> str:
    """Propose the cancellation, grade it ``score`` (the self-critique), then answer once the person decided.

    The final reply's ``expect`` proves what the model saw after the pause: the real tool's result, or
    the refusal ``act`` writes for a rejected call.
    """
    final = (
        {"expect": '"previous_status": "pending"', "text": CANCELLED}
        if executed
        else {"expect": "a person declined it", "text": NOT_CANCELLED}
    )
    return write_script(CANCEL_ORDER_2, {"text": score}, final)


@contextmanager
def gated_ui(settings: Settings) -> Iterator[str]:
    """The UI, and after the test the proof its scripted model was asked exactly what the script says."""
    slot = AgentSlot(settings)
    with serve(settings, slot) as url:
        yield url
        agent = slot.current
        assert agent is not None
        agent.services.gateway.verify_script_consumed()


def ask(page: Page, question: str) -> None:
    page.locator("#question textarea").fill(question)
    page.locator("#send").click()


def last_run_id(page: Page) -> str:
    """The run id of the newest trace link in the chat."""
    link = page.locator("#chat").get_by_role("link", name="trace").last
    href = link.get_attribute("href", timeout=TIMEOUT_MS)
    assert href is not None and href.startswith("?run=")
    return href.removeprefix("?run=")


def chat_messages(page: Page) -> list[tuple[str, str]]:
    """The chat's messages in order as (user | bot, text); a bot message's run line is cut after "tokens"."""
    bubbles = page.locator('#chat [data-testid="user"], #chat [data-testid="bot"]')
    found = bubbles.evaluate_all("nodes => nodes.map(node => [node.dataset.testid, node.innerText.trim()])")
    return [(role, re.sub(r"(· tokens).*", r"\1", text, flags=re.S)) for role, text in found]


def thread_id(page: Page) -> str:
    box = page.locator("#thread-id textarea, #thread-id input").first
    expect(box).not_to_have_value("", timeout=TIMEOUT_MS)
    return box.input_value()


def ask_for_a_reviewer(page: Page) -> str:
    """Ask to cancel order 2; the chat says the run waits for a reviewer. Returns the run id."""
    ask(page, "Please cancel order 2.")
    chat = page.locator("#chat")
    expect(chat).to_contain_text("Waiting for a reviewer", timeout=TIMEOUT_MS)
    expect(chat).to_contain_text("targeted, confidence 0.40 is below the confirm threshold")
    expect(chat).to_contain_text("the reply will appear here")
    expect(chat).to_contain_text("waiting · tokens")
    return last_run_id(page)


def pick_in_the_inbox(page: Page, run_id: str) -> None:
    """In the Inbox: find the run's escalation in the open list, pick it, and check its format."""
    page.get_by_role("tab", name="Inbox").click()
    row = page.locator(f'#inbox-open .escalation-row[data-run="{run_id}"]')
    expect(row).to_be_visible(timeout=TIMEOUT_MS)
    expect(row).to_have_attribute("data-type", "targeted")
    expect(row).to_have_attribute("data-audience", "reviewer")
    expect(row).to_contain_text("low_confidence")
    expect(row.locator(".escalation-due")).to_contain_text("due in")
    short_id = row.locator("td").first.inner_text().strip()

    page.locator("#inbox-pick input").click()
    page.get_by_role("option").filter(has_text=short_id).click()
    detail = page.locator("#inbox-detail")
    expect(detail.locator(f'.escalation-detail[data-run="{run_id}"]')).to_be_visible(timeout=TIMEOUT_MS)
    expect(detail.locator(".escalation-reason")).to_have_text("confidence 0.40 is below the confirm threshold")
    action = detail.locator('.escalation-action[data-target="update_order"]')
    expect(action).to_contain_text(ACTION)
    expect(action.locator(".escalation-score")).to_have_text("0.40")
    expect(detail.locator(".escalation-options li")).to_have_count(2)


def answer_in_the_inbox(page: Page, option: str, note: str) -> None:
    """Answer the picked escalation with one of its options, and a note."""
    page.locator("#inbox-option").get_by_label(option).check()
    page.locator("#inbox-note textarea").fill(note)
    page.locator("#inbox-answer-button").click()


def expect_answered(page: Page, run_id: str, answer: str, note: str) -> None:
    """The escalation left the open list and shows in "Recently answered" with who answered and how fast."""
    expect(page.locator(f'#inbox-open .escalation-row[data-run="{run_id}"]')).to_have_count(0, timeout=TIMEOUT_MS)
    expect(page.locator("#inbox-open")).to_contain_text("No open escalations")
    answered = page.locator('#inbox-answered .answered-row[data-status="answered"]')
    expect(answered).to_have_count(1, timeout=TIMEOUT_MS)
    expect(answered.locator(".answered-answer")).to_have_text(answer)
    expect(answered.locator(".answered-by")).to_have_text("local:ui")
    expect(answered.locator(".answered-latency")).to_have_text(re.compile(r"^\d[\d.]*(s| min)"))
    expect(answered).to_contain_text(note)
    expect(page.locator("#inbox-detail")).to_contain_text("Pick an escalation")


def reopen_thread(page: Page, url: str, thread: str) -> None:
    """A fresh page load, then the thread reopened by its id: what the store holds, not what the page kept."""
    page.goto(url)
    box = page.locator("#thread-id textarea, #thread-id input").first
    box.fill(thread)
    box.press("Enter")


@pytest.fixture
def approve_ui(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> Iterator[tuple[str, Settings]]:
    settings = ui_settings(make_settings, sqlite_url, gated_cancel_script(write_script, "0.4", executed=True))
    with gated_ui(settings) as url:
        yield url, settings


@pytest.fixture
def reject_ui(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> Iterator[tuple[str, Settings]]:
    settings = ui_settings(make_settings, sqlite_url, gated_cancel_script(write_script, "0.4", executed=False))
    with gated_ui(settings) as url:
        yield url, settings


@pytest.fixture
def confirm_ui(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> Iterator[tuple[str, Settings]]:
    settings = ui_settings(make_settings, sqlite_url, gated_cancel_script(write_script, "0.7", executed=True))
    with gated_ui(settings) as url:
        yield url, settings


def test_a_low_confidence_order_change_waits_for_a_reviewer_who_approves_it_in_the_inbox(
    approve_ui: tuple[str, Settings], browser: Browser
) -> None:
    url, settings = approve_ui
    page = browser.new_page()
    page.goto(url)
    run_id = ask_for_a_reviewer(page)
    thread = thread_id(page)
    assert order_2(settings.database_url) == (ORDER_2_BEFORE, [])  # nothing changed while the run waits

    # A new message in a thread that waits for a reviewer is refused with the reason, not run.
    ask(page, "Any news?")
    expect(page.locator("#chat")).to_contain_text("this conversation is waiting for a reviewer", timeout=TIMEOUT_MS)

    pick_in_the_inbox(page, run_id)
    answer_in_the_inbox(page, "approve", "customer asked by phone")
    result = page.locator("#inbox-result")
    expect(result).to_contain_text("with approve", timeout=TIMEOUT_MS)
    expect(result).to_contain_text("The run resumed and ended answered")
    expect(result).to_contain_text(CANCELLED)
    expect(result).to_contain_text(run_id)
    expect_answered(page, run_id, "approve", "customer asked by phone")

    status, completed = order_2(settings.database_url)
    assert status == "cancelled"
    assert [(operation.run_id, operation.attempts) for operation in completed] == [(run_id, 1)]

    # The chat thread, reopened, shows the reviewer's answer and then the run's final answer.
    reopen_thread(page, url, thread)
    expect(page.locator("#chat")).to_contain_text(CANCELLED, timeout=TIMEOUT_MS)
    assert chat_messages(page) == [
        ("user", "Please cancel order 2."),
        ("bot", f"{REVIEWER_QUESTION}\n\n— a reviewer (local:ui) answered approve — note: customer asked by phone"),
        ("bot", f"{CANCELLED}\n\nrun {run_id} · answered · tokens"),
    ]
    page.close()


def test_a_reviewer_who_rejects_the_order_change_in_the_inbox_leaves_the_order_untouched(
    reject_ui: tuple[str, Settings], browser: Browser
) -> None:
    url, settings = reject_ui
    page = browser.new_page()
    page.goto(url)
    run_id = ask_for_a_reviewer(page)
    thread = thread_id(page)

    pick_in_the_inbox(page, run_id)

    # A written answer that is none of the options is refused with a readable reason; the pick stays.
    page.locator("#inbox-answer textarea").fill("maybe")
    page.locator("#inbox-answer-button").click()
    result = page.locator("#inbox-result")
    expect(result).to_contain_text("Not answered: 'maybe' is not an answer to escalation", timeout=TIMEOUT_MS)
    expect(result).to_contain_text("use one of ['approve', 'reject']")
    expect(page.locator(f'#inbox-open .escalation-row[data-run="{run_id}"]')).to_be_visible()
    expect(page.locator(f'#inbox-detail .escalation-detail[data-run="{run_id}"]')).to_be_visible()

    note = "not without the customer's consent"
    answer_in_the_inbox(page, "reject", note)
    expect(result).to_contain_text("with reject", timeout=TIMEOUT_MS)
    expect(result).to_contain_text(NOT_CANCELLED)
    expect_answered(page, run_id, "reject", note)
    assert order_2(settings.database_url) == (ORDER_2_BEFORE, [])

    reopen_thread(page, url, thread)
    expect(page.locator("#chat")).to_contain_text(NOT_CANCELLED, timeout=TIMEOUT_MS)
    assert chat_messages(page) == [
        ("user", "Please cancel order 2."),
        ("bot", f"{REVIEWER_QUESTION}\n\n— a reviewer (local:ui) answered reject — note: {note}"),
        ("bot", f"{NOT_CANCELLED}\n\nrun {run_id} · answered · tokens"),
    ]
    page.close()


def test_a_medium_confidence_order_change_asks_the_user_in_the_chat_and_runs_once_on_yes(
    confirm_ui: tuple[str, Settings], browser: Browser
) -> None:
    url, settings = confirm_ui
    page = browser.new_page()
    page.goto(url)
    ask(page, "Please cancel order 2.")
    chat = page.locator("#chat")
    expect(chat).to_contain_text("Waiting for your answer", timeout=TIMEOUT_MS)
    expect(chat).to_contain_text(f"shall I {ACTION}?")
    expect(chat).to_contain_text("Reply yes or no")
    run_id = last_run_id(page)
    thread = thread_id(page)

    # The Inbox lists it too (audience: the user), though only the user answers it.
    page.get_by_role("tab", name="Inbox").click()
    row = page.locator(f'#inbox-open .escalation-row[data-run="{run_id}"]')
    expect(row).to_have_attribute("data-audience", "user", timeout=TIMEOUT_MS)
    expect(row).to_have_attribute("data-type", "confirmation")
    page.get_by_role("tab", name="Chat").click()

    # Anything but a yes or a no is refused with the question again, and runs nothing.
    ask(page, "What will that do?")
    expect(chat).to_contain_text("this conversation is waiting for your answer", timeout=TIMEOUT_MS)
    expect(chat).to_contain_text("nothing ran")
    assert order_2(settings.database_url) == (ORDER_2_BEFORE, [])

    ask(page, "Yes please, go ahead.")  # a yes in the user's own words
    expect(chat).to_contain_text(CANCELLED, timeout=TIMEOUT_MS)
    expect(chat).to_contain_text(f"run {run_id} · answered")
    status, completed = order_2(settings.database_url)
    assert status == "cancelled"
    assert [(operation.run_id, operation.attempts) for operation in completed] == [(run_id, 1)]

    # Reopened: the question, the user's "yes", then the answer.
    reopen_thread(page, url, thread)
    expect(chat).to_contain_text(CANCELLED, timeout=TIMEOUT_MS)
    assert chat_messages(page) == [
        ("user", "Please cancel order 2."),
        ("bot", f"Before I go on: shall I {ACTION}?"),
        ("user", "yes"),
        ("bot", f"{CANCELLED}\n\nrun {run_id} · answered · tokens"),
    ]
    page.get_by_role("tab", name="Inbox").click()
    expect(page.locator(f'#inbox-open .escalation-row[data-run="{run_id}"]')).to_have_count(0, timeout=TIMEOUT_MS)
    answered = page.locator('#inbox-answered .answered-row[data-status="answered"]')
    expect(answered.locator(".answered-by")).to_have_text("user:local", timeout=TIMEOUT_MS)
    page.close()


def test_a_repeated_question_in_a_new_thread_says_it_was_cached_and_the_cache_tab_invalidates_it(
    chat_ui: tuple[str, Settings], browser: Browser
) -> None:
    ui_url, _ = chat_ui  # one scripted answer: the second question can only be answered from the cache
    page = browser.new_page()
    page.goto(ui_url)
    chat = page.locator("#chat")
    page.locator("#question textarea").fill("Where is order 42?")
    page.locator("#send").click()
    expect(chat).to_contain_text("answered", timeout=TIMEOUT_MS)

    page.locator("#new-thread").click()
    page.locator("#question textarea").fill("where is order 42")
    page.locator("#send").click()

    expect(chat).to_contain_text("Order 42 is a USB-C dock and it has shipped.", timeout=TIMEOUT_MS)
    expect(chat).to_contain_text(
        re.compile(r"cached \(similarity 0\.9\d, matched: \u201cWhere is order 42\?\u201d, saved ~[1-9]\d* tokens"),
        timeout=TIMEOUT_MS,
    )
    page.get_by_role("tab", name="Cache").click()
    answers = page.locator('#cache-stats-view .cache-stats-row[data-layer="llm_response"]')
    expect(answers).to_contain_text("1", timeout=TIMEOUT_MS)
    entry = page.locator("#cache-entries-view .cache-entry-row").first
    expect(entry).to_contain_text("Where is order 42?", timeout=TIMEOUT_MS)
    entry_id = entry.get_attribute("data-id")
    assert entry_id is not None

    page.locator("#cache-entry input, #cache-entry textarea").first.fill(entry_id)
    page.locator("#cache-invalidate").click()

    expect(page.locator("#cache-invalidate-result")).to_contain_text("Removed 1 cache entry.", timeout=TIMEOUT_MS)
    expect(page.locator("#cache-entries-view")).to_contain_text("No cached answers.", timeout=TIMEOUT_MS)
    page.close()


@pytest.fixture
def plan_ui(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> Iterator[tuple[str, Settings]]:
    """The UI with the live pricing API down: a planned run patches its pricing step with cached prices."""
    script = write_script(*seed_replan_script(report="Report: the USB-C dock lists at $89.90 (published price list)."))
    settings = ui_settings(make_settings, sqlite_url, script, **PRICING_DOWN)
    with serve(settings) as url:
        yield url, settings


def test_a_run_planned_from_the_chat_shows_planned_vs_executed_in_its_trace(
    plan_ui: tuple[str, Settings], browser: Browser
) -> None:
    ui_url, _ = plan_ui
    page = browser.new_page()
    page.goto(ui_url)
    page.locator("#plan-first input").check()
    page.locator("#question textarea").fill("What does the USB-C dock cost?")
    page.locator("#send").click()
    expect(page.locator("#chat")).to_contain_text("published price list", timeout=TIMEOUT_MS)

    page.locator("#show-trace").click()

    plan = page.locator("#trace-view .plan")
    expect(plan.locator('.plan-version[data-version="1"]')).to_contain_text("planned by scripted/demo")
    expect(plan.locator('.plan-version[data-version="2"]')).to_contain_text("patched by code after tool_failed")
    expect(plan.locator('.plan-version.current[data-version="2"] ~ .plan-step[data-step="s2b"]')).to_have_attribute(
        "data-status", "done"
    )
    expect(plan.locator(".plan-executed")).to_contain_text(
        "sales_data (success), pricing_api (error), cached_prices (success)"
    )
    # The waterfall below names every part of the agent the run went through.
    legend = page.locator("#trace-view .span-legend")
    for kind in ("model", "tool", "guardrail", "cache", "gate", "plan"):
        expect(legend.locator(f'.span-kind[data-kind="{kind}"]')).to_be_visible()
    page.close()


@pytest.fixture
def team_ui(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> Iterator[tuple[str, Settings]]:
    """The UI on a database holding ticket T-3; the team drafts and approves it."""
    script = approving_team(write_script, sqlite_url, "T-3", draft="Delivered.")
    settings = ui_settings(make_settings, sqlite_url, script)
    with serve(settings) as url:
        yield url, settings


def run_team_tab(browser: Browser, ui_url: str, ticket: str, request: str) -> Page:
    """A new page on the Team tab, the team run on ``ticket`` for ``request`` (its result may still be coming)."""
    page = browser.new_page()
    page.goto(ui_url)
    page.get_by_role("tab", name="Team").click()
    page.locator("#team-ticket textarea, #team-ticket input").first.fill(ticket)
    page.locator("#team-request textarea, #team-request input").first.fill(request)
    page.locator("#team-run").click()
    return page


def test_the_team_tab_runs_the_agents_on_a_ticket_and_shows_who_wrote_each_version(
    team_ui: tuple[str, Settings], browser: Browser
) -> None:
    ui_url, _ = team_ui
    page = run_team_tab(browser, ui_url, "T-3", "Answer the customer about order 42")

    view = page.locator("#team-view")
    expect(view.locator('.team-verdict[data-verdict="approved"]')).to_be_visible(timeout=TIMEOUT_MS)
    expect(view.locator(".member")).to_have_count(3)
    expect(view.locator('tr[data-version="2"]')).to_contain_text("writer (run")
    expect(view.locator('tr[data-version="3"]')).to_contain_text("reviewer (run")
    expect(view.locator('tr[data-version="3"]')).to_contain_text("status=approved")
    page.close()


def test_the_team_tab_says_which_member_stopped_the_team_and_shows_none_of_what_it_was_stopped_for(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings], browser: Browser
) -> None:
    EntityStore(prepare_database(load_settings(database_url=sqlite_url))).create(
        "default", "ticket", "T-4", {"subject": "Which card?"}, actor="intake"
    )
    script = write_script({"expect": "research agent", "text": "Findings: the card is 4111 1111 1111 1111."})
    with serve(ui_settings(make_settings, sqlite_url, script)) as ui_url:
        page = run_team_tab(browser, ui_url, "T-4", "Answer the customer")

        verdict = page.locator('#team-view .team-verdict[data-verdict="stopped"]')
        expect(verdict).to_be_visible(timeout=TIMEOUT_MS)
        expect(verdict).to_contain_text("the research run ended terminated")
        assert "4111" not in page.locator("#team-view").inner_text()
        page.close()


def test_a_team_that_waits_goes_on_from_the_team_tab_once_its_escalation_is_answered_in_the_inbox(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings], browser: Browser
) -> None:
    EntityStore(prepare_database(load_settings(database_url=sqlite_url))).create(
        "default", "ticket", "T-6", {"subject": "Where is order 42?"}, actor="intake"
    )

    def change(version: int, changes: dict[str, str]) -> dict[str, Any]:
        return {
            "tool_calls": [
                {"name": "ticket_update", "arguments": {"key": "T-6", "version": version, "changes": changes}}
            ]
        }

    script = write_script(
        {"expect": "research agent", "text": "Findings: order 42 was delivered."},
        {"expect": "writer agent", **change(1, {"draft": "Delivered."})},
        {"text": "0.9"},  # the writer's write, graded in the embedded model's confirm band: a reviewer decides
        {"text": "Drafted."},  # the writer's run, resumed by the reviewer's answer
        {"expect": "reviewer agent", **change(2, {"status": "approved"})},
        {"text": "0.97"},
        {"text": "APPROVED"},
    )
    shipped = make_settings(sqlite_url)
    embedded_gate = {"routes": {"scripted/demo": shipped.gate.routes[shipped.agent.default_route]}}
    with serve(ui_settings(make_settings, sqlite_url, script, gate=embedded_gate)) as ui_url:
        page = run_team_tab(browser, ui_url, "T-6", "Answer the customer")
        expect(page.locator('#team-view .team-verdict[data-verdict="waiting"]')).to_be_visible(timeout=TIMEOUT_MS)
        correlation = page.locator("#team-correlation textarea, #team-correlation input").first
        expect(correlation).not_to_have_value("")

        page.get_by_role("tab", name="Inbox").click()
        row = page.locator("#inbox-open .escalation-row").first
        expect(row).to_be_visible(timeout=TIMEOUT_MS)
        page.locator("#inbox-pick input").click()
        page.get_by_role("option").filter(has_text=row.locator("td").first.inner_text().strip()).click()
        answer_in_the_inbox(page, "approve", "draft is right")
        expect(page.locator("#inbox-result")).to_contain_text("with approve", timeout=TIMEOUT_MS)

        page.get_by_role("tab", name="Team").click()
        page.locator("#team-resume").click()
        view = page.locator("#team-view")
        expect(view.locator('.team-verdict[data-verdict="approved"]')).to_be_visible(timeout=TIMEOUT_MS)
        expect(view.locator(".member")).to_have_count(3)
        page.close()


async def answered_and_cached(settings: Settings) -> None:
    """A run that looks order 42 up, and the same question from a new thread, answered from the cache."""
    agent = await Agent.create(settings)
    try:
        first = await agent.ask("Where is order 42?", route="scripted/demo")
        second = await agent.ask("where is order 42", route="scripted/demo")
    finally:
        await agent.close()
    assert (first.status, second.status, second.cache is not None) == ("answered", "answered", True)


@pytest.fixture
def ops_ui(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> Iterator[tuple[str, str]]:
    """The UI on a database with three real runs of scripted/demo: answered, answered from the cache, and
    dead-lettered by a worker after three failed attempts: (url, the dead run's id)."""
    answering = write_script(
        {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 42}}]},
        {"expect": "USB-C dock", "text": "Order 42 is a USB-C dock and it has shipped."},
    )
    run(answered_and_cached(ui_settings(make_settings, sqlite_url, answering)))
    failing = write_script({"repeat": True, "error": "server"}, name="failing.jsonl")
    settings = ui_settings(make_settings, sqlite_url, failing, **FAST_DEATH)
    (dead_run_id,) = run(dead_letter_runs(settings, "Cancel order 7."))
    with serve(settings) as url:
        yield url, dead_run_id


OPS_PLOTS = ("ops-latency", "ops-errors", "ops-cost", "ops-tokens", "ops-cache", "ops-dlq")


def test_the_ops_tab_plots_and_counts_the_runs_made(ops_ui: tuple[str, str], browser: Browser) -> None:
    url, _ = ops_ui
    page = browser.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Ops").click()

    row = page.locator('#ops-by-route .ops-row[data-group="scripted/demo"]')
    expect(row.locator(".ops-runs")).to_have_text("3", timeout=TIMEOUT_MS)
    expect(row.locator(".ops-errors")).to_have_text("1")
    expect(row.locator(".ops-error-rate")).to_have_text("33.3%")
    expect(row.locator(".ops-cache-hits")).to_have_text("1 (33.3%)")
    expect(row.locator(".ops-p95")).to_have_text(re.compile(r"^\d[\d.]*s$"))
    release = page.locator('#ops-by-release .ops-row[data-group="base"]')
    expect(release.locator(".ops-runs")).to_have_text("3")
    for plot in OPS_PLOTS:
        expect(page.locator(f"#{plot} canvas, #{plot} svg").first).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator('#ops-breakers .ops-count[data-name="closed"] b')).to_have_text("2")
    expect(page.locator("#ops-escalations")).to_contain_text("Nothing waits for a person.")
    expect(page.locator('#ops-budgets .ops-budget-row[data-resource="tokens"]')).to_be_visible()
    expect(page.locator('#ops-alerts .alert-row[data-kind="dlq_spike"]')).to_be_visible()

    # Per release, the same runs: one line per release the plots draw.
    page.locator("#ops-group").get_by_label("release").check()
    expect(page.locator("#ops-period")).to_contain_text("plots per release", timeout=TIMEOUT_MS)
    page.close()


def test_the_traces_tab_filters_runs_by_status(ops_ui: tuple[str, str], browser: Browser) -> None:
    url, dead_run_id = ops_ui
    page = browser.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Traces").click()

    page.locator("#filter-status input").click()
    page.get_by_role("option", name="failed", exact=True).click()
    page.locator("#runs-list input").click()

    options = page.get_by_role("option")
    expect(options).to_have_count(1, timeout=TIMEOUT_MS)
    options.first.click()
    expect(page.locator(f'#trace-view .trace-summary[data-run-id="{dead_run_id}"]')).to_be_visible(timeout=TIMEOUT_MS)
    # Its last attempt's model call failed: the waterfall shows it as a failed model span.
    expect(page.locator('#trace-view .span-row.error[data-kind="model"]').first).to_be_visible()
    page.close()


@pytest.fixture
def canary_ui(sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]) -> Iterator[str]:
    """The UI on a database where release v2, failing every run, was rolled back by the analysis of real runs."""
    failing_v2 = {"scripted/v2": {"error_rate": 1.0, "error_kind": "bad_request"}}
    settings = canary_settings(
        make_settings, sqlite_url, write_script, faults=failing_v2, ui={"host": "127.0.0.1", "port": free_port()}
    )
    build_services(settings).canary.start("v2", by="test")
    run(traffic(settings, users=30))
    with serve(settings) as url:
        yield url


def test_the_canary_tab_shows_an_automatic_rollback_and_rolls_back_by_hand(canary_ui: str, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(canary_ui)
    page.get_by_role("tab", name="Canary").click()

    view = page.locator("#canary-view")
    expect(view.locator('.canary-status[data-status="rolled_back"]')).to_be_visible(timeout=TIMEOUT_MS)
    expect(view.locator(".canary-reason")).to_contain_text("error_rate")
    errors = view.locator('tr[data-metric="error_rate"]').first
    expect(errors.locator(".control")).to_have_text("0.0%")
    expect(errors.locator(".canary")).to_have_text("100.0%")
    expect(view.locator('.canary-history li[data-action="rolled_back"]')).to_contain_text("by analysis")

    # The same release again, rolled back by hand this time.
    page.locator("#canary-release input").fill("v2")
    page.locator("#canary-start").click()
    expect(page.locator("#canary-result")).to_contain_text("running at 50%", timeout=TIMEOUT_MS)
    page.locator("#canary-reason textarea").fill("customers complain")
    page.locator("#canary-rollback").click()
    expect(view.locator(".canary-reason")).to_have_text("customers complain", timeout=TIMEOUT_MS)
    expect(view.locator('.canary-history li[data-action="rolled_back"]')).to_contain_text("by local:ui")
    page.close()


ANA_TOKEN = "ana-token-for-the-browser"


@pytest.fixture
def login_ui(
    sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> Iterator[tuple[str, dict[str, str]]]:
    """The UI bound to every address (so it asks for a login) over runs of acme and globex that wait for a
    reviewer; ana reviews for acme only. Yields (url, run id per tenant)."""
    people = {"ana": {"role": "reviewer", "token_sha256": hash_token(ANA_TOKEN), "tenants": ["acme"]}}
    script = write_script(CANCEL_ORDER_2, {"text": "0.4"}, CANCEL_ORDER_2, {"text": "0.4"})
    settings = ui_settings(make_settings, sqlite_url, script, operators={"people": people})
    settings.ui.host = "0.0.0.0"

    async def wait_for_reviewers() -> dict[str, str]:
        async with Agent.open(settings) as agent:
            asked = {
                tenant: await agent.ask("Please cancel order 2.", tenant_id=tenant, user_id="u", route="scripted/demo")
                for tenant in ("acme", "globex")
            }
        return {tenant: result.run_id for tenant, result in asked.items()}

    run_ids = run(wait_for_reviewers())
    with serve(settings) as url:
        yield url.replace("0.0.0.0", "127.0.0.1"), run_ids


def test_off_loopback_the_ui_refuses_anonymous_requests_and_a_tenant_reviewer_sees_only_their_tenant(
    login_ui: tuple[str, dict[str, str]], browser: Browser
) -> None:
    url, run_ids = login_ui
    # Without the login cookie the API answers nothing: no config, no events, no queue.
    for path in ("config", "gradio_api/info"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urljoin(url, path), timeout=30)
        assert refused.value.code == 401
    page = browser.new_page()
    page.goto(url)
    log_in(page, "ana", "a guess")
    expect(page.get_by_text("Incorrect Credentials")).to_be_visible(timeout=TIMEOUT_MS)

    log_in(page, "ana", ANA_TOKEN)
    page.get_by_role("tab", name="Inbox").click()
    inbox = page.locator("#inbox-open")
    expect(inbox.locator(f'.escalation-row[data-run="{run_ids["acme"]}"]')).to_be_visible(timeout=TIMEOUT_MS)
    expect(inbox.locator(".escalation-row")).to_have_count(1)  # globex's escalation is not there
    page.get_by_role("tab", name="Traces").click()
    page.locator("#run-id textarea, #run-id input").first.fill(run_ids["globex"])
    page.locator("#view-run").click()
    # Another tenant's run reads exactly like one that does not exist.
    expect(page.locator("#trace-view")).to_contain_text(f"No run with id {run_ids['globex']}", timeout=TIMEOUT_MS)
    page.close()


def log_in(page: Page, name: str, token: str) -> None:
    """Gradio's login form: the operator's name and token."""
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(token)
    page.get_by_role("button", name="Login").click()
