"""Multi-agent state sync: shared entities written by compare-and-swap, their event log, idempotent handlers.

The seed's failure: three agents fight over one ticket, each sure the other two are wrong. Here every write
is checked against the version it was based on, a lost race re-reads and decides again, the event log
replays to the row, and a change budget ends ping-pong. Real databases, real threads and processes.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.config import load_settings
from core.errors import ChangeBudgetExhausted, EntityExists, StaleEntity
from memory.engine import make_engine
from memory.events import ChangeSignal, EventLog, dead_letter_id
from memory.shared_state import Entity, EntityStore
from memory.tables import DeadLetter, EntityEvent, EventHandling

ROOT = Path(__file__).resolve().parent.parent
TICKET = ("acme", "ticket", "T-1")
AGENTS = ("triage", "billing", "support")
CHANGES_EACH = 20


def migrated(database_url: str) -> Engine:
    # Imported here: the agent subprocesses import this module for `work`, and app.services pulls in the
    # whole product, seconds of start-up per process.
    from app.services import prepare_database

    return prepare_database(load_settings(database_url=database_url))


def new_ticket(store: EntityStore, **data: Any) -> Entity:
    return store.create(*TICKET, {"status": "new", "log": [], "notes": [], **data}, actor="intake")


def agent_change(agent: str, n: int):
    """One agent's n-th change, computed from the ticket as it is now: what a lost update would drop."""

    def change(ticket: Entity) -> dict[str, Any]:
        time.sleep(random.uniform(0.001, 0.004))  # the agent thinks between read and write: the race window
        patch: dict[str, Any] = {"log": [*ticket.data["log"], f"{agent}:{n}"]}
        if agent == "triage":
            patch["priority"] = n
        elif agent == "billing":
            patch["notes"] = [*ticket.data["notes"], f"refund check {n}"]
        else:
            patch["status"] = f"step {n}"
        return patch

    return change


def work(database_url: str, agent: str, start: threading.Barrier | None = None) -> int:
    """One agent making its changes to the ticket; returns how many it made. Also run in subprocesses."""
    store = EntityStore(make_engine(database_url), max_changes=100)
    if start is None:
        print("ready", flush=True)
        sys.stdin.readline()  # the test says go once every process is ready, so they really race
    else:
        start.wait()
    # Every lost race is another agent's successful change, so 50 attempts can never run out here.
    for n in range(CHANGES_EACH):
        store.update_with_retry(*TICKET, agent_change(agent, n), actor=agent, correlation_id="c-1", attempts=50)
    return CHANGES_EACH


def assert_consistent(store: EntityStore, changes_made: int) -> None:
    final = store.get(*TICKET)
    events = store.history(*TICKET)
    assert final is not None
    assert (final.version, final.changes) == (1 + changes_made, changes_made)
    for agent in AGENTS:  # no lost update: every change of every agent is there, in its order
        assert [entry for entry in final.data["log"] if entry.startswith(agent)] == [
            f"{agent}:{n}" for n in range(CHANGES_EACH)
        ]
    assert final.data["notes"] == [f"refund check {n}" for n in range(CHANGES_EACH)]
    assert (final.data["priority"], final.data["status"]) == (CHANGES_EACH - 1, f"step {CHANGES_EACH - 1}")
    assert [event.version for event in events] == list(range(1, final.version + 1))
    replayed: dict[str, Any] = {}
    for event in events:
        replayed.update(event.patch)
    assert replayed == final.data
    actors = [event.actor for event in events[1:]]
    assert Counter(actors) == dict.fromkeys(AGENTS, CHANGES_EACH)
    # The agents really raced: one after the other, the actor would change only twice.
    assert sum(a != b for a, b in pairwise(actors)) > len(AGENTS) - 1


def test_a_stale_write_raises_with_the_current_version_and_changes_nothing(database_url):
    store = EntityStore(migrated(database_url))
    seen_by_both = new_ticket(store)
    store.update(seen_by_both, {"status": "open"}, actor="triage")

    with pytest.raises(StaleEntity, match="is at version 2, not 1") as lost:
        store.update(seen_by_both, {"status": "closed"}, actor="support")

    assert (lost.value.current.version, lost.value.current.data["status"]) == (2, "open")
    assert store.get(*TICKET) == lost.value.current
    assert len(store.history(*TICKET)) == 2


def test_creating_an_entity_twice_is_an_error(database_url):
    store = EntityStore(migrated(database_url))
    new_ticket(store)

    with pytest.raises(EntityExists, match="ticket T-1 already exists"):
        new_ticket(store, status="other")
    assert store.get(*TICKET).data["status"] == "new"


