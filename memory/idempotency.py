"""The operation log behind idempotent write tools.

A claim is one atomic insert on the op_id, never check-then-insert. What a
second caller with the same op_id gets depends on the row it finds:

* completed, same arguments  → the stored result; the side effect does not run again
* any status, other arguments → :class:`IdempotencyConflict`
* started, still within its lease → "in progress"; the duplicate does not run
* failed, unknown (timed out), expired, or a started lease that ran out → the caller takes it over
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from core.errors import IdempotencyConflict
from memory.tables import Operation, table_of
from memory.upsert import insert_ignore

OPERATIONS = table_of(Operation)
ClaimKind = Literal["run", "completed", "in_progress"]


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    result: str | None = None
    first: bool = True  # False when an earlier execution of this op_id already ran (and was charged)


class OperationLog:
    def __init__(self, engine: Engine, *, ttl_s: float, in_flight_lease_s: float) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self.in_flight_lease_s = in_flight_lease_s

    def claim(self, op_id: str, *, tool: str, args_hash: str, tenant_id: str, run_id: str | None, now: float) -> Claim:
        """Take ``op_id`` for one execution, or learn why not."""
        fresh = {
            "op_id": op_id,
            "tool": tool,
            "args_hash": args_hash,
            "tenant_id": tenant_id,
            "run_id": run_id,
            "status": "started",
            "attempts": 1,
            "updated_at": now,
            "expires_at": now + self.ttl_s,
        }
        with self.engine.begin() as connection:
            if insert_ignore(connection, OPERATIONS, fresh):
                return Claim("run")
            row = connection.execute(select(OPERATIONS).where(OPERATIONS.c.op_id == op_id)).one()
        existing = Operation(**row._mapping)
        expired = existing.expires_at <= now
        if not expired and (existing.args_hash != args_hash or existing.tool != tool):
            raise IdempotencyConflict(
                f"op_id {op_id} was already used for {existing.tool} with other arguments; use a new op_id"
            )
        if existing.status == "completed" and not expired:
            return Claim("completed", existing.result)
        if existing.status == "started" and existing.updated_at > now and not expired:
            # Started by a clock that has since jumped back: its lease would last as long as the jump. It
            # restarts from now instead, so a live worker keeps it and a dead one's write is taken over in time.
            self._set(existing, {"updated_at": now})
            return Claim("in_progress")
        lease_running = existing.status == "started" and existing.updated_at + self.in_flight_lease_s > now
        if lease_running and not expired:
            return Claim("in_progress")
        taken = self._set(
            existing, {**fresh, "attempts": 1 if expired else existing.attempts + 1, "result": None, "error": None}
        )
        return (
            Claim("run", first=expired)
            if taken
            else self.claim(op_id, tool=tool, args_hash=args_hash, tenant_id=tenant_id, run_id=run_id, now=now)
        )

    def finish(
        self,
        op_id: str,
        status: Literal["completed", "failed", "unknown"],
        *,
        result: str | None = None,
        error: str | None = None,
        now: float,
    ) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(OPERATIONS)
                .where(OPERATIONS.c.op_id == op_id)
                .values(status=status, result=result, error=error, updated_at=now)
            )

    def get(self, op_id: str) -> Operation | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(OPERATIONS).where(OPERATIONS.c.op_id == op_id)).one_or_none()
        return None if row is None else Operation(**row._mapping)

    def _set(self, existing: Operation, values: dict[str, object]) -> bool:
        """Compare-and-set on the row as it was read, so two takers never both win."""
        with self.engine.begin() as connection:
            return (
                connection.execute(
                    update(OPERATIONS)
                    .where(
                        OPERATIONS.c.op_id == existing.op_id,
                        OPERATIONS.c.status == existing.status,
                        OPERATIONS.c.updated_at == existing.updated_at,
                        OPERATIONS.c.attempts == existing.attempts,
                    )
                    .values(**values)
                ).rowcount
                == 1
            )
