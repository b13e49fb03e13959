"""The stream screen in a real browser: the chat never shows a character the policy screen has not passed.

A MutationObserver, installed before the question is sent, records every text the chat area ever held
(each mutated node's text, its text before the change, and the whole chat after each batch), so a card
number shown for a moment and then replaced would still be caught. A clean reply must still stream: the
page shows a part of it before the whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from conftest import ScriptWriter
from playwright.sync_api import Browser, Page, expect
from test_ui_browser import TIMEOUT_MS, ask, browser, serve, ui_settings

from core.config import Settings

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, shared with the UI's browser tests

CARD = "4111 1111 1111 1111"
CLEAN_PREFIX = "Sure. The card on file is "
# Long enough that its stream spans many of the UI's updates.
CLEAN_REPLY = " ".join(f"Step {n}: check the parcel label and the tracking page." for n in range(1, 41))
OBSERVE_CHAT = """() => {
  const chat = document.querySelector('#chat');
  window.shownTexts = [];
  const record = (text) => { if (text) window.shownTexts.push(text); };
  new MutationObserver((mutations) => {
    for (const mutation of mutations) {
      record(mutation.oldValue);
      record(mutation.target.textContent);
      mutation.addedNodes.forEach((node) => record(node.textContent));
      mutation.removedNodes.forEach((node) => record(node.textContent));
    }
    record(chat.textContent);
  }).observe(chat, {subtree: true, childList: true, characterData: true, characterDataOldValue: true});
}"""


@contextmanager
def chat_page(
    browser: Browser, sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings], reply: str
) -> Iterator[Page]:
    """A page on the UI whose scripted model streams ``reply``, with the chat observed from the start."""
    # No semantic cache: it is not the subject, and warming it on the first request costs a loaded machine
    # more than the page's timeout.
    settings = ui_settings(make_settings, sqlite_url, write_script({"text": reply}), cache={"enabled": False})
    with serve(settings) as url:
        page = browser.new_page()
        page.goto(url)
        page.locator("#chat").wait_for(timeout=TIMEOUT_MS)
        page.evaluate(OBSERVE_CHAT)
        try:
            yield page
        finally:
            page.close()


def shown_texts(page: Page) -> list[str]:
    texts = page.evaluate("() => window.shownTexts")
    assert isinstance(texts, list)
    return texts


def test_the_chat_never_shows_a_streamed_card_number(
    browser: Browser, sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> None:
    with chat_page(browser, sqlite_url, write_script, make_settings, f"{CLEAN_PREFIX}{CARD}, keep it safe.") as page:
        ask(page, "Which card do you have on file?")
        expect(page.locator("#chat")).to_contain_text("stopped by the safety breaker", timeout=TIMEOUT_MS)
        texts = shown_texts(page)

    assert any(CLEAN_PREFIX.strip() in text for text in texts)  # the observer saw the stream
    assert not [text for text in texts if "4111" in text or "keep it safe" in text]


def test_a_clean_reply_still_streams_into_the_chat(
    browser: Browser, sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> None:
    with chat_page(browser, sqlite_url, write_script, make_settings, CLEAN_REPLY) as page:
        ask(page, "How do I track my parcel?")
        expect(page.locator("#chat")).to_contain_text("answered · tokens", timeout=TIMEOUT_MS)
        texts = shown_texts(page)

    assert any(CLEAN_REPLY in text for text in texts)
    partial = [text for text in texts if "Step 1:" in text and "Step 40:" not in text]
    assert partial, "the chat showed the reply only once it was whole"
