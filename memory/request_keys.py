"""Callers' idempotency keys: a request sent again under its key gets the run it started, not a second run.

Stripe's semantics. A key is per tenant and lives ``ttl_s`` (24 h by default). The first request under a key
records the run it starts, in the same statement that claims the key: one insert on the primary key (tenant,
key), never check-then-insert, so two processes sending the same request at once start one run. What a later
request under the key gets depends on the row it finds:

* the same request (same digest)    → the recorded run's id; the caller returns that run and its result
* another request                  → :class:`~core.errors.IdempotencyKeyConflict`; nothing runs
* an expired row                   → removed; the key is free for a new request

A request that never started its run (a busy conversation, a store failure) releases its key: as with Stripe,
only a request that began executing is remembered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from core.errors import FirebreakError, IdempotencyKeyConflict
from memory.tables import IdempotencyKey, table_of
from memory.upsert import insert_ignore

KEYS = table_of(IdempotencyKey)
MAX_KEY_CHARS = 255


@dataclass(frozen=True)
class RequestKey:
    """One request under a caller's key: who sent it (tenant), the key, and a digest of what it asks."""

    tenant_id: str
    key: str
    digest: str


def request_key(tenant_id: str, key: str, **request: Any) -> RequestKey:
    """The key of a request whose parameters are ``request`` (entry path, question, thread, user, route, …)."""
    if not key.strip() or len(key) > MAX_KEY_CHARS:
        raise FirebreakError(f"an idempotency key must have 1 to {MAX_KEY_CHARS} characters, not {len(key)}")
    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
    return RequestKey(tenant_id, key, digest)


class RequestKeys:
    def __init__(self, engine: Engine, *, ttl_s: float) -> None:
        self.engine = engine
        self.ttl_s = ttl_s

    def find(self, request: RequestKey, *, now: float) -> str | None:
        """The run an earlier identical request under this key started, or None while the key is unused."""
        with self.engine.connect() as connection:
            return self._owner(connection, request, now)

    def claim(self, request: RequestKey, run_id: str, *, now: float) -> str:
        """Record ``run_id`` under the key unless an earlier request holds it; returns the key's run."""
        with self.engine.begin() as connection:
            return self.claim_in(connection, request, run_id, now=now)

    def claim_in(self, connection: Connection, request: RequestKey, run_id: str, *, now: float) -> str:
        """:meth:`claim` inside the caller's transaction, so the run it records can be written in the same one."""
        # Expired keys go first (all of them: the table stays as small as a day of keyed requests).
        connection.execute(delete(KEYS).where(KEYS.c.expires_at <= now))
        values = {
            "tenant_id": request.tenant_id,
            "key": request.key,
            "request_digest": request.digest,
            "run_id": run_id,
            "created_at": now,
            "expires_at": now + self.ttl_s,
        }
        if insert_ignore(connection, KEYS, values):
            return run_id
        owner = self._owner(connection, request, now)
        # None: a process whose clock runs behind ours wrote the row, already expired by ours; it goes now.
        return owner if owner is not None else self.claim_in(connection, request, run_id, now=now)

    def release(self, request: RequestKey, run_id: str) -> None:
        """Forget the key of a request whose run never started, so the caller may send it again."""
        with self.engine.begin() as connection:
            connection.execute(
                delete(KEYS).where(
                    KEYS.c.tenant_id == request.tenant_id, KEYS.c.key == request.key, KEYS.c.run_id == run_id
                )
            )

    def _owner(self, connection: Connection, request: RequestKey, now: float) -> str | None:
        row = connection.execute(
            select(KEYS.c.request_digest, KEYS.c.run_id).where(
                KEYS.c.tenant_id == request.tenant_id, KEYS.c.key == request.key, KEYS.c.expires_at > now
            )
        ).first()
        if row is None:
            return None
        if row.request_digest != request.digest:
            raise IdempotencyKeyConflict(request.key, row.run_id)
        return str(row.run_id)
