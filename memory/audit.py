"""Repository for the audit log: one row per operator action, allowed or refused."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from memory.tables import OperatorAction


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, row: OperatorAction) -> None:
        with Session(self.engine) as session:
            session.add(row)
            session.commit()

    def recent(
        self, *, limit: int = 100, operator: str | None = None, tenants: Sequence[str] = ()
    ) -> Sequence[OperatorAction]:
        """The newest rows first; only ``operator``'s, or only those about ``tenants``, when given."""
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(OperatorAction).order_by(col(OperatorAction.id).desc()).limit(limit)
            if operator is not None:
                query = query.where(OperatorAction.operator == operator)
            if tenants:
                query = query.where(col(OperatorAction.tenant_id).in_(list(tenants)))
            return session.exec(query).all()
