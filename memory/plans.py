"""Repository for plan versions: every plan a run had, in order, and how its steps went."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from memory.tables import PlanVersion, table_of

PLANS = table_of(PlanVersion)


class PlanStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, row: PlanVersion) -> tuple[PlanVersion, bool]:
        """Store a new version; when ``(run_id, version)`` exists (a resumed step, a racing writer), return
        that one instead, and False."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                session.add(row)
                session.commit()
                return row, True
        except IntegrityError:
            existing = self.get(row.run_id, row.version)
            assert existing is not None
            return existing, False

    def get(self, run_id: str, version: int) -> PlanVersion | None:
        with Session(self.engine) as session:
            query = select(PlanVersion).where(PlanVersion.run_id == run_id, PlanVersion.version == version)
            return session.exec(query).first()

    def latest(self, run_id: str) -> PlanVersion | None:
        with Session(self.engine) as session:
            query = select(PlanVersion).where(PlanVersion.run_id == run_id)
            return session.exec(query.order_by(col(PlanVersion.version).desc())).first()

    def versions(self, run_id: str) -> Sequence[PlanVersion]:
        """The run's plans, version 1 first."""
        with Session(self.engine) as session:
            query = select(PlanVersion).where(PlanVersion.run_id == run_id)
            return session.exec(query.order_by(col(PlanVersion.version))).all()

    def set_steps(self, run_id: str, version: int, steps: list[dict[str, Any]]) -> None:
        """Advance the statuses of the current version's steps (its structure never changes in place)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(PLANS).where(PLANS.c.run_id == run_id, PLANS.c.version == version).values(steps=steps)
            )
