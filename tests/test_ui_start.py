"""The UI starts on a busy machine: Gradio's own check of its page, one request with a 3 s timeout, fails when the
server's loop is held up (models loading, a build beside it), and Gradio calls that "localhost is not accessible".
The UI starts again instead of giving up; a real proxy problem still fails, after the last attempt."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from entry_paths import free_port
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.config import Settings
from ui.app import LAUNCH_ATTEMPTS, AgentSlot, start

BUSY_FOR_S = 4.0  # longer than Gradio's 3 s check


class BusyAtFirstStart(AgentSlot):
    """At its first start the page answers after ``BUSY_FOR_S``, as on a machine busy loading models."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.starts = 0

    @asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        self.starts += 1
        if self.starts == 1:
            app.router.routes.insert(0, Route("/", held_up, methods=["HEAD", "GET"]))
        async with super().lifespan(app):
            yield


async def held_up(_request: Request) -> Response:
    time.sleep(BUSY_FOR_S)  # blocking on purpose: the server's loop serves nothing meanwhile
    return Response("busy")


def test_a_ui_whose_first_start_is_held_up_starts_again_and_serves(sqlite_url, make_settings):
    settings = make_settings(sqlite_url, ui={"host": "127.0.0.1", "port": free_port()})
    slot = BusyAtFirstStart(settings)

    demo = start(settings, agent=slot)
    try:
        page = httpx.get(demo.local_url, timeout=10)
    finally:
        demo.close()

    assert page.status_code == 200 and "Firebreak" in page.text
    assert 2 <= slot.starts <= LAUNCH_ATTEMPTS  # the held-up start was stopped and the UI started again
