"""Storage for the durable run queue, the dead-letter queue and alerts.

A claim is one statement: ``UPDATE … WHERE id = (SELECT … LIMIT 1 FOR UPDATE
SKIP LOCKED) RETURNING *`` on PostgreSQL, the same without the row lock on
SQLite (which serialises writers). A run whose worker died is claimable again
once its lease has expired. Every later write checks that the writer still
holds the lease, so a worker that lost its lease can never overwrite the
outcome of the one that took over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from memory.request_keys import RequestKey, RequestKeys
from memory.tables import Alert, DeadLetter, QueuedRun, table_of
from memory.upsert import insert_ignore

QUEUE = table_of(QueuedRun)
DEAD = table_of(DeadLetter)


class QueueStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def submit(self, run: QueuedRun) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(run)
            session.commit()

    def submit_keyed(self, run: QueuedRun, request: RequestKey, keys: RequestKeys, *, now: float) -> QueuedRun:
        """Queue ``run`` under a caller's idempotency key, in the transaction that claims the key: a request
        sent twice (or by two processes at once) queues one run, and the repeat gets that run back."""
        with self.engine.begin() as connection:
            owner = keys.claim_in(connection, request, run.id, now=now)
            if owner == run.id:
                connection.execute(insert(QUEUE).values(**run.model_dump()))
                return run
        earlier = self.get(owner)
        assert earlier is not None, "a submit's key is claimed in the transaction that queues its run"
        return earlier

    def claim(self, worker: str, *, now: float, lease_s: float) -> QueuedRun | None:
        """Take the next due run (or one whose worker's lease ran out) for ``lease_s`` seconds."""
        due = or_(
            and_(QUEUE.c.status == "queued", QUEUE.c.available_at <= now),
            and_(QUEUE.c.status == "running", QUEUE.c.lease_expires_at < now),
        )
        candidate = (
            select(QUEUE.c.id)
            .where(due)
            .order_by(QUEUE.c.available_at, QUEUE.c.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = (
            update(QUEUE)
            .where(QUEUE.c.id == candidate)
            .values(
                status="running",
                lease_owner=worker,
                lease_expires_at=now + lease_s,
                attempts=QUEUE.c.attempts + 1,
                updated_at=now,
            )
            .returning(*QUEUE.columns)
        )
        with self.engine.begin() as connection:
            # No lease is granted for longer than ``lease_s``: one that ends later than that was granted by a
            # clock that has since jumped back, and would hold its run for as long as the jump. It now ends
            # ``lease_s`` from here, so a live worker keeps a full lease and a dead one's run is rescued.
            connection.execute(
                update(QUEUE)
                .where(QUEUE.c.status == "running", QUEUE.c.lease_expires_at > now + lease_s)
                .values(lease_expires_at=now + lease_s)
            )
            row = connection.execute(statement).first()
        return None if row is None else QueuedRun(**row._mapping)

    def settle(self, run_id: str, worker: str, *, now: float, **values: Any) -> bool:
        """Write the outcome of a claimed run, only while ``worker`` still holds its lease."""
        with self.engine.begin() as connection:
            return (
                connection.execute(
                    update(QUEUE)
                    .where(QUEUE.c.id == run_id, QUEUE.c.lease_owner == worker, QUEUE.c.status == "running")
                    .values(**values, updated_at=now)
                ).rowcount
                == 1
            )

    def wake(self, run_id: str, *, now: float) -> bool:
        """Put a run that waited for a person back in the queue, due now, with the attempts it has used:
        a worker resumes it (with retries, backoff and the dead-letter queue). False if it is not waiting."""
        with self.engine.begin() as connection:
            return (
                connection.execute(
                    update(QUEUE)
                    .where(QUEUE.c.id == run_id, QUEUE.c.status == "waiting")
                    .values(status="queued", available_at=now, lease_owner=None, updated_at=now)
                ).rowcount
                == 1
            )

    def requeue(self, run_id: str, *, now: float) -> bool:
        """Put a dead (or completed) run back in the queue with a fresh set of attempts."""
        with self.engine.begin() as connection:
            moved = (
                connection.execute(
                    update(QUEUE)
                    .where(QUEUE.c.id == run_id, QUEUE.c.status.in_(("dead", "completed")))
                    .values(status="queued", attempts=0, available_at=now, lease_owner=None, updated_at=now)
                ).rowcount
                == 1
            )
            if moved:
                connection.execute(
                    update(DEAD).where(DEAD.c.run_id == run_id, DEAD.c.requeued_at.is_(None)).values(requeued_at=now)
                )
        return moved

    def enqueue(self, job: QueuedRun) -> bool:
        """Queue a run that was never queued (asked in the chat, the CLI or the API), under its own run id, so a
        worker resumes it from its checkpoint; if the queue already has it, requeue it instead."""
        with self.engine.begin() as connection:
            if insert_ignore(connection, QUEUE, job.model_dump()):
                return True
        return self.requeue(job.id, now=job.available_at)

    def get(self, run_id: str) -> QueuedRun | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(QueuedRun, run_id)

    def jobs(self, run_ids: Iterable[str]) -> dict[str, QueuedRun]:
        """The queue's rows of these runs (a run that was never queued has none)."""
        with Session(self.engine, expire_on_commit=False) as session:
            rows = session.exec(select(QueuedRun).where(col(QueuedRun.id).in_(set(run_ids)))).scalars().all()  # type: ignore[call-overload]
        return {row.id: row for row in rows}

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(QUEUE.c.status, func.count()).group_by(QUEUE.c.status)).all()
        return {str(status): int(count) for status, count in rows}

    def bury(self, letter: DeadLetter) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(letter)
            session.commit()

    def dead_letters(self, *, tenant_id: str | None = None, include_requeued: bool = False) -> Sequence[DeadLetter]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(DeadLetter).order_by(col(DeadLetter.id).desc())
            if not include_requeued:
                query = query.where(col(DeadLetter.requeued_at).is_(None))
            if tenant_id is not None:
                query = query.where(col(DeadLetter.tenant_id) == tenant_id)
            return session.exec(query).scalars().all()  # type: ignore[call-overload,no-any-return]

    def dead_letter(self, letter_id: int) -> DeadLetter | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(DeadLetter, letter_id)

    def dead_since(self, since: float) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).where(DEAD.c.created_at >= since)).scalar_one())

    def alert(self, alert: Alert) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(alert)
            session.commit()

    def alerts(self, limit: int = 50) -> Sequence[Alert]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(Alert).order_by(col(Alert.id).desc()).limit(limit)
            return session.exec(query).scalars().all()  # type: ignore[call-overload,no-any-return]