def test_every_change_commits_with_its_event(database_url):
    store = EntityStore(migrated(database_url))
    ticket = new_ticket(store)
    for status in ("open", "waiting", "solved"):
        ticket = store.update(ticket, {"status": status}, actor="support", correlation_id="c-9")

    events = store.history(*TICKET)
    assert [(event.version, event.type) for event in events] == [(1, "created")] + [(v, "changed") for v in (2, 3, 4)]
    assert events[-1].after == store.get(*TICKET).data
    assert (events[-1].before["status"], events[-1].patch, events[-1].correlation_id) == (
        "waiting",
        {"status": "solved"},
        "c-9",
    )


def test_a_change_whose_event_cannot_be_written_is_not_applied(database_url):
    engine = migrated(database_url)
    store = EntityStore(engine)
    ticket = new_ticket(store)
    with Session(engine) as session:  # a forged event already claims version 2
        session.add(
            EntityEvent(
                event_id="00000000-0000-0000-0000-000000000002",
                tenant_id="acme",
                kind="ticket",
                key="T-1",
                version=2,
                type="changed",
                actor="forger",
                after={},
                patch={},
                created_at=0.0,
            )
        )
        session.commit()

    with pytest.raises(IntegrityError):
        store.update(ticket, {"status": "open"}, actor="support")
    assert store.get(*TICKET) == ticket


def test_three_agents_in_threads_lose_no_update_and_the_log_replays_to_the_ticket(database_url):
    store = EntityStore(migrated(database_url), max_changes=100)
    new_ticket(store)
    start = threading.Barrier(len(AGENTS))
    made: list[int] = []
    threads = [threading.Thread(target=lambda a=agent: made.append(work(database_url, a, start))) for agent in AGENTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert made == [CHANGES_EACH] * len(AGENTS)
    assert_consistent(store, sum(made))


def test_three_agents_in_processes_lose_no_update_and_the_log_replays_to_the_ticket(database_url):
    store = EntityStore(migrated(database_url), max_changes=100)
    new_ticket(store)
    code = "import sys; sys.path.insert(0, 'tests'); from test_shared_state import work; print(work(*sys.argv[1:]))"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, database_url, agent],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for agent in AGENTS
    ]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready", process.stderr.read()[-2000:]
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=60) for process in processes]
    finally:
        for process in processes:
            process.kill()

    assert [(process.returncode, out.strip()) for process, (out, _) in zip(processes, outputs, strict=True)] == [
        (0, str(CHANGES_EACH))
    ] * len(AGENTS), [err[-2000:] for _, err in outputs]
    assert_consistent(store, CHANGES_EACH * len(AGENTS))


