"""Storage for blast-radius budgets: usage per scope and resource, and open reservations.

A reservation is one transaction of conditional updates, ``reserved + :amount``
only ``WHERE used + reserved + :amount <= :limit``, in a fixed row order (no
deadlocks between workers). If any row refuses, nothing is reserved. So any
number of concurrent callers can never together exceed a cap. All rows change in
one statement; the rows this process has not seen yet (a scope's first use) are
created empty just before, and a refusal goes row by row, to name the cap that refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import TextClause, bindparam, select, text, update
from sqlalchemy.engine import Connection, Engine

from memory.tables import BudgetReservation, BudgetUsage, table_of
from memory.upsert import insert_ignore, insert_ignore_many

USAGE = table_of(BudgetUsage)
RESERVATIONS = table_of(BudgetReservation)
# Usage rows a process remembers having seen (each run and minute brings new ones): past this it starts over,
# which costs only one more insert-if-missing per row.
KNOWN_ROWS_MAX = 50_000

# Every model and tool call reserves and settles about ten rows: the statements are built once, with bound
# parameters, because building one costs about ten times what the database takes to run it.
_THIS_ROW = (USAGE.c.scope == bindparam("b_scope")) & (USAGE.c.resource == bindparam("b_resource"))
_TAKE = (
    update(USAGE)
    .where(_THIS_ROW, USAGE.c.used + USAGE.c.reserved + bindparam("b_amount") <= bindparam("b_limit") + USAGE.c.granted)
    .values(reserved=USAGE.c.reserved + bindparam("b_amount"), updated_at=bindparam("b_now"))
)
_OPEN_RESERVATION = RESERVATIONS.insert()
_RESERVATION = select(RESERVATIONS.c.entries).where(RESERVATIONS.c.id == bindparam("b_id"))
_CLOSE = (
    update(RESERVATIONS)
    .where(RESERVATIONS.c.id == bindparam("b_id"), RESERVATIONS.c.status == "open")
    .values(status=bindparam("b_status"))
)
_SETTLE = _CLOSE.returning(RESERVATIONS.c.entries)
_RESTAMP = (
    update(RESERVATIONS)
    .where(RESERVATIONS.c.status == "open", RESERVATIONS.c.expires_at > bindparam("b_latest"))
    .values(expires_at=bindparam("b_latest"))
)
_EXPIRED = select(RESERVATIONS.c.id, RESERVATIONS.c.entries).where(
    RESERVATIONS.c.status == "open", RESERVATIONS.c.expires_at < bindparam("b_now")
)


@cache
def _rows_update(count: int, *, take: bool) -> TextClause:
    """One UPDATE of ``count`` usage rows, each joined to its own two numbers ``a`` and ``b`` (SQLite ≥ 3.33 and
    PostgreSQL both take UPDATE … FROM). ``take``: hold ``a`` where the cap ``b`` allows; else add ``a`` to used
    and give ``b`` back."""
    rows = " UNION ALL ".join(
        f"SELECT CAST(:s{i} AS VARCHAR) AS scope, CAST(:r{i} AS VARCHAR) AS resource, "
        f"CAST(:a{i} AS FLOAT) AS a, CAST(:b{i} AS FLOAT) AS b"
        for i in range(count)
    )
    if take:
        changes = "reserved = budget_usage.reserved + v.a"
        allowed = " AND budget_usage.used + budget_usage.reserved + v.a <= v.b + budget_usage.granted"
    else:
        changes, allowed = "used = budget_usage.used + v.a, reserved = budget_usage.reserved - v.b", ""
    return text(
        f"UPDATE budget_usage SET {changes}, updated_at = :now FROM ({rows}) AS v "
        f"WHERE budget_usage.scope = v.scope AND budget_usage.resource = v.resource{allowed}"
    )


@cache
def _rows_lock(count: int) -> TextClause:
    """PostgreSQL: lock the rows first, in the order every other path takes them. One UPDATE locks them in its
    plan's order, and two workers whose plans differ could each hold a row the other waits for. The order is
    Python's (code points, as the row-by-row path sorts them): "C" collation, not the database's."""
    pairs = ", ".join(f"(:s{i}, :r{i})" for i in range(count))
    return text(
        f"SELECT 1 FROM budget_usage WHERE (scope, resource) IN ({pairs}) "
        'ORDER BY scope COLLATE "C", resource COLLATE "C" FOR UPDATE'
    )


def _update_rows(connection: Connection, rows: list[tuple[str, str, float, float]], *, take: bool, now: float) -> int:
    """Apply :func:`_rows_update` to ``rows`` of (scope, resource, a, b), sorted; returns the rows it changed."""
    parameters: dict[str, Any] = {"now": now}
    for i, (scope, resource, a, b) in enumerate(rows):
        parameters.update({f"s{i}": scope, f"r{i}": resource, f"a{i}": a, f"b{i}": b})
    if connection.dialect.name == "postgresql":
        connection.execute(_rows_lock(len(rows)), parameters)
    return connection.execute(_rows_update(len(rows), take=take), parameters).rowcount


@dataclass(frozen=True)
class Entry:
    scope: str
    resource: str
    amount: float
    limit: float


@dataclass(frozen=True)
class Refusal:
    """The first cap a reservation would have crossed."""

    entry: Entry
    used: float
    reserved: float
    granted: float


class _Refused(Exception):
    def __init__(self, refusal: Refusal | None) -> None:
        self.refusal = refusal


class LedgerStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # (scope, resource) rows known to exist: a reservation creates only the others, in one statement. A row
        # deleted meanwhile is no risk: the update then changes fewer rows and the row-by-row path creates it.
        self._known: set[tuple[str, str]] = set()

    def reserve(
        self, reservation_id: str, run_id: str | None, entries: list[Entry], *, expires_at: float, now: float
    ) -> Refusal | None:
        """Hold every amount or none; ``None`` when the reservation was taken."""
        ordered = sorted(entries, key=lambda e: (e.scope, e.resource))
        self._create_missing(ordered, now)
        try:
            self._hold(reservation_id, run_id, ordered, expires_at=expires_at, now=now, row_by_row=False)
        except _Refused:  # a refusal (or a row deleted meanwhile): rolled back, and tried again row by row
            try:
                self._hold(reservation_id, run_id, ordered, expires_at=expires_at, now=now, row_by_row=True)
            except _Refused as refused:  # the transaction rolled back: nothing is held
                assert refused.refusal is not None
                return refused.refusal
        return None

    def _create_missing(self, ordered: list[Entry], now: float) -> None:
        """Create the usage rows not seen yet, empty, in a transaction of their own: inserted inside the
        reservation's, they would be held before the rows it locks first, and two workers could each wait for a
        row the other holds."""
        fresh = [(e.scope, e.resource) for e in ordered if (e.scope, e.resource) not in self._known]
        if not fresh:
            return
        with self.engine.begin() as connection:
            insert_ignore_many(
                connection,
                USAGE,
                [{"scope": s, "resource": r, "used": 0.0, "reserved": 0.0, "updated_at": now} for s, r in fresh],
            )
        if len(self._known) > KNOWN_ROWS_MAX:
            self._known.clear()
        self._known.update(fresh)

    def _hold(
        self,
        reservation_id: str,
        run_id: str | None,
        ordered: list[Entry],
        *,
        expires_at: float,
        now: float,
        row_by_row: bool,
    ) -> None:
        """Take every entry in one transaction, or raise :class:`_Refused` (with the refusal when ``row_by_row``,
        which also creates missing rows) and roll back. Not ``row_by_row``: one statement for all rows."""
        with self.engine.begin() as connection:
            if row_by_row:
                for entry in ordered:
                    if not self._take(connection, entry, now):
                        raise _Refused(self._refusal(connection, entry))
            elif ordered:
                rows = [(e.scope, e.resource, e.amount, e.limit) for e in ordered]
                if _update_rows(connection, rows, take=True, now=now) != len(ordered):
                    raise _Refused(None)
            connection.execute(
                _OPEN_RESERVATION,
                {
                    "id": reservation_id,
                    "run_id": run_id,
                    "status": "open",
                    "expires_at": expires_at,
                    "entries": [{"scope": e.scope, "resource": e.resource, "amount": e.amount} for e in ordered],
                },
            )

    @staticmethod
    def _take(connection: Connection, entry: Entry, now: float) -> bool:
        """Hold ``entry.amount`` in its row if the cap allows, creating the row if it is missing.

        The update comes first and the insert only when it took nothing: this path follows a refusal, so the row
        usually exists."""
        take = {
            "b_scope": entry.scope,
            "b_resource": entry.resource,
            "b_amount": entry.amount,
            "b_limit": entry.limit,
            "b_now": now,
        }
        if connection.execute(_TAKE, take).rowcount == 1:
            return True
        fresh = {"scope": entry.scope, "resource": entry.resource, "used": 0.0, "reserved": 0.0, "updated_at": now}
        insert_ignore(connection, USAGE, fresh)  # a refusal also gets here: then the row exists and this is a no-op
        return connection.execute(_TAKE, take).rowcount == 1

    def settle(self, reservation_id: str, actual: dict[str, float], *, now: float) -> None:
        """Turn a reservation into real usage (``actual`` per resource; missing resources used nothing)."""
        with self.engine.begin() as connection:
            closed = connection.execute(_SETTLE, {"b_id": reservation_id, "b_status": "settled"}).first()
            # Not open any more: released as expired (its worker looked dead), so only the usage is added.
            entries = (
                closed.entries if closed else connection.execute(_RESERVATION, {"b_id": reservation_id}).scalar_one()
            )
            rows = [
                (e["scope"], e["resource"], actual.get(e["resource"], 0.0), e["amount"] if closed else 0.0)
                for e in entries
            ]
            if rows:
                _update_rows(connection, rows, take=False, now=now)

    def grant(self, scope: str, resource: str, amount: float, *, now: float) -> None:
        """Raise one scope's cap of one resource by ``amount``: a reviewer's one-off answer to a breach."""
        self._add(scope, resource, "granted", amount, now=now)

    def count(self, scope: str, resource: str, amount: float, *, now: float) -> None:
        """Add ``amount`` to an uncapped tally (what the cache saved), outside any reservation."""
        self._add(scope, resource, "used", amount, now=now)

    def _add(self, scope: str, resource: str, column: str, amount: float, *, now: float) -> None:
        with self.engine.begin() as connection:
            insert_ignore(
                connection,
                USAGE,
                {"scope": scope, "resource": resource, "used": 0.0, "reserved": 0.0, "updated_at": now},
            )
            connection.execute(
                update(USAGE)
                .where(USAGE.c.scope == scope, USAGE.c.resource == resource)
                .values({column: USAGE.c[column] + amount, "updated_at": now})
            )

    def release_expired(self, now: float, *, ttl_s: float | None = None) -> int:
        """Give back what dead workers held; returns how many reservations were released.

        With ``ttl_s`` (the longest a reservation is held), a reservation that expires later than ``now + ttl_s``
        was stamped by a clock that has since jumped back, and would hold its budget for as long as the jump:
        it restarts from now instead, so a live call keeps a full reservation and a dead one's is given back
        one ``ttl_s`` after the jump."""
        with self.engine.begin() as connection:
            if ttl_s is not None:
                connection.execute(_RESTAMP, {"b_latest": now + ttl_s})
            stale = connection.execute(_EXPIRED, {"b_now": now}).all()
            released = 0
            for row in stale:
                if not self._close(connection, row.id, "expired"):
                    continue
                released += 1
                given_back = [(e["scope"], e["resource"], 0.0, e["amount"]) for e in row.entries]
                if given_back:
                    _update_rows(connection, given_back, take=False, now=now)
        return released

    def usage(self, scope_prefix: str = "") -> Sequence[BudgetUsage]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(USAGE).where(USAGE.c.scope.startswith(scope_prefix)).order_by(USAGE.c.scope, USAGE.c.resource)
            ).all()
        return [BudgetUsage(**row._mapping) for row in rows]

    @staticmethod
    def _close(connection: Connection, reservation_id: str, status: str) -> bool:
        return connection.execute(_CLOSE, {"b_id": reservation_id, "b_status": status}).rowcount == 1

    @staticmethod
    def _refusal(connection: Connection, entry: Entry) -> Refusal:
        row = connection.execute(
            select(USAGE.c.used, USAGE.c.reserved, USAGE.c.granted).where(
                USAGE.c.scope == entry.scope, USAGE.c.resource == entry.resource
            )
        ).one()
        return Refusal(entry, float(row.used), float(row.reserved), float(row.granted))
