"""Escalation deadlines pass with nobody looking: every long-running process sweeps on a schedule.

The worker (``graph/worker.py``), the UI (``ui/app.py``) and each choreography subscriber
(``graph/choreography.py``) run :func:`sweep_forever` beside their own work, every
``[escalation] sweep_period_s`` seconds of real time. Deadlines themselves are on the agent's clock
(``services.clock``), so a test or a simulation moves them by hand. Many processes sweeping one database at
once is the normal case: :meth:`Agent.sweep` passes an escalation up or expires it by compare-and-set, and
only the process whose write won alerts and resumes the run, so each transition happens once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from app.background import in_background
from graph.agent import Agent

log = logging.getLogger("firebreak.sweeper")


AgentSource = Agent | Callable[[], Awaitable[Agent]]


async def sweep_forever(agent: AgentSource, stop: asyncio.Event, period_s: float) -> None:
    """Sweep overdue escalations every ``period_s`` seconds until ``stop`` is set.

    ``agent`` may be a coroutine function that opens it (the UI's agent is opened on first use). A sweep that
    fails (the database is down, say) is logged and tried again next period: the process's own work goes on.
    """
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        try:
            current = agent if isinstance(agent, Agent) else await agent()
            for row, action in await current.sweep():
                log.info("escalation %s (%s) %s", row.id[:8], row.type, action)
        except Exception as exc:  # the next period tries again; the process must not die of it
            log.warning("escalation sweep failed (%s: %s); trying again in %gs", type(exc).__name__, exc, period_s)
        # Sweeps start every period whatever one takes (resuming runs, say): a deadline waits one period at most.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(started + period_s - loop.time(), 0.0))


def sweeping(agent: AgentSource, period_s: float) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    """Sweep every ``period_s`` in the background while the block runs; a sweep in progress finishes first."""
    return in_background(lambda stop: sweep_forever(agent, stop, period_s), name="escalation sweeper")
