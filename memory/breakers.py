"""Storage for circuit breakers: rows, rolling-window buckets and the transition log.

Every state change is a compare-and-set on ``version`` in one statement, so
any number of workers can share a breaker without a lock held around calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from memory import node_rows
from memory.tables import Breaker, BreakerBucket, BreakerTransition, table_of
from memory.upsert import add_statement, insert_ignore, insert_or_add

BREAKERS = table_of(Breaker)
BUCKETS = table_of(BreakerBucket)
TRANSITIONS = table_of(BreakerTransition)
# Workers on several machines write one breaker's buckets: a bucket this many seconds ahead of a reader's
# clock is another machine's skew (NTP keeps it far smaller), not a clock that jumped back.
CLOCK_SKEW_S = 2
# Read on every call (statements built once: building one costs more than running it).
_BREAKER = select(BREAKERS).where(BREAKERS.c.name == bindparam("b_name"))


@dataclass(frozen=True)
class BreakerRow:
    """One breaker as read for a decision: a plain record, since validating the ORM model would cost a third of
    the read that every model and tool call makes."""

    name: str
    state: str
    version: int
    open_until: float
    trips: int
    permits_taken: int
    permits_expire_at: float
    updated_at: float


@dataclass(frozen=True)
class WindowTotals:
    calls: int
    failures: int
    slow: int


class BreakerStore:
    """SQL for breakers; the state machine itself lives in ``app.resilience.breaker``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, name: str, now: float) -> BreakerRow:
        """The breaker row, created closed on first use (a plain read on every later call)."""
        with self.engine.connect() as connection:
            row = connection.execute(_BREAKER, {"b_name": name}).one_or_none()
        if row is None:
            with self.engine.begin() as connection:
                insert_ignore(connection, BREAKERS, {"name": name, "state": "closed", "version": 0, "updated_at": now})
                row = connection.execute(_BREAKER, {"b_name": name}).one()
        return BreakerRow(**row._mapping)

    def compare_and_set(self, current: BreakerRow, changes: dict[str, Any], *, reason: str | None, now: float) -> bool:
        """Apply ``changes`` if nobody changed the breaker since ``current`` was read; log a state change."""
        with self.engine.begin() as connection:
            updated = connection.execute(
                update(BREAKERS)
                .where(BREAKERS.c.name == current.name, BREAKERS.c.version == current.version)
                .values(**changes, version=current.version + 1, updated_at=now)
            ).rowcount
            if updated != 1:
                return False
            new_state = changes.get("state", current.state)
            if reason is not None and new_state != current.state:
                connection.execute(
                    TRANSITIONS.insert().values(
                        name=current.name, from_state=current.state, to_state=new_state, reason=reason, at=now
                    )
                )
            if new_state == "closed" and current.state != "closed":
                connection.execute(delete(BUCKETS).where(BUCKETS.c.name == current.name))
        return True

    def count(self, name: str, second: int, *, failure: bool, slow: bool) -> None:
        """Count one call in its second's bucket. A success waits for the end of the node it was made in (it can
        open nothing, so only its share of the window's minimum calls is late); a bad call is counted now, as the
        window it may trip is read next."""
        keys, counters = {"name": name, "second": second}, {"calls": 1, "failures": int(failure), "slow": int(slow)}
        if failure or slow:
            with self.engine.begin() as connection:
                insert_or_add(connection, BUCKETS, keys, counters)
        else:
            node_rows.write(
                self.engine, add_statement(self.engine.dialect.name, BUCKETS, keys, counters), keys | counters
            )

    def window(self, name: str, first_second: int, last_second: int) -> WindowTotals:
        """Totals of the buckets in ``[first_second, last_second]``; older buckets are pruned, and so are
        buckets from the future: counted by a clock that has since jumped back, they would otherwise count
        again once the clock catches up with them, and open the breaker on failures long past."""
        with self.engine.begin() as connection:
            connection.execute(
                delete(BUCKETS).where(
                    BUCKETS.c.name == name,
                    (BUCKETS.c.second < first_second) | (BUCKETS.c.second > last_second + CLOCK_SKEW_S),
                )
            )
            row = connection.execute(
                select(
                    func.coalesce(func.sum(BUCKETS.c.calls), 0),
                    func.coalesce(func.sum(BUCKETS.c.failures), 0),
                    func.coalesce(func.sum(BUCKETS.c.slow), 0),
                ).where(BUCKETS.c.name == name, BUCKETS.c.second.between(first_second, last_second))
            ).one()
        return WindowTotals(calls=int(row[0]), failures=int(row[1]), slow=int(row[2]))

    def all(self) -> Sequence[Breaker]:
        with Session(self.engine) as session:
            return session.exec(select(Breaker).order_by(col(Breaker.name))).scalars().all()  # type: ignore[call-overload]

    def transitions(self, name: str | None = None, limit: int = 100) -> Sequence[BreakerTransition]:
        with Session(self.engine) as session:
            query = select(BreakerTransition).order_by(col(BreakerTransition.id).desc()).limit(limit)
            if name is not None:
                query = query.where(col(BreakerTransition.name) == name)
            return session.exec(query).scalars().all()  # type: ignore[call-overload]
