"""The UI bench in a real browser, on a scripted model: it sees the first token in the chat before the reply ends."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import ScriptWriter
from playwright.sync_api import Browser
from test_ui_browser import browser, ui_settings

from core.config import Settings
from evals.bench_ui import measure_ui_first_token

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the fixture, shared with the UI's browser tests

# Long enough that its stream spans several of the UI's updates.
REPLY = " ".join(f"Step {n}: check the parcel label and the tracking page." for n in range(1, 41))


def test_the_ui_bench_times_the_first_token_before_the_finished_reply(
    browser: Browser, sqlite_url: str, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> None:
    script = write_script({"text": "Hello."}, {"text": REPLY})  # the warm-up's reply, then the timed round's
    settings = ui_settings(make_settings, sqlite_url, script, cache={"enabled": False})

    figures = measure_ui_first_token(settings, rounds=1, route="scripted/demo", browser=browser)

    assert len(figures["ui_first_token_runs"]) == 1
    assert 0 < figures["ui_first_token_s"] < figures["ui_reply_s"]
    # What the chat showed at that moment: the reply's beginning, not the placeholder and not all of it.
    (first_text,) = figures["ui_first_texts"]
    assert first_text and REPLY.startswith(first_text) and len(first_text) < len(REPLY)
    parts = figures["ui_first_token_breakdown_s"]
    assert parts["enter_to_agent_s"] > 0 and parts["agent_to_model_s"] > 0 and parts["model_to_shown_s"] > 0
