"""Escalation deadlines pass with nobody looking: every long-running process sweeps, and each transition
happens once however many sweep.

Real agents, real worker, subscriber and UI lifespan, real databases; the scripted model and the clock are
the edges. Deadlines are on the injected clock (moved by hand); the sweep period is real, and short.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from conftest import run
from sqlmodel import Session, col, select

from app.background import in_background
from app.services import build_services
from core.config import Settings, deep_merge
from evals.scenario import SimulatedTime
from graph.agent import Agent
from graph.choreography import subscribe
from graph.worker import Worker
from memory.escalations import EscalationStore
from memory.queue import QueueStore
from memory.tables import Alert, Escalation
from ui.app import AgentSlot

ROUTE = "scripted/demo"
PERIOD_S = 0.1
# A transition is due at the first sweep after its deadline; a loaded machine may take a while to run it.
ON_TIME_S = PERIOD_S + 3.0
CANCEL = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]}

Process = Callable[[Settings, SimulatedTime], AbstractAsyncContextManager[Agent]]


def settings_for(make_settings: Callable[..., Settings], database_url: str, **overrides: Any) -> Settings:
    """Short real periods: sweeps, queue polls and subscriber polls every PERIOD_S."""
    quick = {
        "cache": {"enabled": False},
        "team": {"poll_s": PERIOD_S},
        "queue": {"poll_s": PERIOD_S},
        "escalation": {"sweep_period_s": PERIOD_S},
    }
    return make_settings(database_url, **deep_merge(quick, overrides))


def alerts(agent: Agent, kind: str) -> list[Alert]:
    with Session(agent.services.engine) as session:
        return list(session.exec(select(Alert).where(Alert.kind == kind).order_by(col(Alert.id))).all())


async def eventually(check: Callable[[], Any], what: str, within_s: float = ON_TIME_S) -> Any:
    deadline = time.monotonic() + within_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what} did not happen within {within_s}s"
        await asyncio.sleep(0.01)
    return value


@asynccontextmanager
async def a_worker(settings: Settings, clock: SimulatedTime) -> AsyncIterator[Agent]:
    """`firebreak worker` with nothing queued."""
    async with Agent.open(settings, services=build_services(settings, clock=clock)) as agent:
        worker = Worker(agent, QueueStore(agent.services.engine), clock=clock)
        async with in_background(worker.run_forever):
            yield agent


@asynccontextmanager
async def a_subscriber(settings: Settings, clock: SimulatedTime) -> AsyncIterator[Agent]:
    """`firebreak subscribe research` with no events to react to."""

    async def follow(agent: Agent, stop: asyncio.Event) -> int:
        return await subscribe(agent, "research", tenant_id="default", until_idle=False, stop=stop)

    services = build_services(settings, clock=clock)
    async with Agent.open(settings, services=services) as agent, in_background(lambda stop: follow(agent, stop)):
        yield agent


@asynccontextmanager
async def the_ui(settings: Settings, clock: SimulatedTime) -> AsyncIterator[Agent]:
    """`firebreak ui` with nobody on the Inbox tab: its server's lifespan, and its agent."""
    slot = AgentSlot(settings, clock=clock)
    async with slot.lifespan(None):
        yield await slot.get()


@pytest.mark.parametrize("process", [a_worker, a_subscriber, the_ui], ids=["worker", "subscriber", "ui"])
def test_an_unanswered_escalation_is_passed_up_then_expires_on_time_with_nobody_looking(
    process: Process, database_url, make_settings, write_script
):
    script = write_script(CANCEL, {"text": "0.4"}, {"expect": "Rejected", "text": "I did not cancel order 2."})
    settings = settings_for(make_settings, database_url, script=script)
    timeout = settings.escalation.policies["targeted"].timeout_s
    clock = SimulatedTime()

    async def scenario() -> None:
        async with process(settings, clock) as agent:
            waiting = await agent.ask("Cancel order 2", route=ROUTE)
            [pending] = waiting.escalations
            await asyncio.sleep(3 * PERIOD_S)
            assert alerts(agent, "escalation_escalated") == []  # not due: sweeps change nothing

            clock.now += timeout + 1  # nobody opens the Inbox or runs `escalations sweep`
            [passed_up] = await eventually(lambda: alerts(agent, "escalation_escalated"), "passing up")
            row = agent.services.escalations.get(pending["id"])
            assert (row.status, row.level, passed_up.payload["level"]) == ("open", 1, 1)

            clock.now += timeout + 1
            [expired] = await eventually(lambda: alerts(agent, "escalation_expired"), "expiry")
            assert expired.payload["escalation_id"] == pending["id"]
            finished = await eventually(
                lambda: agent.services.runs.get(waiting.run_id).status == "answered", "the run's resumption"
            )
            assert finished
            await asyncio.sleep(3 * PERIOD_S)  # later sweeps find nothing more to do
            assert len(alerts(agent, "escalation_escalated")) == len(alerts(agent, "escalation_expired")) == 1
            row = agent.services.escalations.get(pending["id"])
            assert (row.status, row.answer, row.answered_by) == ("expired", "reject", "timeout")
            agent.services.gateway.verify_script_consumed()

    run(scenario())


