"""Repository for escalations: questions for people, their answers, and their deadlines.

Answering is a compare-and-set on ``status = 'open'``: two reviewers answering
the same escalation cannot both win, and a late answer to an expired one is
refused with the reason, never applied silently. Passing up and expiring are
compare-and-sets too (on the status and the level as the sweeper read them), so
any number of processes may sweep at once and each transition happens once.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.errors import EscalationClosed, FirebreakError
from memory.tables import Escalation, table_of
from memory.upsert import insert_ignore

ESCALATIONS = table_of(Escalation)


class EscalationStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open(self, escalations: Sequence[Escalation]) -> None:
        """Insert each escalation unless it exists (a resumed node opens the same ids again)."""
        with self.engine.begin() as connection:
            for escalation in escalations:
                insert_ignore(connection, ESCALATIONS, escalation.model_dump())

    def get(self, escalation_id: str) -> Escalation | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Escalation, escalation_id)

    def find(self, prefix: str) -> Escalation:
        """The escalation whose id is ``prefix`` or starts with it (ids are long; people type eight characters)."""
        with Session(self.engine, expire_on_commit=False) as session:
            rows = session.exec(select(Escalation).where(col(Escalation.id).startswith(prefix)).limit(2)).all()
        if not rows:
            raise FirebreakError(f"no escalation {prefix!r}; `firebreak escalations list` shows the open ones")
        if len(rows) > 1:
            raise FirebreakError(f"{prefix!r} names more than one escalation; give more of its id")
        return rows[0]

    def answer(self, escalation_id: str, answer: str, *, by: str, note: str | None, now: float) -> Escalation:
        """Record ``answer``; raises :class:`EscalationClosed` if someone (or the clock) closed it first."""
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(ESCALATIONS)
                .where(ESCALATIONS.c.id == escalation_id, ESCALATIONS.c.status == "open")
                .values(status="answered", answer=answer, note=note, answered_by=by, answered_at=now)
                .returning(ESCALATIONS.c.id)
            ).first()
        row = self.get(escalation_id)
        if row is None:
            raise FirebreakError(f"no escalation {escalation_id!r}")
        if taken is None:
            who = f" by {row.answered_by}" if row.answered_by else ""
            raise EscalationClosed(f"escalation {escalation_id[:8]} is already {row.status}{who} ({row.answer!r})")
        return row

    def expire(self, escalation_id: str, answer: str, *, now: float) -> bool:
        """Close an overdue escalation with its policy's answer; False if it was answered or expired
        meanwhile (by a person, or by another process's sweep)."""
        with self.engine.begin() as connection:
            return (
                connection.execute(
                    update(ESCALATIONS)
                    .where(ESCALATIONS.c.id == escalation_id, ESCALATIONS.c.status == "open")
                    .values(status="expired", answer=answer, answered_by="timeout", answered_at=now)
                    .returning(ESCALATIONS.c.id)
                ).first()
                is not None
            )

    def escalate(self, escalation_id: str, *, from_level: int, due_at: float) -> bool:
        """Pass an overdue escalation from ``from_level`` one level up with a new deadline; False if it is no
        longer open at that level: another sweep passed it up first (from a read as old as the caller's), or
        someone answered it."""
        with self.engine.begin() as connection:
            return (
                connection.execute(
                    update(ESCALATIONS)
                    .where(
                        ESCALATIONS.c.id == escalation_id,
                        ESCALATIONS.c.status == "open",
                        ESCALATIONS.c.level == from_level,
                    )
                    .values(level=ESCALATIONS.c.level + 1, due_at=due_at)
                    .returning(ESCALATIONS.c.id)
                ).first()
                is not None
            )

    def mark_delivered(self, ids: Sequence[str], *, now: float) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(ESCALATIONS).where(ESCALATIONS.c.id.in_(list(ids))).values(delivered_at=now))

    def restart_late_deadlines(self, escalation_type: str, *, now: float, timeout_s: float) -> int:
        """Bring open escalations of a type due later than ``now + timeout_s`` (no deadline is ever set that
        far: a clock that has since jumped back set it) to ``now + timeout_s``; returns how many."""
        with self.engine.begin() as connection:
            return int(
                connection.execute(
                    update(ESCALATIONS)
                    .where(
                        ESCALATIONS.c.status == "open",
                        ESCALATIONS.c.type == escalation_type,
                        ESCALATIONS.c.due_at > now + timeout_s,
                    )
                    .values(due_at=now + timeout_s)
                ).rowcount
            )

    def overdue(self, now: float) -> Sequence[Escalation]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(Escalation).where(Escalation.status == "open", col(Escalation.due_at) < now)
            return session.exec(query.order_by(col(Escalation.due_at))).all()

    def for_run(self, run_id: str) -> Sequence[Escalation]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(Escalation).where(Escalation.run_id == run_id).order_by(col(Escalation.created_at))
            return session.exec(query).all()

    def undelivered_notes(self, thread_id: str) -> Sequence[Escalation]:
        """Answered collaborative escalations of a thread that the agent has not read yet."""
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(Escalation).where(
                Escalation.thread_id == thread_id,
                Escalation.type == "collaborative",
                Escalation.status == "answered",
                col(Escalation.delivered_at).is_(None),
            )
            return session.exec(query.order_by(col(Escalation.answered_at))).all()

    def list(
        self,
        *,
        status: str | None = "open",
        audience: str | None = None,
        thread_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[Escalation]:
        """Oldest first for open ones (the queue a reviewer works through), newest first otherwise."""
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(Escalation)
            if status is not None:
                query = query.where(Escalation.status == status)
            if audience is not None:
                query = query.where(Escalation.audience == audience)
            if thread_id is not None:
                query = query.where(Escalation.thread_id == thread_id)
            order = col(Escalation.created_at) if status == "open" else col(Escalation.created_at).desc()
            return session.exec(query.order_by(order).limit(limit)).all()

    def answered(self, limit: int = 100_000) -> Sequence[Escalation]:
        """Every closed escalation, oldest first: the labeled data."""
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(Escalation).where(col(Escalation.status).in_(["answered", "expired"]))
            return session.exec(query.order_by(col(Escalation.answered_at)).limit(limit)).all()