def test_the_change_budget_stops_two_agents_flipping_a_field(database_url):
    store = EntityStore(migrated(database_url), max_changes=10)
    new_ticket(store, owner="nobody")
    stopped: list[ChangeBudgetExhausted] = []

    def keep_taking_it(agent: str) -> None:
        take = lambda ticket: {"owner": agent}  # noqa: E731  (each is sure the ticket is theirs)
        try:
            while True:
                store.update_with_retry(*TICKET, take, actor=agent, attempts=50)
        except ChangeBudgetExhausted as exc:
            stopped.append(exc)

    threads = [threading.Thread(target=keep_taking_it, args=(agent,)) for agent in ("billing", "support")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(stopped) == 2
    assert "ticket T-1 has used its change budget of 10 changes" in str(stopped[0])
    final = store.get(*TICKET)
    assert (final.version, final.changes) == (11, 10)
    assert len(store.history(*TICKET)) == 11


def test_a_lost_race_replans_on_the_winners_state(database_url):
    store = EntityStore(migrated(database_url))
    ticket = new_ticket(store)
    seen: list[str] = []

    def close_unless_reopened(current: Entity) -> dict[str, Any] | None:
        seen.append(current.data["status"])
        if len(seen) == 1:  # another agent escalates the ticket between our read and our write
            store.update(current, {"status": "escalated"}, actor="triage")
        return None if current.data["status"] == "escalated" else {"status": "closed"}

    final = store.update_with_retry(*TICKET, close_unless_reopened, actor="support")

    assert seen == ["new", "escalated"]
    assert (final.version, final.data["status"]) == (ticket.version + 1, "escalated")


def test_the_event_log_is_read_with_a_cursor_per_tenant(database_url):
    engine = migrated(database_url)
    store, log = EntityStore(engine), EventLog(engine)
    for key in ("T-1", "T-2", "T-3"):
        store.create("acme", "ticket", key, {}, actor="intake")
    store.create("globex", "ticket", "T-1", {}, actor="intake")

    first = log.after("acme", 0, limit=2)
    rest = log.after("acme", first[-1].id)

    assert [event.key for event in first + rest] == ["T-1", "T-2", "T-3"]
    assert log.after("acme", rest[-1].id) == []


def test_a_poller_following_the_cursor_during_concurrent_writes_sees_every_event_once(database_url):
    engine = migrated(database_url)
    store, log = EntityStore(engine), EventLog(engine)
    keys = [f"T-{i}" for i in range(3)]
    for key in keys:
        store.create("acme", "ticket", key, {"n": 0}, actor="intake")
    cursor = log.after("acme", 0)[-1].id

    def bump(key: str) -> None:
        for _ in range(15):
            store.update_with_retry("acme", "ticket", key, lambda t: {"n": t.data["n"] + 1}, actor=key)

    writers = [threading.Thread(target=bump, args=(key,)) for key in keys]
    for writer in writers:
        writer.start()
    seen: list[int] = []
    while any(writer.is_alive() for writer in writers) or log.after("acme", cursor):
        for event in log.after("acme", cursor):
            seen.append(event.id)
            cursor = event.id

    assert len(seen) == len(set(seen)) == 45


def test_a_handler_runs_once_per_event_even_when_it_is_delivered_twice(database_url):
    engine = migrated(database_url)
    store, log = EntityStore(engine), EventLog(engine)
    new_ticket(store)
    (created,) = log.after("acme", 0)
    calls: list[str] = []

    outcomes = [log.handle("notify", created, lambda event: calls.append(event.event_id)) for _ in range(2)]

    assert outcomes == ["done", "duplicate"]
    assert calls == [created.event_id]
    assert log.handle("audit", created, lambda event: calls.append("audit")) == "done"  # handlers are separate


def test_a_handler_runs_once_when_two_workers_take_the_same_event_at_once(database_url):
    engine = migrated(database_url)
    store, log = EntityStore(engine), EventLog(engine)
    new_ticket(store)
    (created,) = log.after("acme", 0)
    calls: list[str] = []
    outcomes: list[str] = []
    released = threading.Event()

    def slow_handler(event: EntityEvent) -> None:
        calls.append(event.event_id)
        released.wait(10)  # hold the claim until the other worker has tried

    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        outcomes.append(log.handle("notify", created, slow_handler))
        released.set()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(outcomes) == ["done", "in_progress"]
    assert calls == [created.event_id]
    assert log.handle("notify", created, slow_handler) == "duplicate"


def test_a_handler_that_keeps_failing_goes_to_the_dlq_with_the_event(database_url):
    engine = migrated(database_url)
    store, log = EntityStore(engine), EventLog(engine, max_attempts=3)
    new_ticket(store)
    (created,) = log.after("acme", 0)
    calls: list[int] = []

    def mail_is_down(event: EntityEvent) -> None:
        calls.append(1)
        raise ConnectionError("mail server down")

    outcomes = [log.handle("notify", created, mail_is_down) for _ in range(4)]

    assert outcomes == ["failed", "failed", "dead", "dead"]
    assert len(calls) == 3
    with Session(engine) as session:
        (letter,) = session.exec(select(DeadLetter)).all()
        handling = session.exec(select(EventHandling)).one()
    assert letter.run_id == dead_letter_id(created.event_id)
    assert (letter.tenant_id, letter.attempts) == ("acme", 3)
    assert "handler notify failed 3 times" in letter.reason
    assert "ConnectionError: mail server down" in letter.reason
    assert letter.partial_state["event"]["event_id"] == created.event_id
    assert letter.partial_state["event"]["after"] == created.after
    assert (handling.status, handling.attempts) == ("dead", 3)


def test_failed_handlings_are_listed_for_retry_until_they_succeed(database_url):
    engine = migrated(database_url)
    store, log = EntityStore(engine), EventLog(engine)
    new_ticket(store)
    (created,) = log.after("acme", 0)

    def flaky(event: EntityEvent) -> None:
        raise TimeoutError("crm slow")

    assert log.handle("sync_crm", created, flaky) == "failed"
    assert [event.event_id for event in log.retries("sync_crm", "acme")] == [created.event_id]

    assert log.handle("sync_crm", created, lambda event: None) == "done"
    assert log.retries("sync_crm", "acme") == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_waiting_subscriber_wakes_when_a_change_commits_not_when_its_poll_interval_ends(database_url):
    store = EntityStore(migrated(database_url))
    signal = ChangeSignal(database_url)
    woke = threading.Event()

    def subscriber() -> None:
        signal.wait(timeout_s=600)  # LISTEN/NOTIFY: the commit below is what ends this wait
        woke.set()

    waiting = threading.Thread(target=subscriber, daemon=True)
    waiting.start()  # listening since ChangeSignal() returned
    new_ticket(store)

    assert woke.wait(timeout=60), "the subscriber slept through the change"
    signal.close()