def overdue_escalations(engine: Any, count: int, now: float) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    EscalationStore(engine).open(
        [
            Escalation(
                id=escalation_id,
                run_id=str(uuid.uuid4()),
                thread_id=f"t-{escalation_id}",
                tenant_id="default",
                type="targeted",
                trigger="low_confidence",
                audience="reviewer",
                pauses_run=False,  # nothing to resume: the subject is the transitions
                reason="a test",
                question="Approve?",
                options=["approve", "reject"],
                status="open",
                created_at=now,
                due_at=now - 1,
            )
            for escalation_id in ids
        ]
    )
    return ids


def test_a_sweep_that_read_an_escalation_before_another_passed_it_up_cannot_pass_it_up_again(
    database_url, make_settings
):
    settings = settings_for(make_settings, database_url)

    async def scenario() -> tuple[bool, bool, int]:
        async with Agent.open(settings) as agent:
            store = agent.services.escalations
            [escalation_id] = overdue_escalations(agent.services.engine, 1, time.time())
            [read_by_a] = store.overdue(time.time())
            [read_by_b] = store.overdue(time.time())
            first = store.escalate(read_by_a.id, from_level=read_by_a.level, due_at=time.time() + 60)
            second = store.escalate(read_by_b.id, from_level=read_by_b.level, due_at=time.time() + 60)
            return first, second, store.get(escalation_id).level

    assert run(scenario()) == (True, False, 1)


def test_two_processes_sweeping_one_database_make_each_transition_and_alert_once(database_url, make_settings):
    # Every sweep finds work: deadlines of 10 ms, four transitions per escalation (levels 1-3, then expiry).
    policies = {"targeted": {"timeout_s": 0.01, "on_timeout": "escalate"}}
    settings = settings_for(make_settings, database_url, escalation={"max_level": 3, "policies": policies})
    count = 30
    services = build_services(settings)
    ids = overdue_escalations(services.engine, count, time.time())
    handled: list[list[tuple[str, str, int]]] = []
    failures: list[BaseException] = []

    opening, together = threading.Lock(), threading.Barrier(2, timeout=120)

    def sweeper() -> None:
        async def sweep_until_done() -> list[tuple[str, str, int]]:
            mine: list[tuple[str, str, int]] = []
            with opening:  # the subject is sweeping at once, not starting at once (SQLite serialises setup)
                agent = await Agent.create(settings)
            try:
                together.wait()
                deadline = time.monotonic() + 60
                while agent.services.escalations.list(status="open") and time.monotonic() < deadline:
                    mine += [(row.id, action, row.level) for row, action in await agent.sweep()]
            finally:
                await agent.close()
            return mine

        try:
            handled.append(asyncio.run(sweep_until_done()))
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert len(handled) == 2
    transitions = sorted(t for mine in handled for t in mine)
    expected = sorted([(i, "escalated", level) for i in ids for level in range(3)] + [(i, "expired", 3) for i in ids])
    assert transitions == expected  # each once, none skipped
    with Session(services.engine) as session:
        rows = session.exec(select(Alert).where(col(Alert.kind).startswith("escalation_"))).all()
    raised = sorted((a.payload["escalation_id"], a.kind, a.payload["level"]) for a in rows)
    assert len(raised) == len(set(raised)) == 4 * count
    services.close()
