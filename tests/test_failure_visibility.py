"""Failures reach someone: every run that does not end with a clean answer, from any entry path, is in the
operator's one view with the action that fits, and the queue keeps the runs that wait for a person.

Real databases (SQLite and PostgreSQL), the real graph, worker, event log and CLI; the scripted model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run
from sqlmodel import Session, select

from app.operators import Operator, find_attention, needs_attention, requeue_as
from app.services import build_services
from core.errors import FirebreakError
from examples.support_desk.tables import OutboxEmail
from graph.agent import Agent
from graph.choreography import settle
from graph.worker import Worker, submit
from memory.queue import QueueStore
from memory.shared_state import EntityStore

ROUTE = "scripted/demo"
ADMIN = Operator("ops", "admin", "cli")
FAST = {"retries": {"attempts": 1}, "queue": {"retry_base_delay_s": 0.0}}
# Writes run without asking anyone, unless a test scores one low: the gate is not the subject here.
UNGATED = {"gate": {"estimator": "fixed", "fixed_default": 1.0}}
EMAIL = {
    "tool_calls": [
        {"name": "send_email", "arguments": {"to": "ada@example.com", "subject": "Order", "body": "Shipped."}}
    ]
}
SERVER_DOWN = {"error": "server"}
FIREBREAK = str(Path(sys.executable).parent / "firebreak")


def attention_of(agent: Agent, run_id: str):
    """The operator view's entry for ``run_id`` (fails the test when the run is not listed)."""
    (item,) = [item for item in needs_attention(agent.services.engine, ADMIN, now=time.time()) if item.run_id == run_id]
    return item


def test_a_call_that_keeps_failing_asks_a_reviewer_raises_an_alert_and_says_which(
    database_url, make_settings, write_script
):
    dead = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 999, "status": "shipped"}}]}
    settings = make_settings(database_url, script=write_script(dead, dead, dead), **UNGATED)

    async def scenario():
        async with Agent.open(settings) as agent:
            result = await agent.ask("Ship order 999", route=ROUTE)
            return result, agent.services.escalations.for_run(result.run_id), agent, attention_of(agent, result.run_id)

    result, (asked,), agent, item = run(scenario())

    assert result.status == "repeated_failure"
    assert (asked.type, asked.trigger, asked.audience, asked.pauses_run, asked.status) == (
        "collaborative",
        "repeated_failure",
        "reviewer",
        False,
        "open",
    )
    assert f"escalation {asked.id[:8]}" in result.answer and "needs a person" not in result.answer
    (alert,) = [a for a in QueueStore(agent.services.engine).alerts() if a.kind == "repeated_failure"]
    assert alert.payload["run_id"] == result.run_id and alert.payload["escalation_id"] == asked.id
    assert (item.action, item.detail) == ("escalation", f"review escalation {asked.id[:8]} (open)")


def test_a_queued_run_that_waits_stays_waiting_then_goes_back_through_the_queue_and_a_later_failure_is_dead_lettered(
    database_url, make_settings, write_script
):
    risky = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 1, "status": "shipped"}}]}
    script = write_script(risky, SERVER_DOWN, SERVER_DOWN, SERVER_DOWN)
    low = {"gate": {"estimator": "fixed", "fixed_default": 1.0, "fixed_scores": {"update_order": 0.1}}}
    settings = make_settings(database_url, script=script, **FAST, **low)

    async def scenario():
        async with Agent.open(settings) as agent:
            store = QueueStore(agent.services.engine)
            job = submit(store, settings, "Ship order 1", route=ROUTE)
            await Worker(agent, store).run_until_idle()
            paused, waiting_item = store.get(job.id), attention_of(agent, job.id)
            (asked,) = agent.open_pauses(job.id)
            answered = await agent.answer(asked.id, "approve", by="reviewer:rita")
            woken = store.get(job.id)
            await Worker(agent, store).run_until_idle()
            return job, paused, waiting_item, asked, answered, woken, store, agent

    job, paused, waiting_item, asked, answered, woken, store, agent = run(scenario())

    assert (paused.status, paused.attempts) == ("waiting", 0)  # a pause is not a failed attempt
    assert (waiting_item.action, waiting_item.detail) == ("escalation", f"waiting on escalation {asked.id[:8]}")
    # The answer did not resume the run in the answering process: it put it back in the queue, due now.
    assert answered.status == "queued" and (woken.status, woken.attempts) == ("queued", 0)
    assert woken.available_at <= time.time()
    # A worker resumed it (the approved write ran), then the model failed on every attempt: dead-lettered.
    final, (letter,) = store.get(job.id), store.dead_letters()
    assert (final.status, final.attempts) == ("dead", 3) and letter.run_id == job.id
    assert agent.services.runs.get(job.id).status == "failed"
    events = [(e.node, e.kind) for e in agent.services.runs.events(job.id)]
    assert events.count(("act", "tool_result")) == 1
    item = attention_of(agent, job.id)
    assert (item.action, item.entry, item.letter_id) == ("requeue", "queue", letter.id)


