"""Callers' idempotency keys (Stripe's semantics) on the Python API, the queue and ``firebreak ask``: a request
sent again under its key gets the first run and its result, and its email goes out once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run
from sqlmodel import Session, select

from app.services import build_services
from core.errors import IdempotencyKeyConflict, RequestInProgress, ThreadBusy
from evals.scenario import SimulatedTime
from examples.support_desk.tables import OutboxEmail
from graph.agent import Agent
from graph.worker import Worker, submit
from memory.engine import make_engine
from memory.queue import QueueStore
from memory.tables import Run

ROUTE = "scripted/demo"
EMAIL = {"to": "ada@example.com", "subject": "Order 42", "body": "Order 42 has shipped."}
ASK = "Email Ada that order 42 shipped."
SEND = ({"tool_calls": [{"name": "send_email", "arguments": EMAIL}]}, {"text": "I emailed Ada."})
FIREBREAK = str(Path(sys.executable).parent / "firebreak")


def keyed(make_settings, database_url, script, **overrides):
    """A fixed gate score: the email goes out without asking anyone, so only the key can stop a second one."""
    return make_settings(database_url, script=script, gate={"estimator": "fixed"}, **overrides)


def rows(engine, table) -> list:
    with Session(engine) as session:
        return list(session.exec(select(table)).all())


def test_the_same_request_under_its_key_returns_the_first_run_and_sends_one_email(
    database_url, make_settings, write_script
):
    settings = keyed(make_settings, database_url, write_script(*SEND))

    async def twice():
        async with Agent.open(settings) as agent:
            first = await agent.ask(ASK, route=ROUTE, idempotency_key="order-42")
            again = await agent.ask(ASK, route=ROUTE, idempotency_key="order-42")
            return first, again, agent.settle_script(again), agent.services.engine

    first, again, settled, engine = run(twice())

    assert first.status == "answered" and again == first and settled.status == "answered"
    assert len(rows(engine, OutboxEmail)) == 1
    assert len(rows(engine, Run)) == 1


def test_another_request_under_a_used_key_is_refused_and_runs_nothing(database_url, make_settings, write_script):
    settings = keyed(make_settings, database_url, write_script(*SEND))

    async def conflict():
        async with Agent.open(settings) as agent:
            first = await agent.ask(ASK, route=ROUTE, idempotency_key="order-42")
            with pytest.raises(IdempotencyKeyConflict, match=f"'order-42' was already used.*run {first.run_id}"):
                await agent.ask("Email Ada that order 43 shipped.", route=ROUTE, idempotency_key="order-42")
            agent.settle_script(first)
            return agent.services.engine

    engine = run(conflict())

    assert len(rows(engine, Run)) == 1 and len(rows(engine, OutboxEmail)) == 1


def test_the_same_key_of_another_tenant_names_its_own_request(database_url, make_settings, write_script):
    settings = keyed(make_settings, database_url, write_script(*SEND, *SEND))

    async def two_tenants():
        async with Agent.open(settings) as agent:
            acme = await agent.ask(ASK, route=ROUTE, tenant_id="acme", idempotency_key="order-42")
            globex = await agent.ask(ASK, route=ROUTE, tenant_id="globex", idempotency_key="order-42")
            return acme, globex, agent.services.engine

    acme, globex, engine = run(two_tenants())

    assert acme.run_id != globex.run_id and acme.status == globex.status == "answered"
    assert sorted(email.tenant_id for email in rows(engine, OutboxEmail)) == ["acme", "globex"]


def test_an_expired_key_names_a_new_request(sqlite_url, make_settings, write_script):
    settings = keyed(make_settings, sqlite_url, write_script(*SEND, *SEND), idempotency={"request_key_ttl_s": 60.0})
    clock = SimulatedTime()

    async def a_minute_apart():
        async with Agent.open(settings, services=build_services(settings, clock=clock)) as agent:
            first = await agent.ask(ASK, route=ROUTE, idempotency_key="order-42")
            clock.now += 61
            later = await agent.ask(ASK, route=ROUTE, idempotency_key="order-42")
            return first, later, agent.services.engine

    first, later, engine = run(a_minute_apart())

    assert first.run_id != later.run_id and later.status == "answered"
    assert len(rows(engine, OutboxEmail)) == 2


def test_a_repeat_while_the_first_run_is_still_going_says_so_with_its_run_id(sqlite_url, make_settings, write_script):
    slow = {"delay_s": 2.0, "text": "We open at nine."}
    settings = keyed(make_settings, sqlite_url, write_script(slow))

    async def overlapping():
        async with Agent.open(settings) as agent:
            first = asyncio.create_task(agent.ask("When do you open?", route=ROUTE, idempotency_key="k"))
            while not agent.services.runs.recent(limit=1):
                await asyncio.sleep(0.05)
            with pytest.raises(RequestInProgress, match="is still running as run") as refused:
                await agent.ask("When do you open?", route=ROUTE, idempotency_key="k")
            return await first, refused.value

    first, refused = run(overlapping())

    assert refused.run_id == first.run_id and first.status == "answered"


def test_a_request_that_never_started_leaves_its_key_free(sqlite_url, make_settings, write_script):
    settings = keyed(make_settings, sqlite_url, write_script(*SEND))

    async def busy_then_free():
        async with Agent.open(settings) as agent:
            threads, now = agent.services.threads, agent.services.clock()
            threads.acquire("t-1", "another-run", now=now, ttl_s=60)
            with pytest.raises(ThreadBusy):
                await agent.ask(ASK, route=ROUTE, thread_id="t-1", idempotency_key="order-42")
            threads.release("t-1", "another-run")
            return await agent.ask(ASK, route=ROUTE, thread_id="t-1", idempotency_key="order-42")

    assert run(busy_then_free()).status == "answered"


def test_submitting_twice_under_a_key_queues_one_run_that_runs_once(database_url, make_settings, write_script):
    settings = keyed(make_settings, database_url, write_script(*SEND))

    async def queued_twice():
        async with Agent.open(settings) as agent:
            store = QueueStore(agent.services.engine)
            first = submit(store, settings, ASK, route=ROUTE, idempotency_key="order-42")
            again = submit(store, settings, ASK, route=ROUTE, idempotency_key="order-42")
            with pytest.raises(IdempotencyKeyConflict):
                submit(store, settings, "Email Ada that order 43 shipped.", route=ROUTE, idempotency_key="order-42")
            processed = await Worker(agent, store).run_until_idle()
            return first, again, processed, store, agent.services.engine

    first, again, processed, store, engine = run(queued_twice())

    assert again.id == first.id and processed == 1
    assert store.counts() == {"completed": 1}
    assert len(rows(engine, OutboxEmail)) == 1


def test_firebreak_ask_sent_twice_with_an_idempotency_key_runs_once(tmp_path, write_script):
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    sends = write_script(*SEND, name="send.jsonl")
    nothing = write_script(name="nothing.jsonl")  # the second process must not call the model at all
    args = ["ask", "--json", "--model", ROUTE, "--idempotency-key", "order-42"]

    def ask(script: str, text: str = ASK) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "FIREBREAK_DATABASE_URL": database_url, "FIREBREAK_SCRIPT": script}
        env["FIREBREAK_GATE__ESTIMATOR"] = "fixed"
        return subprocess.run([FIREBREAK, *args, text], env=env, capture_output=True, text=True, timeout=180)

    first, again, other = ask(sends), ask(nothing), ask(nothing, "Email Ada that order 43 shipped.")

    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert other.returncode == 1 and other.stderr.count("\n") == 1
    assert other.stderr.startswith("error: idempotency key 'order-42' was already used for a different request")
    assert len(rows(make_engine(database_url), OutboxEmail)) == 1
