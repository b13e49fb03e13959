"""The Gradio UI: a streaming chat with threads (a run that waits for a person says so there), an
Inbox tab where a reviewer answers open escalations (and the run resumes), a Traces tab that draws each
run's span tree, a Resilience tab that shows every backend's circuit breaker, its recent transitions and the
blast-radius budgets (usage against the caps per request, session and tenant day), a
Runs & DLQ tab with the run queue's counts, recent runs, the dead-letter queue (to inspect and
requeue) and recent alerts, and an Ops tab that plots latency, errors, cost, tokens, cache hits and
dead letters per route or release over time, beside breaker states, budget use and waiting escalations, and
a Canary tab that starts, promotes and rolls back a release and shows both arms side by side. Each tab is a
module of ``ui/tabs``; ``ui/html.py`` holds the HTML helpers they share.

Every view and action is the operator's (app/operators.py): on 127.0.0.1 the local person with
``[operators] local_role``; bound anywhere else (or with no local role) the page asks for an operator's
name and token, and each operator sees only their tenants' rows. Every action is an audit row.

``launch(settings)`` serves it on ``settings.ui.host:port``; ``start(settings)`` does the same
without blocking, for tests and embedding apps (close it with ``demo.close()``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import gradio as gr

from app.operators import authenticate
from app.services import build_services
from core.config import Settings
from core.errors import ConfigError
from graph.agent import Agent
from graph.sweeper import sweeping
from ui.page import Page
from ui.tabs.cache import cache_tab
from ui.tabs.canary import canary_tab
from ui.tabs.chat import CHAT_TAB, chat_tab
from ui.tabs.inbox import inbox_tab
from ui.tabs.ops import ops_tab
from ui.tabs.queue import queue_tab
from ui.tabs.resilience import resilience_tab
from ui.tabs.team import team_tab
from ui.tabs.traces import traces_tab

# Gradio's words when its own page did not answer in time, and how many starts the UI tries before it gives up.
NOT_ACCESSIBLE = "localhost is not accessible"
LAUNCH_ATTEMPTS = 3


class AgentSlot:
    """The UI's one Agent, opened on first use inside Gradio's event loop (the lifespan's escalation sweeper
    uses it from the server's start) and closed with the server.

    It cannot be opened before the server starts: the checkpointer's async connection belongs to
    the loop that opened it, and Gradio runs async handlers on uvicorn's loop.
    """

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock  # the agent's wall clock, injected by tests that move deadlines by hand
        self._agent: Agent | None = None
        self._lock = asyncio.Lock()

    @property
    def current(self) -> Agent | None:
        """The agent if it was opened (by the sweeper or a first request), else None."""
        return self._agent

    async def get(self) -> Agent:
        # The lock stops two first requests from opening two agents (and two connections).
        async with self._lock:
            if self._agent is None:
                # Off the loop: it is uvicorn's, and opening the stores (and migrating) would stall every page.
                services = await asyncio.to_thread(build_services, self._settings, clock=self._clock)
                self._agent = await Agent.create(self._settings, services=services)
            return self._agent

    async def close(self) -> None:
        async with self._lock:
            if self._agent is not None:
                await self._agent.close()
                self._agent = None

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """A FastAPI lifespan: while the server runs, its agent sweeps overdue escalations every
        ``[escalation] sweep_period_s`` (``graph/sweeper.py``), so deadlines pass with the Inbox closed;
        closing on server shutdown runs on the same loop that opened the agent."""
        async with sweeping(self.get, self._settings.escalation.sweep_period_s):
            yield
        await self.close()


def needs_login(settings: Settings) -> bool:
    """A UI reachable from other machines, or one with no local role, asks every visitor to log in."""
    host = settings.ui.host
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        loopback = False
    return not loopback or not settings.operators.local_role


def build_ui(settings: Settings, *, route: str | None = None, agent: AgentSlot | None = None) -> gr.Blocks:
    """The Blocks app; pass ``agent`` to own its lifetime (``start`` closes it with the server).

    ``route`` (``firebreak ui --model``) pins the chat and team runs to that route and the stable release;
    without it each run is served by whatever rollout its user is in, as on every other entry path."""
    page = Page(settings, agent or AgentSlot(settings), route)
    with gr.Blocks(title="Firebreak", analytics_enabled=False) as demo:
        last_run = gr.State("")
        with gr.Tabs(selected=CHAT_TAB, elem_id="tabs") as tabs:
            chat = chat_tab(page, last_run)
            inbox_tab(page)
            traces_tab(page, demo, tabs, chat)
            resilience_tab(page, demo)
            queue_tab(page, demo)
            cache_tab(page)
            ops_tab(page)
            canary_tab(page)
            team_tab(page)
    return demo


def login_check(settings: Settings) -> Callable[[str, str], bool]:
    """The login a UI that needs one (see ``needs_login``) checks: an operator's name and token."""
    if not settings.operators.people:
        raise ConfigError(
            f"the UI on {settings.ui.host!r} needs a login (it is reachable from other machines, or [operators] "
            "local_role is empty) but [operators.people] is empty: add an operator (`firebreak operators add "
            "NAME`) or bind [ui] host to 127.0.0.1"
        )
    return lambda name, token: authenticate(settings.operators, token, via="ui", name=name) is not None


def start(settings: Settings, *, route: str | None = None, agent: AgentSlot | None = None) -> gr.Blocks:
    """Serve the UI on ``settings.ui.host:port`` in the background; ``demo.close()`` stops it and the agent.

    Pass ``agent`` to look at the UI's agent from outside (tests check its scripted model was used up).
    """
    auth = login_check(settings) if needs_login(settings) else None
    slot = agent or AgentSlot(settings)
    demo = build_ui(settings, route=route, agent=slot)
    for attempt in range(1, LAUNCH_ATTEMPTS + 1):
        try:
            demo.launch(
                server_name=settings.ui.host,
                server_port=settings.ui.port,
                auth=auth,
                auth_message="Log in with your operator name and token (`firebreak operators add NAME` makes one).",
                prevent_thread_lock=True,
                quiet=True,
                # Every run is already recorded in Firebreak's database; keep chat content out of browser storage.
                run_history=False,
                app_kwargs={"lifespan": slot.lifespan},
            )
            return demo
        except ValueError as exc:
            # Gradio asks its own page once, with a 3 s timeout, before launch returns, and takes a timeout for
            # "localhost is not accessible". On a busy machine (models loading, a build) the page is only slow:
            # clean-clone CI failed a browser test this way. Stop the server and start it again.
            demo.close()
            if NOT_ACCESSIBLE not in str(exc) or attempt == LAUNCH_ATTEMPTS:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def launch(settings: Settings, *, route: str | None = None) -> None:
    """Serve the UI until interrupted."""
    demo = start(settings, route=route)
    print(f"Firebreak UI on {demo.local_url}", flush=True)
    demo.block_thread()