def test_a_failed_run_of_the_python_api_is_listed_and_requeued_to_a_worker_that_finishes_it_from_its_checkpoint(
    database_url, make_settings, write_script
):
    failing = make_settings(database_url, script=write_script(EMAIL, SERVER_DOWN), **FAST, **UNGATED)
    fixed = make_settings(
        database_url, script=write_script({"text": "Sent.", "expect": "Shipped."}, name="2.jsonl"), **FAST, **UNGATED
    )

    async def fail():
        async with Agent.open(failing) as agent:
            result = await agent.ask("Email Ada that her order shipped", route=ROUTE)
            return result, attention_of(agent, result.run_id)

    async def requeue_and_work(run_id):
        async with Agent.open(fixed) as agent:
            store = QueueStore(agent.services.engine)
            item = find_attention(agent.services.engine, ADMIN, run_id, now=time.time())
            assert requeue_as(store, ADMIN, item, now=time.time(), max_attempts=3)
            await Worker(agent, store).run_until_idle()
            with Session(agent.services.engine) as session:
                emails = session.exec(select(OutboxEmail)).all()
            after = [i for i in needs_attention(agent.services.engine, ADMIN, now=time.time()) if i.run_id == run_id]
            return store.get(run_id), agent.services.runs.get(run_id), emails, after

    result, item = run(fail())
    assert result.status == "failed"
    assert (item.action, item.entry, item.target) == ("requeue", "direct", result.run_id)
    job, record, emails, after = run(requeue_and_work(result.run_id))
    assert (job.status, record.status, record.answer) == ("completed", "answered", "Sent.")
    assert len(emails) == 1 and emails[0].run_id == result.run_id  # the write was not repeated
    assert after == []


def test_a_deliberate_stop_is_listed_with_why_and_is_not_requeued(database_url, make_settings, write_script):
    lookups = [{"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": n}}]} for n in (1, 2)]
    settings = make_settings(database_url, script=write_script(*lookups), agent={"max_steps": 2})

    async def scenario():
        async with Agent.open(settings) as agent:
            result = await agent.ask("Look up orders 1 and 2", route=ROUTE)
            item = attention_of(agent, result.run_id)
            with pytest.raises(FirebreakError, match="not for requeueing"):
                requeue_as(QueueStore(agent.services.engine), ADMIN, item, now=time.time(), max_attempts=3)
            return result, item

    result, item = run(scenario())
    assert result.status == "step_limit"
    assert (item.action, item.detail) == ("none", "used all its tool steps: ask again, narrower")


def ticket_write(version: int, changes: dict, expect: str) -> dict:
    arguments = {"key": "T-5", "version": version, "changes": changes}
    return {"expect": expect, "tool_calls": [{"name": "ticket_update", "arguments": arguments}]}


def test_an_event_dead_letter_is_listed_requeued_and_then_handled(database_url, make_settings, write_script):
    reviewer = "You are the reviewer agent"
    broken = write_script(
        ticket_write(1, {"findings": "order 42 was delivered"}, expect="You are the research agent"),
        {"text": "Findings written."},
        ticket_write(2, {"draft": "Delivered."}, expect="You are the writer agent"),
        {"text": "Drafted."},
        *[{"expect": reviewer, **SERVER_DOWN}] * 3,
    )
    repaired = write_script(
        ticket_write(3, {"status": "approved"}, expect=reviewer), {"text": "Approved."}, name="repaired.jsonl"
    )
    trusting = {"gate": {"estimator": "fixed", "fixed_default": 1.0}, "retries": {"attempts": 1}}

    async def fail():
        async with Agent.open(make_settings(database_url, script=broken, **trusting)) as agent:
            tickets = EntityStore(agent.services.engine)
            tickets.create("default", "ticket", "T-5", {"subject": "Where is order 42?"}, actor="intake")
            await settle(agent, tenant_id="default", route=ROUTE)
            return needs_attention(agent.services.engine, ADMIN, now=time.time())

    async def requeue_and_settle(target):
        async with Agent.open(make_settings(database_url, script=repaired, **trusting)) as agent:
            store = QueueStore(agent.services.engine)
            item = find_attention(agent.services.engine, ADMIN, target, now=time.time())
            assert requeue_as(store, ADMIN, item, now=time.time(), max_attempts=3)
            handled = await settle(agent, tenant_id="default", route=ROUTE)
            ticket = EntityStore(agent.services.engine).get("default", "ticket", "T-5")
            return handled, ticket, needs_attention(agent.services.engine, ADMIN, now=time.time())

    items = run(fail())
    (event,) = [item for item in items if item.kind == "event"]
    assert (event.action, event.entry, event.status) == ("requeue", "subscribe:reviewer", "dead")
    # The member run it failed on last points at the event: requeueing the event is the one action.
    last_run = next(item for item in items if item.run_id == event.run_id and item.kind == "run")
    assert (last_run.action, last_run.detail) == ("retrying", f"its event is dead-lettered: requeue {event.target}")
    handled, ticket, after = run(requeue_and_settle(event.target))
    assert handled["reviewer"] == 1 and ticket.data["status"] == "approved"
    assert not [item for item in after if item.action == "requeue"]


