"""The UI in a real browser, for the browser tests and the UI bench: serve the UI, open Debian's chromium.

Playwright drives the chromium Debian installs (``apt-get install chromium``); it never downloads a browser.
"""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from typing import TYPE_CHECKING

from core.config import Settings
from ui.app import AgentSlot, start

if TYPE_CHECKING:  # Playwright is a dev dependency: importing this module (``evals.bench``) must not need it
    from playwright.sync_api import Browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(settings: Settings, *, route: str | None = None, slot: AgentSlot | None = None) -> Iterator[str]:
    """The UI on ``settings.ui``, its chat pinned to ``route`` (None: by release); yields its URL."""
    demo = start(settings, route=route, agent=slot)
    try:
        assert demo.local_url is not None
        yield demo.local_url
    finally:
        with redirect_stdout(sys.stderr):  # Gradio prints "Closing server…": stdout is `bench --json`'s
            demo.close()


def chromium_path() -> str | None:
    """Debian's chromium, or None when it is not installed."""
    return shutil.which("chromium")


@contextmanager
def chromium(executable: str) -> Iterator[Browser]:
    """A headless chromium at ``executable``, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
