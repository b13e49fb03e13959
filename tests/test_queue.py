"""The durable run queue and the dead-letter queue on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import run
from sqlalchemy import update
from sqlmodel import Session, func, select

from app.queue.worker import Worker, submit
from graph.agent import Agent
from memory.queue import QUEUE, QueueStore
from memory.tables import OutboxEmail, Run

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
    assert letter.partial_state["next"] == ["decide"]
    assert [d["kind"] for d in letter.decisions] == []  # it never got past its first model call
    assert (job.status, record.status, record.answer) == ("completed", "answered", "Recovered.")
    assert store.dead_letters() == []  # requeued letters leave the list


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
def test_killing_workers_mid_run_loses_no_run_and_duplicates_no_email(tmp_path, write_script):
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    script = rules(
        write_script,
        {"after": "user", "tool_calls": [{"name": "send_email", "arguments": EMAIL}]},
        {"after": "tool", "text": "Sent."},
    )
    config = tmp_path / "worker.toml"
    config.write_text(
        f'database_url = "{database_url}"\nscript = "{script}"\n'
        "[agent]\nrun_wall_clock_s = 4.0\n[queue]\nlease_s = 5.0\npoll_s = 0.1\nretry_base_delay_s = 0.0\n"
        "[idempotency]\nin_flight_lease_s = 1.0\n[tools.timeouts_s]\nsend_email = 1.0\n"
        # a slow outbox: the kill lands between sending an email and recording the step
        "[faults.send_email]\nlatency_after_ms = 150\n"
    )
    firebreak = str(Path(sys.executable).parent / "firebreak")
    env = {**os.environ, "FIREBREAK_CONFIG": str(config)}
    total = 40
    for n in range(total):
        subprocess.run(
            [firebreak, "submit", "--model", "scripted/demo", f"Email Ada about order {n}"],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        ) if n == 0 else None
    # One process submits the rest quickly (start-up is the slow part of the CLI).
    submitter = (
        "from app.config import load_settings\nfrom app.queue.worker import submit\n"
        "from app.services import prepare_database\nfrom memory.queue import QueueStore\n"
        "s = load_settings()\nq = QueueStore(prepare_database(s))\n"
        f"[submit(q, s, f'Email Ada about order {{n}}', route='scripted/demo') for n in range(1, {total})]\n"
    )
    subprocess.run([sys.executable, "-c", submitter], env=env, check=True, timeout=60)
    store = QueueStore(_engine(database_url))

    for _ in range(3):  # start a worker, let it finish a few runs, kill it mid-run
        worker = subprocess.Popen([firebreak, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        done_before = store.counts().get("completed", 0)
        deadline = time.monotonic() + 60
        while store.counts().get("completed", 0) < done_before + 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    finisher = subprocess.run(
        [firebreak, "worker", "--until-idle"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    time.sleep(5.2)  # the last killed worker's lease runs out
    finisher = subprocess.run(
        [firebreak, "worker", "--until-idle"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert finisher.returncode == 0, finisher.stderr

    counts = store.counts()
    assert counts.get("completed", 0) + counts.get("dead", 0) == total, counts  # none lost
    with Session(store.engine) as session:
        per_run = session.exec(select(OutboxEmail.run_id, func.count()).group_by(OutboxEmail.run_id)).all()
        runs = session.exec(select(Run.id)).all()
    assert len(runs) == total
    assert all(count == 1 for _, count in per_run), per_run  # no duplicated side effect
    assert len(per_run) == counts.get("completed", 0)


def _engine(database_url: str):
    from memory.engine import make_engine

    return make_engine(database_url)
