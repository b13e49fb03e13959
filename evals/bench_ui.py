"""Time to the first answer token in the UI, in a real browser: Enter pressed to the first answer text shown.

The real UI serves a real Agent (by default on the embedded local model, semantic cache off so the model
really runs, the safety screen on the stream as always); Debian's chromium opens it through Playwright. After
one warm-up question, each round starts a new thread and types a question no earlier round asked. A
MutationObserver in the page, armed before Enter is pressed, takes ``performance.now()`` at the keypress, at
the first change that puts answer text (not the "…" placeholder) in the assistant's bubble, and at the
change that adds the finished reply's run line. The spans the run wrote split the wait: Enter to the agent's
run span, the run span to the first model call, and the model call to the first text shown.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from core.config import Settings, load_settings
from evals.browser import chromium, chromium_path, free_port, serve
from memory.engine import make_engine
from memory.tables import SpanRecord

if TYPE_CHECKING:  # Playwright is a dev dependency, loaded only when the bench opens a browser
    from playwright.sync_api import Browser, Page

TIMEOUT_MS = 180_000  # a loaded 2-core machine takes seconds per local-model turn; never minutes
WARM_UP = "Hello, who are you?"
WARM_UP_ATTEMPTS = 3
COUNTRIES = ("Germany", "France", "Italy", "Spain", "Japan", "Canada", "Brazil", "Egypt", "Norway", "Kenya")
RUN_SPAN = "invoke_agent firebreak"
MODEL_SPAN_PREFIX = "chat "
# Installed once per page: the keypress and every change of the chat are timed into ``window.bench``,
# which each round replaces with a fresh record (see ARM).
OBSERVE = """() => {
  const chat = document.querySelector('#chat');
  const lastBot = () => {
    const bots = chat.querySelectorAll('[data-testid="bot"]');
    return bots.length ? bots[bots.length - 1] : null;
  };
  document.querySelector('#question textarea').addEventListener('keydown', (event) => {
    const bench = window.bench;
    if (event.key === 'Enter' && bench && bench.enter === null) bench.enter = performance.now();
  }, {capture: true});
  new MutationObserver(() => {
    const now = performance.now();
    const bench = window.bench;
    if (!bench || bench.enter === null || bench.done !== null) return;
    const bot = lastBot();
    if (!bot) return;
    const text = bot.textContent.trim();
    if (bench.first === null && text && text !== '…') {
      bench.first = now;
      bench.firstText = text;
    }
    const link = bot.querySelector('a[href^="?run="]');
    if (link) {
      bench.done = now;
      bench.runId = link.getAttribute('href').slice('?run='.length);
      bench.reply = bot.innerText;
    }
  }).observe(chat, {subtree: true, childList: true, characterData: true});
}"""
ARM = """() => {
  window.bench = {origin: performance.timeOrigin, enter: null, first: null, firstText: null, done: null,
                  runId: null, reply: null};
}"""


def bench_settings(database_url: str) -> Settings:
    """The default settings on a fresh database, the semantic cache off so every question reaches the model."""
    return load_settings(
        database_url=database_url, cache={"enabled": False}, ui={"host": "127.0.0.1", "port": free_port()}
    )


def question(round_: int) -> str:
    """A question no earlier round asked, that needs no tool."""
    country = COUNTRIES[round_ % len(COUNTRIES)]
    lap = round_ // len(COUNTRIES)
    return f"What is the capital of {country}?" + (f" (question {lap + 1})" if lap else "")


def timed_turn(page: Page, text: str) -> dict[str, Any]:
    """Ask ``text`` in a new thread by pressing Enter; the page's timings of it (milliseconds, page clock)."""
    page.locator("#new-thread").click()
    page.wait_for_function("() => !document.querySelector('#chat [data-testid=\"bot\"]')", timeout=TIMEOUT_MS)
    page.evaluate(ARM)
    box = page.locator("#question textarea")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function("() => window.bench.done !== null", timeout=TIMEOUT_MS)
    timings = page.evaluate("() => window.bench")
    assert isinstance(timings, dict)
    return timings


def answered(timings: dict[str, Any]) -> bool:
    return " · answered · " in timings["reply"]


def answered_turn(page: Page, text: str) -> dict[str, Any]:
    timings = timed_turn(page, text)
    if not answered(timings):
        raise RuntimeError(f"the turn for {text!r} was not answered: {timings['reply']!r}")
    return timings


