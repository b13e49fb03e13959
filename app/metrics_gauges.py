"""Observable gauges: the stores' current state, read when a metric reader collects (every
``[telemetry] metrics_interval_s`` for OTLP, on each Prometheus scrape), never on a run's path.

Every query is one indexed or small read: runs in progress (the status index), the dead-letter queue and open
escalations (each joined to its run for the release and route), breakers (one row per backend) and today's
budget rows (a range of the primary key). A gauge reports the groups that exist now: a release with no run in
progress has no point, so a dashboard adds ``or vector(0)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from sqlalchemy import Select, func, select
from sqlalchemy.engine import Engine

from app.limits.ledger import BlastRadius
from app.resilience.breaker import CLOSED, HALF_OPEN, OPEN
from core.status import IN_PROGRESS
from memory.tables import Breaker, BudgetUsage, DeadLetter, Escalation, Run, table_of

RUNS, DEAD, ESCALATIONS = table_of(Run), table_of(DeadLetter), table_of(Escalation)
BREAKERS, USAGE = table_of(Breaker), table_of(BudgetUsage)
BREAKER_STATES = (CLOSED, HALF_OPEN, OPEN)
DAY = "day:"
# Every "day:…" key sorts below this under any collation (the letters decide first: "y" < "z"; under ICU,
# PostgreSQL's punctuation is ignored at first, so "day;" would not do), so the range is one index seek.
BELOW_DAYS = "daz"


def _release(release: str | None, route: str | None) -> dict[str, str]:
    """The run's release and route, named as on its spans."""
    return {"firebreak.release": release or "", "firebreak.route": route or ""}


class StateGauges:
    """The gauges that read the stores, registered on one meter."""

    def __init__(self, engine: Engine, limits: BlastRadius, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.limits = limits
        self.clock = clock

    def register(self, meter: Meter) -> None:
        """Create every gauge on ``meter``; the meter calls them back on each collection."""
        gauges: list[tuple[str, str, str, Callable[[CallbackOptions], Iterable[Observation]]]] = [
            ("firebreak.runs.active", "{run}", "Runs in progress (queued, running, waiting)", self.runs_active),
            ("firebreak.dlq.depth", "{run}", "Dead letters not requeued", self.dead_letters),
            ("firebreak.escalations.waiting", "{escalation}", "Open escalations", self.escalations_waiting),
            ("firebreak.escalations.oldest_age", "s", "How long the oldest open one waited", self.oldest_escalation),
            ("firebreak.breaker.state", "1", "1 on each breaker's current state, 0 on the others", self.breakers),
            ("firebreak.budget.usage", "1", "Used and held today per tenant, in the resource's unit", self.usage),
            ("firebreak.budget.limit", "1", "Today's cap per tenant (with granted raises)", self.limit),
        ]
        for name, unit, description, callback in gauges:
            meter.create_observable_gauge(name, callbacks=[callback], unit=unit, description=description)

    def _rows(self, query: Select[Any]) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(query).all())

    def runs_active(self, _: CallbackOptions) -> Iterable[Observation]:
        query = (
            select(RUNS.c.status, RUNS.c.release, RUNS.c.route, func.count())
            .where(RUNS.c.status.in_([str(status) for status in IN_PROGRESS]))
            .group_by(RUNS.c.status, RUNS.c.release, RUNS.c.route)
        )
        return [
            Observation(count, _release(release, route) | {"firebreak.status": status})
            for status, release, route, count in self._rows(query)
        ]

    def dead_letters(self, _: CallbackOptions) -> Iterable[Observation]:
        query = (
            select(RUNS.c.release, RUNS.c.route, func.count())
            .select_from(DEAD.outerjoin(RUNS, RUNS.c.id == DEAD.c.run_id))
            .where(DEAD.c.requeued_at.is_(None))
            .group_by(RUNS.c.release, RUNS.c.route)
        )
        return [Observation(count, _release(release, route)) for release, route, count in self._rows(query)]

    def _open_escalations(self) -> list[Any]:
        query = (
            select(ESCALATIONS.c.type, RUNS.c.release, RUNS.c.route, func.count(), func.min(ESCALATIONS.c.created_at))
            .select_from(ESCALATIONS.outerjoin(RUNS, RUNS.c.id == ESCALATIONS.c.run_id))
            .where(ESCALATIONS.c.status == "open")
            .group_by(ESCALATIONS.c.type, RUNS.c.release, RUNS.c.route)
        )
        return self._rows(query)

    def escalations_waiting(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(count, _release(release, route) | {"firebreak.escalation.type": kind})
            for kind, release, route, count, _oldest in self._open_escalations()
        ]

    def oldest_escalation(self, _: CallbackOptions) -> Iterable[Observation]:
        now = self.clock()
        return [
            Observation(max(now - oldest, 0.0), _release(release, route) | {"firebreak.escalation.type": kind})
            for kind, release, route, _count, oldest in self._open_escalations()
        ]

    def breakers(self, _: CallbackOptions) -> Iterable[Observation]:
        rows = self._rows(select(BREAKERS.c.name, BREAKERS.c.state))
        return [
            Observation(int(state == current), {"firebreak.backend": name, "firebreak.breaker.state": state})
            for name, current in rows
            for state in BREAKER_STATES
        ]

    def _today(self) -> list[tuple[str, str, float, float]]:
        """(tenant, resource, used and held, cap with grants) of every capped resource of today's day scopes."""
        date = self.limits.day_scope("", self.clock()).rsplit(":", 1)[1]
        query = select(USAGE).where(
            USAGE.c.scope >= DAY, USAGE.c.scope < BELOW_DAYS, USAGE.c.scope.like(f"{DAY}%:{date}")
        )
        lines = []
        for row in self._rows(query):
            cap = self.limits.cap_of(row.scope, row.resource)
            if cap is not None:  # uncapped tallies (what the cache saved) are no budget
                tenant = row.scope.removeprefix(DAY).rsplit(":", 1)[0]
                lines.append((tenant, row.resource, row.used + row.reserved, cap + row.granted))
        return lines

    def usage(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(used, {"firebreak.tenant_id": tenant, "firebreak.budget.resource": resource})
            for tenant, resource, used, _limit in self._today()
        ]

    def limit(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(cap, {"firebreak.tenant_id": tenant, "firebreak.budget.resource": resource})
            for tenant, resource, _used, cap in self._today()
        ]
