"""Consuming the entity event log: a polling cursor, and handlers that run once per event.

Handlers subscribe by polling :meth:`EventLog.after` with the id of the last event they saw (the same on
SQLite and PostgreSQL); on PostgreSQL a :class:`ChangeSignal` wakes them as soon as a change commits
(LISTEN/NOTIFY), so the poll interval only bounds the wait on SQLite. :meth:`EventLog.handle` claims the
event for the handler with one insert on the unique (handler, event_id) row, so a redelivered event, or the
same event picked up by two workers, runs the handler once. A handler that keeps failing goes to the
dead-letter queue with the event (and the run that failed last, when the handler says which); an operator's
requeue gives the handling a fresh set of attempts, and the subscriber's next pass runs it again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Literal

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Engine

from core.errors import HandlerFailed
from memory.engine import is_sqlite, libpq_url
from memory.tables import DeadLetter, EntityEvent, EventHandling, table_of
from memory.upsert import insert_ignore

CHANNEL = "firebreak_entity_events"  # NOTIFY'd in each change's transaction, so delivered at its commit
EVENTS = table_of(EntityEvent)
HANDLINGS = table_of(EventHandling)
DEAD = table_of(DeadLetter)

# done: this call ran the handler · duplicate: it had already succeeded · in_progress: another worker
# holds the claim · failed: it raised and may be retried · dead: it failed its last attempt (dead-lettered) ·
# waiting: the handler returned "waiting" (its run waits for a person); it is handled again, without counting
# an attempt, until it is done or fails
Outcome = Literal["done", "duplicate", "in_progress", "failed", "dead", "waiting"]


def is_event_letter(letter: DeadLetter) -> bool:
    """Whether a dead letter holds an event a handler kept failing on (else it holds a queued run)."""
    return letter.run_id.startswith("evt:")


def dead_letter_id(event_id: str) -> str:
    """The ``run_id`` of the dead letter of an event (dead letters are keyed by a 36-character run id)."""
    return f"evt:{uuid.UUID(event_id).hex}"


class EventLog:
    """Reads the entity event log and runs handlers on its events at most once successfully."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 3,
        lease_s: float = 60.0,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.max_attempts = max_attempts
        self.lease_s = lease_s  # a claim older than this belongs to a worker that died; it may be taken over

    def after(self, tenant_id: str, last_id: int, limit: int = 100) -> list[EntityEvent]:
        """The tenant's events with an id above ``last_id``, oldest first: pass the last id back next time."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(EVENTS)
                .where(EVENTS.c.tenant_id == tenant_id, EVENTS.c.id > last_id)
                .order_by(EVENTS.c.id)
                .limit(limit)
            ).all()
        return [EntityEvent(**row._mapping) for row in rows]

    def handle(self, handler: str, event: EntityEvent, fn: Callable[[EntityEvent], object]) -> Outcome:
        """Run ``fn(event)`` unless ``handler`` already handled (or is handling) it; say what happened. ``fn``
        returning ``"waiting"`` leaves the event waiting: :meth:`retries` offers it again."""
        claim = self._claim(handler, event.event_id)
        if isinstance(claim, str):
            return claim
        try:
            waiting = fn(event) == "waiting"
        except Exception as exc:  # any failure of the handler is recorded and retried (or dead), never lost
            run_id, final = (exc.run_id, exc.final) if isinstance(exc, HandlerFailed) else (None, False)
            return self._finish(handler, event, claim, f"{type(exc).__name__}: {exc}", run_id=run_id, final=final)
        return self._finish(handler, event, claim, None, waiting=waiting)

    def requeue(self, letter: DeadLetter, *, now: float) -> bool:
        """Give the dead handling of ``letter``'s event a fresh set of attempts: the handler's subscriber runs it
        again on its next pass (:meth:`retries`). False when it is no longer dead (requeued already)."""
        handler, event_id = letter.partial_state["handler"], letter.partial_state["event"]["event_id"]
        with self.engine.begin() as connection:
            moved = connection.execute(
                update(HANDLINGS)
                .where(HANDLINGS.c.handler == handler, HANDLINGS.c.event_id == event_id, HANDLINGS.c.status == "dead")
                .values(status="failed", attempts=0, updated_at=now)
            ).rowcount
            if moved == 1:
                connection.execute(
                    update(DEAD).where(DEAD.c.id == letter.id, DEAD.c.requeued_at.is_(None)).values(requeued_at=now)
                )
        return moved == 1

    def retries(self, handler: str, tenant_id: str, limit: int = 100) -> list[EntityEvent]:
        """Events of the tenant whose handling by ``handler`` failed, waits or was abandoned: call ``handle``
        again."""
        abandoned = and_(HANDLINGS.c.status == "running", HANDLINGS.c.updated_at <= self.clock() - self.lease_s)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(EVENTS)
                .join(HANDLINGS, HANDLINGS.c.event_id == EVENTS.c.event_id)
                .where(
                    HANDLINGS.c.handler == handler,
                    EVENTS.c.tenant_id == tenant_id,
                    or_(HANDLINGS.c.status.in_(["failed", "waiting"]), abandoned),
                )
                .order_by(EVENTS.c.id)
                .limit(limit)
            ).all()
        return [EntityEvent(**row._mapping) for row in rows]

    def _claim(self, handler: str, event_id: str) -> int | Outcome:
        """The attempt number this call now holds, or the outcome that says why it holds none."""
        now = self.clock()
        with self.engine.begin() as connection:
            fresh = {"handler": handler, "event_id": event_id, "status": "running", "attempts": 1, "updated_at": now}
            if insert_ignore(connection, HANDLINGS, fresh):
                return 1
            row = connection.execute(
                select(HANDLINGS).where(HANDLINGS.c.handler == handler, HANDLINGS.c.event_id == event_id)
            ).one()
        if row.status == "done":
            return "duplicate"
        if row.status == "dead":
            return "dead"
        if row.status == "running" and row.updated_at + self.lease_s > now:
            return "in_progress"
        # A failed attempt, or one whose worker died: take it over, compare-and-set on the row as read. Looking
        # again at a waiting one is no new attempt.
        attempt = row.attempts if row.status == "waiting" else row.attempts + 1
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(HANDLINGS)
                .where(HANDLINGS.c.id == row.id, HANDLINGS.c.status == row.status, HANDLINGS.c.attempts == row.attempts)
                .values(status="running", attempts=attempt, updated_at=now)
            ).rowcount
        return attempt if taken == 1 else self._claim(handler, event_id)

    def _finish(
        self,
        handler: str,
        event: EntityEvent,
        attempt: int,
        error: str | None,
        *,
        waiting: bool = False,
        run_id: str | None = None,
        final: bool = False,
    ) -> Outcome:
        """Record the attempt's outcome; the last failed attempt, or a ``final`` one (nothing to retry),
        dead-letters the event in the same transaction."""
        retry = attempt < self.max_attempts and not final
        status: Outcome = "done" if error is None else "failed" if retry else "dead"
        status = "waiting" if waiting else status
        now = self.clock()
        with self.engine.begin() as connection:
            # Only while this attempt still holds the claim: a worker that outlived its lease must not
            # overwrite the outcome of the one that took over.
            recorded = connection.execute(
                update(HANDLINGS)
                .where(
                    HANDLINGS.c.handler == handler,
                    HANDLINGS.c.event_id == event.event_id,
                    HANDLINGS.c.status == "running",
                    HANDLINGS.c.attempts == attempt,
                )
                .values(status=status, error=error, updated_at=now)
            ).rowcount
            if status == "dead" and recorded == 1:
                tried = "had its run stopped (not retried)" if final else f"failed {attempt} times"
                connection.execute(
                    insert(DEAD).values(
                        run_id=dead_letter_id(event.event_id),
                        tenant_id=event.tenant_id,
                        reason=(
                            f"handler {handler} {tried} on event {event.event_id} "
                            f"({event.kind} {event.key} version {event.version}): {error}"
                        ),
                        attempts=attempt,
                        partial_state={"handler": handler, "event": event.model_dump(), "run_id": run_id},
                        tool_outputs=[],
                        decisions=[],
                        created_at=now,
                    )
                )
        return status


class ChangeSignal:
    """Wait for the event log to grow: LISTEN/NOTIFY on PostgreSQL, a plain sleep of the timeout on SQLite."""

    def __init__(self, database_url: str) -> None:
        self._connection = None
        if not is_sqlite(database_url):
            import psycopg  # only here: a process on SQLite never loads the PostgreSQL driver

            self._connection = psycopg.connect(libpq_url(database_url), autocommit=True)
            self._connection.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout_s: float) -> None:
        """Return when a change was committed (PostgreSQL), or after ``timeout_s`` at the latest."""
        if self._connection is None:
            time.sleep(timeout_s)
            return
        for _ in self._connection.notifies(timeout=timeout_s, stop_after=1):
            pass

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
