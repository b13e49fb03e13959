"""Shared entities: the one row several agents read and write, and the event log of its changes.

Every write is a compare-and-swap on the entity's version: a writer whose snapshot is out of date gets
:class:`StaleEntity` with the current state and must decide again on it; nothing is overwritten. The change
and its event are one transaction (outbox), so the log always replays to the row. A per-entity change
budget stops agents that keep undoing each other's work.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.engine import Engine

from core.errors import ChangeBudgetExhausted, EntityExists, EntityNotFound, StaleEntity
from memory.events import CHANNEL
from memory.tables import EntityEvent, SharedEntity, table_of
from memory.upsert import insert_ignore

ENTITIES = table_of(SharedEntity)
EVENTS = table_of(EntityEvent)


@dataclass(frozen=True)
class Entity:
    """A snapshot of one shared entity at one version."""

    tenant_id: str
    kind: str
    key: str
    version: int
    data: dict[str, Any]
    changes: int
    updated_by: str


class EntityStore:
    """Repository of shared entities; every write goes through compare-and-swap."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], float] = time.time,
        max_changes: int = 50,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.max_changes = max_changes

    def create(
        self,
        tenant_id: str,
        kind: str,
        key: str,
        data: dict[str, Any],
        *,
        actor: str,
        correlation_id: str | None = None,
    ) -> Entity:
        """Create the entity at version 1 with its "created" event; :class:`EntityExists` if it is there."""
        entity = Entity(tenant_id, kind, key, version=1, data=dict(data), changes=0, updated_by=actor)
        row = {
            "tenant_id": tenant_id,
            "kind": kind,
            "key": key,
            "version": 1,
            "data": entity.data,
            "changes": 0,
            "updated_by": actor,
            "updated_at": self.clock(),
        }
        with self.engine.begin() as connection:
            if not insert_ignore(connection, ENTITIES, row):
                raise EntityExists(f"{kind} {key} already exists for tenant {tenant_id}")
            self._publish(connection, entity, "created", None, entity.data, correlation_id)
        return entity

    def get(self, tenant_id: str, kind: str, key: str) -> Entity | None:
        """The entity as it is now, or None."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(ENTITIES).where(
                    ENTITIES.c.tenant_id == tenant_id, ENTITIES.c.kind == kind, ENTITIES.c.key == key
                )
            ).one_or_none()
        if row is None:
            return None
        return Entity(
            row.tenant_id, row.kind, row.key, row.version, dict(row.data), row.changes, updated_by=row.updated_by
        )

    def update(
        self, snapshot: Entity, patch: dict[str, Any], *, actor: str, correlation_id: str | None = None
    ) -> Entity:
        """Merge ``patch`` (top-level keys) into the entity if it is still at ``snapshot.version``.

        Raises :class:`StaleEntity` (nothing written) when another writer got there first, and
        :class:`ChangeBudgetExhausted` when the entity has had ``max_changes`` changes.
        """
        if snapshot.changes >= self.max_changes:
            raise ChangeBudgetExhausted(snapshot, self.max_changes)
        # Merged here, not in SQL: the UPDATE applies only while the row is at the snapshot's version, so its
        # stored data is the snapshot's data.
        data = {**snapshot.data, **patch}
        written = Entity(
            snapshot.tenant_id,
            snapshot.kind,
            snapshot.key,
            snapshot.version + 1,
            data,
            snapshot.changes + 1,
            updated_by=actor,
        )
        with self.engine.begin() as connection:
            swapped = connection.execute(
                update(ENTITIES)
                .where(
                    ENTITIES.c.tenant_id == snapshot.tenant_id,
                    ENTITIES.c.kind == snapshot.kind,
                    ENTITIES.c.key == snapshot.key,
                    ENTITIES.c.version == snapshot.version,
                )
                .values(
                    version=ENTITIES.c.version + 1,
                    changes=ENTITIES.c.changes + 1,
                    data=data,
                    updated_by=actor,
                    updated_at=self.clock(),
                )
            ).rowcount
            if swapped == 1:
                self._publish(connection, written, "changed", snapshot.data, dict(patch), correlation_id)
                return written
        current = self.get(snapshot.tenant_id, snapshot.kind, snapshot.key)
        if current is None:
            raise EntityNotFound(f"{snapshot.kind} {snapshot.key} does not exist for tenant {snapshot.tenant_id}")
        raise StaleEntity(snapshot, current)

    def update_with_retry(
        self,
        tenant_id: str,
        kind: str,
        key: str,
        change: Callable[[Entity], dict[str, Any] | None],
        *,
        actor: str,
        correlation_id: str | None = None,
        attempts: int = 5,
    ) -> Entity:
        """Read, let ``change`` compute a patch from the current state, write; on a lost race, do it again.

        ``change`` is called anew on every fresh snapshot, so a loser re-plans on what the winner wrote
        instead of overwriting it; returning None (or an empty patch) means nothing is left to do. Raises
        :class:`StaleEntity` after ``attempts`` lost races.
        """
        snapshot = self.get(tenant_id, kind, key)
        if snapshot is None:
            raise EntityNotFound(f"{kind} {key} does not exist for tenant {tenant_id}")
        lost_races = 0
        while True:
            patch = change(snapshot)
            if not patch:
                return snapshot
            try:
                return self.update(snapshot, patch, actor=actor, correlation_id=correlation_id)
            except StaleEntity as lost:
                lost_races += 1
                if lost_races >= attempts:
                    raise
                # No back-off: a lost race means another writer made progress, so the writers never
                # livelock, and a loser that waited would only lose again to whoever did not.
                snapshot = lost.current

    def history(self, tenant_id: str, kind: str, key: str) -> list[EntityEvent]:
        """Every event of the entity in version order: folding their patches gives its current data."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(EVENTS)
                .where(EVENTS.c.tenant_id == tenant_id, EVENTS.c.kind == kind, EVENTS.c.key == key)
                .order_by(EVENTS.c.version)
            ).all()
        return [EntityEvent(**row._mapping) for row in rows]

    def changes_in(self, correlation_id: str) -> list[EntityEvent]:
        """Every change made within one (multi-agent) interaction, in the order they committed."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(EVENTS).where(EVENTS.c.correlation_id == correlation_id).order_by(EVENTS.c.id)
            ).all()
        return [EntityEvent(**row._mapping) for row in rows]

    def _publish(
        self,
        connection: Connection,
        entity: Entity,
        type_: str,
        before: dict[str, Any] | None,
        patch: dict[str, Any],
        correlation_id: str | None,
    ) -> None:
        if connection.dialect.name == "postgresql":
            # Serial ids are handed out at insert but become visible at commit, possibly out of order, and a
            # poller reading "id > cursor" would skip the slower one for good. Holding a per-tenant lock from
            # before the insert to the commit makes a tenant's ids commit in order. SQLite writers are
            # already serialised by its database lock.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('firebreak.entity_events'), hashtext(:tenant))"),
                {"tenant": entity.tenant_id},
            )
            # Delivered when this transaction commits: subscribers waiting in ChangeSignal wake up then.
            notify = text("SELECT pg_notify(:channel, :tenant)")
            connection.execute(notify, {"channel": CHANNEL, "tenant": entity.tenant_id})
        connection.execute(
            insert(EVENTS).values(
                event_id=str(uuid.uuid4()),
                tenant_id=entity.tenant_id,
                kind=entity.kind,
                key=entity.key,
                version=entity.version,
                type=type_,
                actor=entity.updated_by,
                correlation_id=correlation_id,
                before=before,
                after=entity.data,
                patch=patch,
                created_at=self.clock(),
            )
        )
