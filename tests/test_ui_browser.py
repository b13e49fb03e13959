"""The UI in a real browser: a scripted run streams into the chat, its trace opens in the Traces tab,
and the Resilience tab shows the breakers its model and tool calls went through.

Nothing of Firebreak is mocked: the UI serves a real Agent on a temporary SQLite database, and the
scripted model calls the real ``sql_lookup`` tool against the seeded demo orders.
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Callable, Iterator
from urllib.parse import urljoin

import pytest
from conftest import ScriptWriter, unavailable
from playwright.sync_api import Browser, Page, expect, sync_playwright

from app.config import Settings
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ui_url(sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]) -> Iterator[str]:
    script = write_script(
        {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 42}}]},
        # The expectation proves the real tool's result reached the model.
        {"expect": "USB-C dock", "text": "Order 42 is a USB-C dock and it has shipped."},
    )
    settings = make_settings(
        sqlite_url,
        script=script,
        ui={"host": "127.0.0.1", "port": free_port()},
        models={"scripted/demo": PRICES},
    )
    demo = start(settings, route="scripted/demo")
    try:
        assert demo.local_url is not None
        yield demo.local_url
    finally:
        demo.close()


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


def test_chat_streams_an_answer_links_to_its_trace_and_shows_its_breakers(ui_url: str, browser: Browser) -> None:
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
    page.close()
