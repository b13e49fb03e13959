"""Repository for cache entries: the durable half of the cache, shared by every worker and restart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from memory.tables import CacheEntry, table_of

ENTRIES = table_of(CacheEntry)
# The layers, each with its own TTL ([cache.ttl_s]): answers found by meaning, and two exact layers.
LLM_RESPONSE, READ_TOOL, EMBEDDING = "llm_response", "read_tool", "embedding"
LAYERS = (LLM_RESPONSE, READ_TOOL, EMBEDDING)


def _alive(now: float) -> tuple[ColumnElement[bool], ...]:
    """Not expired, and not written after ``now``: an entry from the future was stored by a clock that has
    since jumped back, so its age is unknown and its TTL would last as long as the jump. It is a miss."""
    return ENTRIES.c.expires_at > now, ENTRIES.c.created_at <= now


class CacheStore:
    """Every layer's entries, each layer bounded to ``max_entries`` (least recently used go first)."""

    def __init__(self, engine: Engine, max_entries: int) -> None:
        self.engine = engine
        self.max_entries = max_entries
        # Counting the table on every add would cost a scan per answer: the bound is checked every 1% of it,
        # so it may be overshot by that much per worker between checks.
        self._check_every = max(1, max_entries // 100)
        self._adds = 0

    def add(self, entry: CacheEntry) -> int:
        with self.engine.begin() as connection:
            row = connection.execute(
                insert(ENTRIES).values(**entry.model_dump(exclude={"id"})).returning(ENTRIES.c.id)
            ).one()
        self._adds += 1
        if self._adds >= self._check_every:
            self._adds = 0
            self.evict()
        return int(row.id)

    def exact(self, layer: str, key: str, *, now: float) -> CacheEntry | None:
        """The newest live entry of an exact layer (read-tool results, embeddings) with this key."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(ENTRIES)
                .where(ENTRIES.c.layer == layer, ENTRIES.c.key == key, *_alive(now))
                .order_by(ENTRIES.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else CacheEntry(**row._mapping)

    def vectors_after(self, scope: str, after_id: int, *, now: float) -> Sequence[Any]:
        """(id, vector, expires_at) of a scope's live semantic entries newer than ``after_id``."""
        with self.engine.connect() as connection:
            return connection.execute(
                select(ENTRIES.c.id, ENTRIES.c.vector, ENTRIES.c.expires_at)
                .where(
                    ENTRIES.c.scope == scope,
                    ENTRIES.c.layer == LLM_RESPONSE,
                    ENTRIES.c.id > after_id,
                    ENTRIES.c.expires_at > now,
                )
                .order_by(ENTRIES.c.id)
            ).all()

    def newest_id(self, scope: str) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.coalesce(func.max(ENTRIES.c.id), 0)).where(ENTRIES.c.scope == scope)
                ).scalar_one()
            )

    def live(self, ids: Sequence[int], *, now: float) -> dict[int, CacheEntry]:
        """The entries among ``ids`` that still exist and have not expired (invalidation and TTL in one read)."""
        if not ids:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(select(ENTRIES).where(ENTRIES.c.id.in_(list(ids)), *_alive(now))).all()
        return {row.id: CacheEntry(**row._mapping) for row in rows}

    def used(self, entry_id: int, *, now: float) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(ENTRIES).where(ENTRIES.c.id == entry_id).values(hits=ENTRIES.c.hits + 1, last_used_at=now)
            )

    def invalidate(
        self,
        *,
        tenant_id: str | None = None,
        route: str | None = None,
        key: str | None = None,
        layer: str | None = None,
        entry_id: int | None = None,
        now: float,
    ) -> int:
        """Delete entries matching every selector given (none given: everything), and expired ones anyway.

        Returns how many matched (the expired ones swept along are not counted).
        """
        selectors = (
            (ENTRIES.c.tenant_id, tenant_id),
            (ENTRIES.c.route, route),
            (ENTRIES.c.key, key),
            (ENTRIES.c.layer, layer),
            (ENTRIES.c.id, entry_id),
        )
        conditions = [column == value for column, value in selectors if value is not None]
        with self.engine.begin() as connection:
            removed = connection.execute(delete(ENTRIES).where(*conditions).returning(ENTRIES.c.id)).all()
            connection.execute(delete(ENTRIES).where(ENTRIES.c.expires_at <= now))
        return len(removed)

    def evict(self) -> int:
        """Keep the ``max_entries`` most recently used entries of each layer; returns how many were removed.

        Per layer, so that the embeddings of one-off questions never push out answers.
        """
        removed = 0
        with self.engine.begin() as connection:
            totals = connection.execute(select(ENTRIES.c.layer, func.count()).group_by(ENTRIES.c.layer)).all()
            for layer, total in totals:
                if total <= self.max_entries:
                    continue
                oldest = (
                    select(ENTRIES.c.id)
                    .where(ENTRIES.c.layer == layer)
                    .order_by(ENTRIES.c.last_used_at, ENTRIES.c.id)
                    .limit(total - self.max_entries)
                ).scalar_subquery()
                deleted = connection.execute(delete(ENTRIES).where(ENTRIES.c.id.in_(oldest)).returning(ENTRIES.c.id))
                removed += len(deleted.all())
        return removed

    def stats(self, *, now: float) -> list[dict[str, Any]]:
        """Live entries and their hits per layer, tenant and route."""
        columns = (ENTRIES.c.layer, ENTRIES.c.tenant_id, ENTRIES.c.route)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    *columns, func.count().label("entries"), func.coalesce(func.sum(ENTRIES.c.hits), 0).label("hits")
                )
                .where(ENTRIES.c.expires_at > now)
                .group_by(*columns)
                .order_by(*columns)
            ).all()
        return [dict(row._mapping) for row in rows]

    def recent(self, *, limit: int, tenant_id: str | None = None, now: float) -> list[CacheEntry]:
        """The most recently used live answers (the semantic layer), newest first."""
        query = select(ENTRIES).where(ENTRIES.c.layer == LLM_RESPONSE, ENTRIES.c.expires_at > now)
        if tenant_id is not None:
            query = query.where(ENTRIES.c.tenant_id == tenant_id)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(ENTRIES.c.last_used_at.desc()).limit(limit)).all()
        return [CacheEntry(**row._mapping) for row in rows]

    def owner(self, entry_id: int) -> str | None:
        """The tenant of entry ``entry_id`` (any layer), or None if there is no such entry."""
        with self.engine.connect() as connection:
            return connection.execute(select(ENTRIES.c.tenant_id).where(ENTRIES.c.id == entry_id)).scalar_one_or_none()

    def count(self, *, tenant_id: str | None = None) -> int:
        with self.engine.connect() as connection:
            query = select(func.count()).select_from(ENTRIES)
            if tenant_id is not None:
                query = query.where(ENTRIES.c.tenant_id == tenant_id)
            return int(connection.execute(query).scalar_one())
