"""The durable run queue and the dead-letter queue on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
import time

import pytest
from conftest import run
from sqlalchemy import update

from evals.resilience import workers_killed
from graph.agent import Agent
from graph.worker import Worker, submit
from memory.queue import QUEUE, QueueStore

FAST = {"retries": {"attempts": 1}, "queue": {"retry_base_delay_s": 0.0}}
EMAIL = {"to": "ada@example.com", "subject": "Order", "body": "Shipped."}


def rules(write_script, *lines, name="rules.jsonl") -> str:
    return write_script(*[{"repeat": True, **line} for line in lines], name=name)


async def work(settings, until_idle=True) -> tuple[Agent, QueueStore]:
    agent = await Agent.create(settings)
    store = QueueStore(agent.services.engine)
    if until_idle:
        await Worker(agent, store).run_until_idle()
    return agent, store


def test_a_submitted_run_is_answered_by_a_worker(database_url, make_settings, write_script):
    settings = make_settings(database_url, script=write_script({"text": "Paris."}), **FAST)

    async def scenario():
        agent, store = await work(settings, until_idle=False)
        job = submit(store, settings, "Capital of France?", route="scripted/demo")
        await Worker(agent, store).run_until_idle()
        await agent.close()
        return store.get(job.id), agent.services.runs.get(job.id)

    job, record = run(scenario())
    assert (job.status, job.attempts) == ("completed", 1)
    assert (record.status, record.answer) == ("answered", "Paris.")


def test_a_run_that_always_fails_is_dead_lettered_after_exactly_three_attempts_then_requeued(
    database_url, make_settings, write_script
):
    broken = make_settings(database_url, script=rules(write_script, {"error": "server"}), **FAST)
    fixed = make_settings(database_url, script=write_script({"text": "Recovered."}, name="fixed.jsonl"), **FAST)

    async def fail_then_fix():
        agent, store = await work(broken, until_idle=False)
        job = submit(store, broken, "Price of sku 42?", route="scripted/demo")
        await Worker(agent, store).run_until_idle()
        await agent.close()
        dead_job, (letter,) = store.get(job.id), store.dead_letters()
        calls = len(agent.services.runs.model_calls(job.id))

        agent, store = await work(fixed, until_idle=False)
        assert store.requeue(job.id, now=time.time())
        await Worker(agent, store).run_until_idle()
        await agent.close()
        return dead_job, letter, calls, store.get(job.id), agent.services.runs.get(job.id), store

    dead_job, letter, calls, job, record, store = run(fail_then_fix())
    assert (dead_job.status, dead_job.attempts, calls) == ("dead", 3, 3)
    assert letter.attempts == 3 and "scripted server error" in letter.reason
    assert letter.checkpoint_id is not None
    assert letter.partial_state["messages"][0]["content"] == "Price of sku 42?"
    assert letter.partial_state["next"] == ["summarize"]  # decide's superstep, where a resume starts again
    assert [d["kind"] for d in letter.decisions] == []  # it never got past its first model call
    assert (job.status, record.status, record.answer) == ("completed", "answered", "Recovered.")
    assert store.dead_letters() == []  # requeued letters leave the list


def test_a_rate_limited_run_waits_for_its_retry_after_and_keeps_its_attempts(database_url, make_settings, write_script):
    settings = make_settings(
        database_url, script=rules(write_script, {"text": "Paris."}), rate_limits={"user": {"requests": 1}}, **FAST
    )

    async def scenario():
        agent, store = await work(settings, until_idle=False)
        first = submit(store, settings, "Capital of France?", route="scripted/demo")
        second = submit(store, settings, "Capital of Italy?", route="scripted/demo")
        await Worker(agent, store).run_until_idle()
        await agent.close()
        return store.get(first.id), store.get(second.id)

    first, second = run(scenario())
    assert first.status == "completed"
    # Kept: the second question, queued again for when the minute has room, with all its attempts left.
    assert (second.status, second.attempts) == ("queued", 0)
    retry_after = float(re.search(r"retry after (\d+) s", second.last_error).group(1))
    assert second.available_at - second.updated_at == pytest.approx(retry_after, abs=1)


def test_a_task_type_can_have_its_own_attempt_limit(database_url, make_settings, write_script):
    settings = make_settings(
        database_url,
        script=rules(write_script, {"error": "server"}),
        **{**FAST, "queue": {**FAST["queue"], "max_attempts_by_task": {"nightly_report": 5}}},
    )

    async def scenario():
        agent, store = await work(settings, until_idle=False)
        nightly = submit(store, settings, "Build the report", route="scripted/demo", task_type="nightly_report")
        ordinary = submit(store, settings, "Answer a question", route="scripted/demo")
        await Worker(agent, store).run_until_idle()
        await agent.close()
        return store.get(nightly.id), store.get(ordinary.id)

    nightly, ordinary = run(scenario())
    assert (nightly.status, nightly.attempts, nightly.max_attempts) == ("dead", 5, 5)
    assert (ordinary.status, ordinary.attempts, ordinary.max_attempts) == ("dead", 3, 3)


def test_two_workers_claiming_at_once_never_take_the_same_run(database_url, make_settings):
    settings = make_settings(database_url)

    async def setup():
        agent = await Agent.create(settings)
        return agent, QueueStore(agent.services.engine)

    agent, store = run(setup())
    jobs = {submit(store, settings, f"question {n}").id for n in range(20)}
    claimed: list[str] = []
    start = threading.Barrier(4)

    def claimer(name: str) -> None:
        start.wait()
        while (job := store.claim(name, now=time.time(), lease_s=60)) is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run(agent.close())
    assert sorted(claimed) == sorted(jobs)


def test_a_dead_workers_run_is_rescued_when_its_lease_expires(database_url, make_settings):
    settings = make_settings(database_url)

    async def setup():
        agent = await Agent.create(settings)
        return agent, QueueStore(agent.services.engine)

    agent, store = run(setup())
    job = submit(store, settings, "question")
    assert store.claim("dead-worker", now=time.time(), lease_s=60).id == job.id
    assert store.claim("other", now=time.time(), lease_s=60) is None  # leased: not claimable
    with store.engine.begin() as connection:  # the dead worker's lease runs out
        connection.execute(update(QUEUE).where(QUEUE.c.id == job.id).values(lease_expires_at=time.time() - 1))

    rescued = store.claim("rescuer", now=time.time(), lease_s=60)
    assert (rescued.id, rescued.attempts, rescued.lease_owner) == (job.id, 2, "rescuer")
    assert not store.settle(job.id, "dead-worker", now=time.time(), status="completed")  # it lost its lease
    run(agent.close())


@pytest.mark.slow
def test_killing_workers_mid_run_loses_no_run_and_duplicates_no_email(tmp_path):
    scenario = workers_killed(tmp_path, runs=40, kills=3)

    assert scenario.figures["lost_runs"] == 0
    assert scenario.figures["duplicate_side_effects"] == 0
    assert scenario.figures["completed_without_their_email"] == 0
    assert scenario.figures["completed"] + scenario.figures["dead_lettered"] == 40
    assert scenario.passed, scenario.figures
