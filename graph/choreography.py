"""Choreography (seed pattern 8, the alternative to ``graph/team.py``): the same research, writer and
reviewer agents as independent subscribers to the shared-entity event log.

Nobody drives them: each reads the log (``EventLog.after``), woken by LISTEN/NOTIFY on PostgreSQL and by
polling every ``[team] poll_s`` on SQLite, and reacts to the changes it cares about with a member run:
research to a new ticket, the writer to findings or a request for revision, the reviewer to a draft. Each
run carries the event's correlation id, so every run of one interaction is linked (``firebreak trace
replay``). A subscriber handles an event once (``EventLog.handle`` claims it per subscriber), may run in its
own process (``firebreak subscribe ROLE``), and an event its run keeps failing on goes to the dead-letter
queue. The per-entity change budget bounds a reviewer and a writer that would otherwise bounce a ticket
forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import FirebreakError, HandlerFailed
from core.status import RESUMABLE, RunStatus
from graph.agent import Agent
from graph.sweeper import sweeping
from memory.events import ChangeSignal, EventLog, Outcome
from memory.tables import EntityEvent


@dataclass(frozen=True)
class Subscription:
    wants: Callable[[EntityEvent], bool]
    instructions: str  # formatted with the ticket's key


def _revision_asked(event: EntityEvent) -> bool:
    return str(event.patch.get("review", "")).lower().startswith("revise")


SUBSCRIPTIONS = {
    "research": Subscription(
        lambda e: e.kind == "ticket" and e.type == "created",
        "You are the research agent of a support team. Ticket {key} is new: read it with ticket_read, find the "
        "facts it needs, and write them into its 'findings' field with ticket_update at the version you read.",
    ),
    "writer": Subscription(
        lambda e: e.kind == "ticket" and ("findings" in e.patch or _revision_asked(e)),
        "You are the writer agent of a support team. Ticket {key} has findings (or a review asking for a "
        "revision): read it, and write the customer reply into its 'draft' field with ticket_update at the "
        "version you read.",
    ),
    "reviewer": Subscription(
        lambda e: e.kind == "ticket" and "draft" in e.patch,
        "You are the reviewer agent of a support team. Ticket {key} has a new draft: read it; if it is right set "
        "'status' to 'approved', otherwise set 'review' to 'revise: <what to change>', with ticket_update at the "
        "version you read.",
    ),
}


async def handle_pending(
    agent: Agent, role: str, *, tenant_id: str, after_id: int = 0, route: str | None = None
) -> tuple[int, list[Outcome]]:
    """Handle every event after ``after_id`` that ``role`` subscribes to (and its earlier failed ones); returns
    the id of the last event read and what happened to each handled one."""
    subscription = SUBSCRIPTIONS[role]
    log = EventLog(agent.services.engine)
    handler = f"choreography:{role}"
    loop = asyncio.get_running_loop()

    async def member(event: EntityEvent) -> str | None:
        """Run the member for ``event``; "waiting" while its run waits for a reviewer (the event stays
        waiting, offered again each pass, and is done once the answered run has finished)."""
        thread_id = f"{event.correlation_id or event.event_id}:{role}:v{event.version}"
        earlier = agent.services.runs.recent(limit=1, thread_id=thread_id)
        if earlier and earlier[0].status in (RunStatus.WAITING, RunStatus.ANSWERED):
            return "waiting" if earlier[0].status == RunStatus.WAITING else None  # no second run for one event
        result = await agent.ask(
            subscription.instructions.format(key=event.key),
            thread_id=thread_id,
            tenant_id=event.tenant_id,
            route=route,
            agent=role,
            correlation_id=event.correlation_id or event.event_id,
        )
        if result.status == RunStatus.WAITING:
            return "waiting"
        if result.status != RunStatus.ANSWERED:
            # A run stopped on purpose (not a failure on the way) would only be stopped again: no retry.
            final = result.status not in RESUMABLE
            raise HandlerFailed(
                f"{role} run {result.run_id} {result.status}: {result.error}", result.run_id, final=final
            )
        return None

    def run_member(event: EntityEvent) -> str | None:
        # EventLog.handle is synchronous; the member run goes back to this loop while its thread waits.
        return asyncio.run_coroutine_threadsafe(member(event), loop).result()

    events = log.after(tenant_id, after_id)
    last = max((event.id or 0 for event in events), default=after_id)
    candidates = {event.event_id: event for event in [*log.retries(handler, tenant_id), *events]}
    due = [event for event in candidates.values() if subscription.wants(event)]
    outcomes = [await asyncio.to_thread(log.handle, handler, event, run_member) for event in due]
    return last, outcomes


async def subscribe(
    agent: Agent,
    role: str,
    *,
    tenant_id: str,
    until_idle: bool,
    route: str | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Follow the event log as ``role``; returns how many events it handled. ``until_idle`` stops once a pass
    finds nothing to do (for tests, batch jobs and one-process demos)."""
    if role not in SUBSCRIPTIONS:
        raise FirebreakError(f"unknown role {role!r}; the roles are {', '.join(SUBSCRIPTIONS)}")
    cursor, handled = 0, 0
    poll_s = agent.services.settings.team.poll_s
    signal = ChangeSignal(agent.services.settings.database_url)
    try:
        async with contextlib.AsyncExitStack() as background:
            if not until_idle:  # a subscriber that follows the log is long-running: deadlines pass in it too
                period = agent.services.settings.escalation.sweep_period_s
                await background.enter_async_context(sweeping(agent, period))
            while stop is None or not stop.is_set():
                cursor, outcomes = await handle_pending(agent, role, tenant_id=tenant_id, after_id=cursor, route=route)
                handled += sum(outcome == "done" for outcome in outcomes)
                if until_idle and not any(outcome in ("done", "failed") for outcome in outcomes):
                    return handled
                if "done" not in outcomes:  # nothing new, or only events that wait for a person or a retry
                    await asyncio.to_thread(signal.wait, poll_s)  # a commit wakes it at once on PostgreSQL
            return handled
    finally:
        signal.close()


async def settle(agent: Agent, *, tenant_id: str, route: str | None = None) -> dict[str, int]:
    """Let every subscriber of this process react, in turns, until a whole round handles nothing: the
    choreography of one process (a demo, a test). Returns how many events each role handled."""
    handled = dict.fromkeys(SUBSCRIPTIONS, 0)
    while True:
        progress = 0
        for role in SUBSCRIPTIONS:
            done = await subscribe(agent, role, tenant_id=tenant_id, until_idle=True, route=route)
            handled[role] += done
            progress += done
        if not progress:
            return handled
