"""Thread leases: one run at a time per thread, so concurrent writers never interleave a thread's checkpoints."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from memory.tables import ThreadLease, table_of
from memory.upsert import upsert_returning

LEASES = table_of(ThreadLease)


class ThreadLeases:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def acquire(self, thread_id: str, run_id: str, *, now: float, ttl_s: float) -> ThreadLease | None:
        """Take the thread for ``run_id`` (free, expired, or already its own): None; else the lease holding it."""
        values = {"thread_id": thread_id, "run_id": run_id, "expires_at": now + ttl_s}
        with self.engine.begin() as connection:
            # A lease ending later than ``ttl_s`` from now was granted by a clock that has since jumped back; it
            # would hold the thread for as long as the jump. It now ends ``ttl_s`` from here, like a fresh one.
            connection.execute(
                update(LEASES)
                .where(LEASES.c.thread_id == thread_id, LEASES.c.expires_at > now + ttl_s)
                .values(expires_at=now + ttl_s)
            )
        while True:
            mine = (LEASES.c.expires_at < now) | (LEASES.c.run_id == run_id)
            if upsert_returning(self.engine, LEASES, values, key="thread_id", when=mine):
                return None
            with self.engine.connect() as connection:
                row = connection.execute(select(LEASES).where(LEASES.c.thread_id == thread_id)).first()
            if row is not None:
                return ThreadLease(**row._mapping)
            # Released between the two statements: the thread is free, try again.

    def release(self, thread_id: str, run_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(LEASES).where(LEASES.c.thread_id == thread_id, LEASES.c.run_id == run_id))
