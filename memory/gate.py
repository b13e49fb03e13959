"""Repository for confidence-gate decisions: every score, its band and what became of the action."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from memory.tables import GateDecision, table_of

DECISIONS = table_of(GateDecision)


class GateStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, decision: GateDecision) -> int:
        with self.engine.begin() as connection:
            row = connection.execute(
                insert(DECISIONS).values(**decision.model_dump(exclude={"id"})).returning(DECISIONS.c.id)
            ).one()
        return int(row.id)

    def settle(self, decision_id: int, outcome: str, *, now: float) -> None:
        """Record what became of the action; the first outcome stands (a replayed step cannot rewrite it)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(DECISIONS)
                .where(DECISIONS.c.id == decision_id, DECISIONS.c.outcome.is_(None))
                .values(outcome=outcome, decided_at=now)
            )

    def settle_escalation(self, escalation_id: str, outcome: str, *, now: float) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(DECISIONS)
                .where(DECISIONS.c.escalation_id == escalation_id, DECISIONS.c.outcome.is_(None))
                .values(outcome=outcome, decided_at=now)
            )

    def for_run(self, run_id: str) -> Sequence[GateDecision]:
        with Session(self.engine) as session:
            query = select(GateDecision).where(GateDecision.run_id == run_id).order_by(col(GateDecision.id))
            return session.exec(query).all()

    def all(self, *, route: str | None = None) -> Sequence[GateDecision]:
        with Session(self.engine) as session:
            query = select(GateDecision).order_by(col(GateDecision.id))
            if route is not None:
                query = query.where(GateDecision.route == route)
            return session.exec(query).all()
