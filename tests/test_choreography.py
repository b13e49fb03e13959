"""Choreography: research, writer and reviewer agents react to ticket events; nobody drives them.

Real member runs, real event log and entity store, real databases; the scripted model stands in for the
provider, one line per model call in the order the subscribers take their turns.
"""

from __future__ import annotations

from conftest import run
from sqlmodel import Session, select

from graph.agent import Agent
from graph.choreography import settle, subscribe
from memory.events import dead_letter_id
from memory.shared_state import EntityStore
from memory.tables import DeadLetter

ROUTE = "scripted/demo"
CONFIDENT = {"text": "0.95"}  # the gate's self-critique of each write: executed without asking anyone


def write(version: int, changes: dict, expect: str) -> dict:
    arguments = {"key": "T-5", "version": version, "changes": changes}
    return {"expect": expect, "tool_calls": [{"name": "ticket_update", "arguments": arguments}]}


def choreograph(settings):
    async def scenario():
        async with Agent.open(settings) as agent:
            tickets = EntityStore(agent.services.engine)
            subject = {"subject": "Where is order 42?"}
            tickets.create("default", "ticket", "T-5", subject, actor="intake", correlation_id="c-5")
            handled = await settle(agent, tenant_id="default", route=ROUTE)
            again = await settle(agent, tenant_id="default", route=ROUTE)  # each event was handled once
            return handled, again, tickets, agent.services

    return run(scenario())


def test_the_agents_react_to_each_others_changes_until_the_ticket_is_approved(
    database_url, make_settings, write_script
):
    script = write_script(
        write(1, {"findings": "order 42 was delivered on Monday"}, expect="You are the research agent"),
        CONFIDENT,
        {"text": "Findings written."},
        write(2, {"draft": "Your order was delivered on Monday."}, expect="You are the writer agent"),
        CONFIDENT,
        {"text": "Drafted."},
        write(3, {"status": "approved"}, expect="You are the reviewer agent"),
        CONFIDENT,
        {"text": "Approved."},
    )

    handled, again, tickets, services = choreograph(make_settings(database_url, script=script))

    assert handled == {"research": 1, "writer": 1, "reviewer": 1}
    assert again == {"research": 0, "writer": 0, "reviewer": 0}
    final = tickets.get("default", "ticket", "T-5")
    assert final.data["status"] == "approved" and final.version == 4
    # Every run of the interaction carries the ticket's correlation id, and so does every change it made.
    changes = tickets.changes_in("c-5")
    assert [(e.version, e.actor.split(" ")[0]) for e in changes] == [
        (1, "intake"),
        (2, "research"),
        (3, "writer"),
        (4, "reviewer"),
    ]
    runs = services.runs.recent(limit=10)
    assert sorted(r.agent for r in runs) == ["research", "reviewer", "writer"]
    assert {r.correlation_id for r in runs} == {"c-5"}


def test_an_event_whose_run_keeps_failing_goes_to_the_dlq_and_the_ticket_keeps_its_draft(
    database_url, make_settings, write_script
):
    script = write_script(
        write(1, {"findings": "order 42 was delivered"}, expect="You are the research agent"),
        CONFIDENT,
        {"text": "Findings written."},
        write(2, {"draft": "Delivered."}, expect="You are the writer agent"),
        CONFIDENT,
        {"text": "Drafted."},
        {"expect": "You are the reviewer agent", "error": "server"},
        {"expect": "You are the reviewer agent", "error": "server"},
        {"expect": "You are the reviewer agent", "error": "server"},
    )
    settings = make_settings(database_url, script=script, retries={"attempts": 1})

    handled, _, tickets, services = choreograph(settings)

    assert handled == {"research": 1, "writer": 1, "reviewer": 0}
    # Kept: the draft, and the event the reviewer could not handle, in the dead-letter queue.
    draft = tickets.history("default", "ticket", "T-5")[-1]
    assert tickets.get("default", "ticket", "T-5").data["draft"] == "Delivered."
    with Session(services.engine) as session:
        (letter,) = session.exec(select(DeadLetter)).all()
    assert letter.run_id == dead_letter_id(draft.event_id)
    assert "choreography:reviewer" in letter.reason and "scripted server error" in letter.reason


def test_an_event_whose_run_the_safety_breaker_stopped_is_dead_lettered_at_once_and_nobody_acts_on_it(
    database_url, make_settings, write_script
):
    # One script line: a second attempt at the event would find the script used up.
    reply = {"expect": "You are the research agent", "text": "Findings: the card on file is 4111 1111 1111 1111."}
    settings = make_settings(database_url, script=write_script(reply))

    handled, _, tickets, services = choreograph(settings)

    assert handled == {"research": 0, "writer": 0, "reviewer": 0}
    assert tickets.get("default", "ticket", "T-5").version == 1  # no findings, so no writer and no reviewer
    [research] = [run for run in services.runs.recent(limit=10) if run.agent == "research"]
    assert research.status == "terminated"
    with Session(services.engine) as session:
        (letter,) = session.exec(select(DeadLetter)).all()
    assert letter.attempts == 1 and "had its run stopped (not retried)" in letter.reason
    assert letter.partial_state["run_id"] == research.id and "4111" not in letter.reason


def test_a_subscribers_run_never_takes_its_answer_from_the_cache(sqlite_url, make_settings, write_script):
    # The same event handled again after its ticket changed must read the ticket again, not a cached answer.
    script = write_script(
        write(1, {"findings": "order 42 was delivered"}, expect="You are the research agent"),
        CONFIDENT,
        {"text": "Findings written."},
    )

    async def scenario():
        async with Agent.open(make_settings(sqlite_url, script=script)) as agent:
            EntityStore(agent.services.engine).create("default", "ticket", "T-5", {"subject": "42?"}, actor="intake")
            handled = await subscribe(agent, "research", tenant_id="default", until_idle=True, route=ROUTE)
            [research] = agent.services.runs.recent(limit=5)
            spans = agent.services.runs.spans(research.id)
            return handled, research, next(span for span in spans if span.name == "node cache_lookup")

    handled, research, lookup = run(scenario())

    assert handled == 1 and (research.agent, research.status) == ("research", "answered")
    assert lookup.attributes["firebreak.cache.skipped"] == "team_member"