def test_the_cli_lists_every_unclean_run_with_its_action_and_requeues_a_failed_ask(tmp_path, write_script):
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    env = {
        **os.environ,
        "FIREBREAK_DATABASE_URL": database_url,
        "FIREBREAK_RETRIES__ATTEMPTS": "1",
        "FIREBREAK_GATE__ESTIMATOR": "fixed",
    }

    def firebreak(*args: str, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FIREBREAK, *args], env={**env, "FIREBREAK_SCRIPT": script}, capture_output=True, text=True, timeout=120
        )

    failed = firebreak("ask", "--model", ROUTE, "--json", "Email Ada", script=write_script(EMAIL, SERVER_DOWN))
    run_id = json.loads(failed.stdout)["run_id"]
    listed = firebreak("dlq", "list", script="")
    unclean = json.loads(firebreak("runs", "--unclean", "--json", script="").stdout)
    requeued = firebreak("dlq", "requeue", run_id, script="")
    worked = firebreak("worker", "--until-idle", script=write_script({"text": "Sent."}, name="2.jsonl"))
    after = firebreak("dlq", "list", script="")

    assert failed.returncode == 1
    assert run_id in listed.stdout and "requeue: resumes from its checkpoint" in listed.stdout, listed.stderr
    assert [(i["target"], i["status"], i["entry"], i["action"]) for i in unclean] == [
        (run_id, "failed", "direct", "requeue")
    ]
    assert requeued.stdout.strip() == "requeued 1 of 1", requeued.stderr
    assert worked.returncode == 0, worked.stderr
    assert run_id not in after.stdout and "every run ended with a clean answer" in after.stdout


def test_an_expired_escalation_of_a_queued_run_also_sends_it_back_through_the_queue(
    database_url, make_settings, write_script
):
    risky = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 1, "status": "shipped"}}]}
    script = write_script(risky, {"text": "Nobody approved it, so order 1 was not shipped."})
    low = {"gate": {"estimator": "fixed", "fixed_default": 1.0, "fixed_scores": {"update_order": 0.1}}}
    expiring = {"escalation": {"policies": {"targeted": {"timeout_s": 60.0, "on_timeout": "expire"}}}}
    settings = make_settings(database_url, script=script, **FAST, **low, **expiring)
    skipped = [0.0]  # seconds the clock has been moved on

    def clock() -> float:
        return time.time() + skipped[0]

    async def scenario():
        async with Agent.open(settings, services=build_services(settings, clock=clock)) as agent:
            store = QueueStore(agent.services.engine)
            job = submit(store, settings, "Ship order 1", route=ROUTE, clock=clock)
            await Worker(agent, store, clock=clock).run_until_idle()
            skipped[0] = 120.0  # nobody answered within the minute
            handled = await agent.sweep()
            woken = store.get(job.id)
            await Worker(agent, store, clock=clock).run_until_idle()
            return handled, woken, store.get(job.id), agent.services.runs.get(job.id)

    handled, woken, job, record = run(scenario())
    assert [action for _, action in handled] == ["expired"]
    assert woken.status == "queued"
    assert (job.status, record.status) == ("completed", "answered")


def test_a_run_whose_process_died_is_listed_for_requeue(database_url, make_settings):
    from app.services import prepare_database
    from memory.runs import RunStore
    from memory.tables import Run

    engine = prepare_database(make_settings(database_url))
    runs = RunStore(engine)
    for run_id, thread_id in (("died", "t-1"), ("alive", "t-2")):
        runs.start(
            Run(
                id=run_id,
                thread_id=thread_id,
                tenant_id="acme",
                user_id="ada",
                route=ROUTE,
                status="running",
                question="?",
            )
        )
    from memory.threads import ThreadLeases

    ThreadLeases(engine).acquire("t-2", "alive", now=time.time(), ttl_s=60)

    (item,) = needs_attention(engine, ADMIN, now=time.time())
    assert (item.target, item.status, item.action) == ("died", "abandoned", "requeue")


def test_the_runs_and_dlq_tab_shows_each_entry_with_its_action():
    from app.operators import Attention
    from ui.tabs import queue as render

    item = Attention(
        "run", "r-1", "r-1", "acme", "failed", "direct", "scripted server error", "requeue", "resumes", 0.0
    )
    html = render.attention_html([item])
    assert 'data-target="r-1"' in html and 'data-action="requeue"' in html and "scripted server error" in html
    assert render.attention_choice(item) == ("r-1 · failed · direct", "r-1")
