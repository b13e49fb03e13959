"""Nobody looking, nobody to confirm (issue 16 items 6 and 7), measured.

``escalation_expiry_unattended``: unanswered escalations pass up a level and then expire on time although
nobody opens the Inbox or runs ``firebreak escalations sweep``: a worker with nothing queued and a
choreography subscriber, two agents on one database, sweep on their own; each transition happens once, with
one alert, however both sweep.

``team_default_config``: team runs on the shipped embedded route's gate thresholds (a write graded 0.9, as
the 0.5B model grades almost everything, is in the confirm band) either finish or wait visibly for a
reviewer with the escalation's id, never stall silently, and finish once the reviewer answered.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from app.background import in_background
from core.config import load_settings
from core.status import RunStatus
from evals.scenario import Scenario
from graph.agent import Agent
from graph.choreography import subscribe
from graph.team import TeamResult, resume_team, run_team
from graph.worker import Worker
from memory.queue import QueueStore
from memory.shared_state import EntityStore
from memory.tables import Alert

ROUTE = "scripted/demo"
PERIOD_S = 0.5
TIMEOUT_S = 1.2  # every escalation type's deadline, in real seconds
# A transition is on time when it happens within one period of its deadline, plus what the sweep that makes it
# takes to get to it (its queries; on a loaded machine, waiting for the event loop).
SWEEP_ALLOWANCE_S = 0.25
ESCALATIONS = 3
UPDATE = {"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}
# A rules script (never used up): any agent of the scenario, asking or resuming, gets the same replies.
UNATTENDED_RULES = [
    {"repeat": True, "expect": "Reply with one number between 0 and 1", "text": "0.4"},  # a reviewer decides
    {"repeat": True, "expect": "Rejected", "text": "I did not cancel order 2."},  # after the expiry
    {"repeat": True, "after": "user", "tool_calls": [UPDATE]},
]
DRAFT = "Your order was delivered on Monday."
UNSURE = {"text": "0.9"}


def _script(folder: Path, name: str, lines: Sequence[dict[str, Any]]) -> str:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return str(path)


def _statuses(agent: Agent, run_ids: Sequence[str]) -> list[str]:
    return [run.status if (run := agent.services.runs.get(run_id)) else "missing" for run_id in run_ids]


def _escalation_alerts(agent: Agent) -> list[Alert]:
    with Session(agent.services.engine) as session:
        query = select(Alert).where(col(Alert.kind).in_(["escalation_escalated", "escalation_expired"]))
        return list(session.exec(query.order_by(col(Alert.id))).all())


async def _unattended(folder: Path) -> Scenario:
    policies = {kind: {"timeout_s": TIMEOUT_S} for kind in ("targeted", "confirmation", "full_handoff")}
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'sweep-unattended.db'}",
        script=_script(folder, "sweep-unattended", UNATTENDED_RULES),
        cache={"enabled": False},
        queue={"poll_s": PERIOD_S},
        team={"poll_s": PERIOD_S},
        escalation={"max_level": 1, "sweep_period_s": PERIOD_S, "policies": policies},
    )
    async with Agent.open(settings) as asker, Agent.open(settings) as in_worker, Agent.open(settings) as in_sub:
        worker = Worker(in_worker, QueueStore(in_worker.services.engine))

        async def follow(stop: asyncio.Event) -> int:
            return await subscribe(in_sub, "research", tenant_id="default", until_idle=False, stop=stop)

        async with in_background(worker.run_forever), in_background(follow):
            waiting = [await asker.ask(f"Cancel order 2 (request {n})", route=ROUTE) for n in range(ESCALATIONS)]
            ids = {item["id"] for result in waiting for item in result.escalations}
            runs = [result.run_id for result in waiting]
            deadline = time.monotonic() + 2 * TIMEOUT_S + 30
            while time.monotonic() < deadline and RunStatus.WAITING in _statuses(asker, runs):
                await asyncio.sleep(0.05)
            await asyncio.sleep(2 * PERIOD_S)  # a duplicate would show up in these sweeps
        alerts = _escalation_alerts(asker)
        statuses = _statuses(asker, runs)
    keys = [(a.payload["escalation_id"], a.kind, a.payload["level"]) for a in alerts]
    late = [a for a in alerts if a.created_at > a.payload["due_at"] + PERIOD_S + SWEEP_ALLOWANCE_S]
    duplicates = len(keys) - len(set(keys))
    figures = {
        "escalations": len(ids),
        "expired_late": len(late),
        "sweepers": 2,
        "duplicate_transitions": duplicates,
        "alerts": len(alerts),
        "runs_resumed": statuses.count(RunStatus.ANSWERED),
        "period_s": PERIOD_S,
        "allowance_s": SWEEP_ALLOWANCE_S,
        "latest_s": round(max((a.created_at - a.payload["due_at"] for a in alerts), default=0.0), 3),
    }
    passed = (
        len(ids) >= ESCALATIONS
        and not late
        and not duplicates
        and len(alerts) == 2 * len(ids)  # each passed up once, then expired once
        and statuses == [RunStatus.ANSWERED] * ESCALATIONS
    )
    return Scenario("escalation_expiry_unattended", passed, figures)


def _team_script(ticket: str) -> list[dict[str, Any]]:
    """Research, then a draft graded 0.9 (a reviewer approves it), then an approval graded 0.9 (likewise)."""

    def change(version: int, changes: dict[str, Any], role: str) -> dict[str, Any]:
        arguments = {"key": ticket, "version": version, "changes": changes}
        return {
            "expect": f"You are the {role} agent",
            "tool_calls": [{"name": "ticket_update", "arguments": arguments}],
        }

    return [
        {"expect": "You are the research agent", "text": "Findings: the order was delivered on Monday."},
        change(1, {"draft": DRAFT}, "writer"),
        UNSURE,
        {"text": "Drafted."},
        change(2, {"status": "approved"}, "reviewer"),
        UNSURE,
        {"text": "APPROVED"},
    ]


def _visible(result: TeamResult) -> bool:
    """Finished, stopped with the member run that stopped it, or waiting with the id of each escalation it waits
    for."""
    if result.status == "finished":
        return True
    if result.status == "stopped":
        return result.stopped_by is not None
    return result.status == "waiting" and bool(result.waiting_for) and all(item["id"] for item in result.waiting_for)


async def _team(folder: Path) -> Scenario:
    tickets = ["T-1", "T-2"]
    shipped = load_settings()
    embedded = shipped.gate.routes[shipped.agent.default_route]  # the thresholds of the model `make run` ships
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'team-waiting.db'}",
        script=_script(folder, "team-waiting", [line for ticket in tickets for line in _team_script(ticket)]),
        gate={"routes": {ROUTE: embedded}},
    )
    stalls = resumed = waits = 0
    async with Agent.open(settings) as agent:
        store = EntityStore(agent.services.engine)
        for ticket in tickets:
            store.create("default", "ticket", ticket, {"subject": "Where is my order?"}, actor="intake")
            result = await run_team(agent, "Answer the customer", ticket=ticket, route=ROUTE)
            answered = False
            while result.status == "waiting" and _visible(result):
                waits += 1
                for item in result.waiting_for:
                    await agent.answer(item["id"], "approve", by="reviewer:eval")
                answered = True
                result = await resume_team(agent, result.correlation_id)
            stalls += not _visible(result)
            resumed += answered and result.status == "finished" and result.verdict == "approved"
        agent.services.gateway.verify_script_consumed()
    figures = {"team_runs": len(tickets), "silent_stalls": stalls, "resumed_after_answer": resumed, "waits": waits}
    passed = stalls == 0 and resumed == len(tickets) and waits == 2 * len(tickets)
    return Scenario("team_default_config", passed, figures)


def scenarios(folder: Path) -> list[Scenario]:
    """Both scenarios, each on its own SQLite file under ``folder``."""

    async def both() -> list[Scenario]:
        return [await _unattended(folder), await _team(folder)]

    return asyncio.run(both())