def warm_up(page: Page) -> None:
    """Ask until a turn is answered: the first may spend the run's wall clock loading the model."""
    for _ in range(WARM_UP_ATTEMPTS - 1):
        if answered(timed_turn(page, WARM_UP)):
            return
    answered_turn(page, WARM_UP)


def run_spans(database_url: str, run_id: str) -> list[SpanRecord]:
    """Every span of the run's trace (a model call's span names no run), oldest first."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            traces = select(SpanRecord.trace_id).where(SpanRecord.run_id == run_id).distinct()
            found = select(SpanRecord).where(col(SpanRecord.trace_id).in_(traces)).order_by(col(SpanRecord.start_ns))
            return list(session.exec(found))
    finally:
        engine.dispose()


def breakdown(timings: dict[str, Any], spans: list[SpanRecord]) -> dict[str, float]:
    """Where the wait for the first text went, in seconds, on the wall clock both the page and the spans use."""
    enter_ns = (timings["origin"] + timings["enter"]) * 1e6
    first_ns = (timings["origin"] + timings["first"]) * 1e6
    agent_ns = next(span.start_ns for span in spans if span.name == RUN_SPAN)
    model_ns = next(span.start_ns for span in spans if span.name.startswith(MODEL_SPAN_PREFIX))
    return {
        "enter_to_agent_s": (agent_ns - enter_ns) / 1e9,
        "agent_to_model_s": (model_ns - agent_ns) / 1e9,
        "model_to_shown_s": (first_ns - model_ns) / 1e9,
    }


def measure_turns(browser: Browser, url: str, database_url: str, rounds: int) -> list[dict[str, Any]]:
    """Warm the model with one question, then time ``rounds`` fresh ones."""
    page = browser.new_page()
    try:
        page.goto(url)
        page.locator("#chat").wait_for(timeout=TIMEOUT_MS)
        page.evaluate(OBSERVE)
        warm_up(page)
        turns = []
        for round_ in range(rounds):
            timings = answered_turn(page, question(round_))
            turns.append({**timings, **breakdown(timings, run_spans(database_url, timings["runId"]))})
        return turns
    finally:
        page.close()


@contextmanager
def opened(browser: Browser | None) -> Iterator[Browser]:
    """``browser``, or Debian's chromium for the length of the bench."""
    if browser is not None:
        yield browser
        return
    executable = chromium_path()
    if executable is None:
        raise RuntimeError("the UI bench needs Debian's chromium: apt-get install -y chromium")
    with chromium(executable) as launched:
        yield launched


def summary(turns: list[dict[str, Any]]) -> dict[str, Any]:
    first = [(turn["first"] - turn["enter"]) / 1000 for turn in turns]
    reply = [(turn["done"] - turn["enter"]) / 1000 for turn in turns]
    parts = ("enter_to_agent_s", "agent_to_model_s", "model_to_shown_s")
    return {
        "ui_first_token_s": statistics.median(first),
        "ui_first_token_runs": first,
        "ui_reply_s": statistics.median(reply),
        "ui_reply_runs": reply,
        "ui_first_texts": [turn["firstText"] for turn in turns],
        "ui_first_token_breakdown_s": {part: statistics.median(turn[part] for turn in turns) for part in parts},
    }


def measure_ui_first_token(
    settings: Settings | None = None, rounds: int = 5, *, route: str | None = None, browser: Browser | None = None
) -> dict[str, Any]:
    """Median seconds from Enter to the first answer text in the chat, and to the finished reply.

    ``settings`` default to the product's (embedded local model) on a temporary SQLite database with the
    semantic cache off; ``route`` pins the chat to a route (None: by release, as ``firebreak ui``);
    ``browser`` is an open one to use (default: Debian's chromium, launched for the bench).
    """
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-ui-") as workdir:
        settings = settings or bench_settings(f"sqlite:///{Path(workdir) / 'bench.db'}")
        with serve(settings, route=route) as url, opened(browser) as page_browser:
            turns = measure_turns(page_browser, url, settings.database_url, rounds)
    return {"rounds": rounds, **summary(turns)}


if __name__ == "__main__":
    print(json.dumps(measure_ui_first_token(), indent=2))
