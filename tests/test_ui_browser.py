"""The UI in a real browser: a scripted run streams into the chat, its trace opens in the Traces tab,
and the Resilience tab shows the breakers its model and tool calls went through and the budget it spent; a
run a real worker
dead-lettered shows in the Runs & DLQ tab, with its detail, and is requeued from there.

Nothing of Firebreak is mocked: the UI serves a real Agent on a temporary SQLite database, and the
scripted model calls the real ``sql_lookup`` tool against the seeded demo orders.
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin

import pytest
from conftest import ScriptWriter, run, unavailable
from playwright.sync_api import Browser, Page, expect, sync_playwright

from app.config import Settings
from app.queue.worker import Worker, submit
from graph.agent import Agent
from memory.queue import QueueStore
from ui.app import start

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PRICES = {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002, "context_window": 8000}
EXPECTED_SPANS = ("invoke_agent firebreak", "chat scripted/demo", "execute_tool sql_lookup")
EXPECTED_BREAKERS = ("model:scripted/demo", "tool:sql_lookup")
# Every model call fails and is not retried; each run attempt follows the last at once, so a run dies fast.
FAST_DEATH = {"retries": {"attempts": 1}, "queue": {"retry_base_delay_s": 0.0, "dlq_alert_threshold": 1}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ui_settings(make_settings: Callable[..., Settings], database_url: str, script: str, **overrides: Any) -> Settings:
    return make_settings(
        database_url,
        script=script,
        ui={"host": "127.0.0.1", "port": free_port()},
        models={"scripted/demo": PRICES},
        **overrides,
    )


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The UI on ``settings.ui``, answering with the scripted route; yields its URL."""
    demo = start(settings, route="scripted/demo")
    try:
        assert demo.local_url is not None
        yield demo.local_url
    finally:
        demo.close()


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
    executable = shutil.which("chromium")
    if executable is None:
        unavailable("Chromium", "install Debian's chromium package (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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
    page.close()
