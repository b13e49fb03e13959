"""Repository for context checkpoints: summaries that replaced a thread's older messages, with the raw ones."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from memory.tables import ContextCheckpoint
from memory.upsert import insert_once


class ContextStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, key: str) -> ContextCheckpoint | None:
        with Session(self.engine) as session:
            return session.exec(select(ContextCheckpoint).where(ContextCheckpoint.key == key)).first()

    def add_once(self, row: ContextCheckpoint) -> tuple[ContextCheckpoint, bool]:
        """Store ``row`` unless its key exists; returns the stored row and whether this call wrote it."""
        stored, created = insert_once(self.engine, row, "key")
        return ContextCheckpoint(**stored), created

    def for_thread(self, thread_id: str) -> Sequence[ContextCheckpoint]:
        """The thread's checkpoints, oldest first: together their ``raw`` messages are the replaced history."""
        with Session(self.engine) as session:
            query = select(ContextCheckpoint).where(ContextCheckpoint.thread_id == thread_id)
            return session.exec(query.order_by(col(ContextCheckpoint.id))).all()
