"""Operations figures from the durable record, for the UI's Ops tab and ``firebreak ops``.

Runs are grouped per route and per release, over the whole window and per time bucket: count, error rate,
latency p50/p95, cost, tokens and cache hit rate. Beside them: dead letters per bucket, breaker states now,
budget use against the caps, and escalations waiting for a person. Every figure is computed from rows
(runs, run events, dead letters, breakers, budget usage, escalations), with portable SQL only, so SQLite
and PostgreSQL give the same answers.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.limits.ledger import BlastRadius
from app.stats import percentile
from core.status import IN_PROGRESS, is_error
from memory.tables import Breaker, BudgetUsage, DeadLetter, Escalation, Run, RunEvent

DEFAULT_WINDOW_S = 86_400.0
BUCKETS = 24
FULLEST_BUDGETS = 8
CACHE_HIT_EVENT = "cache_hit"
ALL_RUNS = "all"
K = TypeVar("K", str, datetime)


@dataclass(frozen=True)
class Figures:
    """What a set of runs did: one group (a route or a release) over the window or one bucket of it.

    Latency is question to outcome of finished runs; the error rate is the share of finished runs that
    ended in anything but an answer. Rates and percentiles are None when no run qualifies.
    """

    group: str
    start: datetime | None  # the bucket's start; None for the whole window
    runs: int
    finished: int
    errors: int
    error_rate: float | None
    cached: int
    cache_hit_rate: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    cost_usd: float
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class DeadLetterCount:
    """Runs dead-lettered in one bucket."""

    start: datetime
    dead_letters: int


@dataclass(frozen=True)
class BudgetLine:
    """One resource of one budget scope: used and held against its cap (plus reviewers' one-off grants)."""

    scope: str
    resource: str
    used: float
    reserved: float
    granted: float
    limit: float | None  # None: an uncapped tally (what the cache saved)

    @property
    def percent(self) -> float | None:
        """Used and held, as a percent of the limit; None when uncapped."""
        return None if self.limit is None else used_percent(self.used + self.reserved, self.limit)


@dataclass(frozen=True)
class EscalationsWaiting:
    """Open escalations: how many, of which type, and how long the oldest has waited."""

    open: int
    by_type: dict[str, int]
    oldest_wait_s: float | None


@dataclass(frozen=True)
class OpsReport:
    """Every figure of the Ops tab for one window ending ``until``."""

    since: datetime
    until: datetime
    bucket_s: float
    by_route: list[Figures]
    by_release: list[Figures]
    route_series: list[Figures]
    release_series: list[Figures]
    dead_letters: list[DeadLetterCount]
    breakers: dict[str, int]  # breakers per state, now
    breakers_not_closed: list[str]
    budgets: list[BudgetLine]  # the capped ones closest to their caps, fullest first
    escalations: EscalationsWaiting


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list; None matches any value."""

    status: str | None = None
    route: str | None = None
    release: str | None = None
    tenant: str | None = None


@dataclass(frozen=True)
class RunFacets:
    """The values the run filters can take: those present in the database."""

    statuses: list[str]
    routes: list[str]
    releases: list[str]
    tenants: list[str]


def used_percent(spent: float, limit: float) -> float:
    """How much of ``limit`` is used or held; a zero cap has no headroom at all, so it is full."""
    return 100 * spent / limit if limit > 0 else 100.0


def _latency_s(run: Run) -> float | None:
    if run.finished_at is None or run.status in IN_PROGRESS:
        return None
    return (_utc(run.finished_at) - _utc(run.created_at)).total_seconds()


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp Firebreak writes is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def figures(group: str, start: datetime | None, runs: Sequence[Run], cached_ids: set[str]) -> Figures:
    """The figures of ``runs``; ``cached_ids`` are the runs answered from the cache."""
    finished = [run for run in runs if run.status not in IN_PROGRESS]
    errors = sum(is_error(run.status) for run in finished)
    cached = sum(run.id in cached_ids for run in runs)
    latencies = [latency for run in finished if (latency := _latency_s(run)) is not None]
    return Figures(
        group=group,
        start=start,
        runs=len(runs),
        finished=len(finished),
        errors=errors,
        error_rate=_rate(errors, len(finished)),
        cached=cached,
        cache_hit_rate=_rate(cached, len(runs)),
        latency_p50_s=percentile(latencies, 50),
        latency_p95_s=percentile(latencies, 95),
        cost_usd=sum(run.cost_usd for run in runs),
        input_tokens=sum(run.input_tokens for run in runs),
        output_tokens=sum(run.output_tokens for run in runs),
    )


def bucket_start(moment: datetime, bucket_s: float) -> datetime:
    """The start of the bucket holding ``moment``: buckets are aligned to the epoch, so they stay put."""
    at = _utc(moment).timestamp()
    return datetime.fromtimestamp(at - at % bucket_s, UTC)


def _grouped(runs: Iterable[Run], key: Callable[[Run], K]) -> dict[K, list[Run]]:
    """Runs by ``key``, in key order."""
    groups: dict[K, list[Run]] = defaultdict(list)
    for run in runs:
        groups[key(run)].append(run)
    return dict(sorted(groups.items()))


def per_group(runs: Sequence[Run], key: Callable[[Run], str], cached_ids: set[str]) -> list[Figures]:
    """Figures per group over the whole window, then one line for every run."""
    groups = [figures(name, None, members, cached_ids) for name, members in _grouped(runs, key).items()]
    return [*groups, figures(ALL_RUNS, None, runs, cached_ids)] if runs else []


def series(runs: Sequence[Run], key: Callable[[Run], str], cached_ids: set[str], bucket_s: float) -> list[Figures]:
    """Figures per group and bucket, oldest bucket first; buckets without runs are left out."""
    by_bucket = _grouped(runs, lambda run: bucket_start(run.created_at, bucket_s))
    return [
        figures(name, start, members, cached_ids)
        for start, bucket in by_bucket.items()
        for name, members in _grouped(bucket, key).items()
    ]


def runs_between(engine: Engine, since: datetime, until: datetime) -> list[Run]:
    """The runs that started in the window."""
    query = select(Run).where(col(Run.created_at) >= since, col(Run.created_at) < until)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(query).all())


def cached_run_ids(engine: Engine, since: datetime) -> set[str]:
    """Runs since ``since`` answered from the semantic cache: ``cache_lookup`` records a run event per hit."""
    query = (
        select(RunEvent.run_id)
        .distinct()
        .join(Run, col(Run.id) == col(RunEvent.run_id))
        .where(col(RunEvent.kind) == CACHE_HIT_EVENT, col(Run.created_at) >= since)
    )
    with Session(engine) as session:
        return set(session.exec(query).all())


def dead_letters_per_bucket(engine: Engine, since: datetime, until: datetime, bucket_s: float) -> list[DeadLetterCount]:
    """Dead letters of the window per bucket, oldest first, requeued ones included: the volume is what failed."""
    written = col(DeadLetter.created_at)
    with Session(engine) as session:
        times = session.exec(
            select(DeadLetter.created_at).where(written >= since.timestamp(), written < until.timestamp())
        )
        counts = Counter(bucket_start(datetime.fromtimestamp(at, UTC), bucket_s) for at in times)
    return [DeadLetterCount(start, count) for start, count in sorted(counts.items())]


def breaker_states(engine: Engine) -> tuple[dict[str, int], list[str]]:
    """How many breakers are in each state now, and the names of those that are not closed."""
    with Session(engine) as session:
        rows = session.exec(select(Breaker).order_by(col(Breaker.name))).all()
    return dict(Counter(row.state for row in rows)), [row.name for row in rows if row.state != "closed"]


def budget_lines(ledger: BlastRadius, scope_prefix: str = "", since: float | None = None) -> list[BudgetLine]:
    """Usage against the caps of every scope starting with ``scope_prefix`` (updated since ``since``)."""
    rows: Sequence[BudgetUsage] = ledger.store.usage(scope_prefix)
    return [
        BudgetLine(row.scope, row.resource, row.used, row.reserved, row.granted, _limit(ledger, row))
        for row in rows
        if since is None or row.updated_at >= since
    ]


def fullest(lines: Sequence[BudgetLine], count: int = FULLEST_BUDGETS) -> list[BudgetLine]:
    """The ``count`` capped lines closest to their caps, fullest first."""
    return sorted((line for line in lines if line.limit is not None), key=lambda line: -(line.percent or 0.0))[:count]


def _limit(ledger: BlastRadius, row: BudgetUsage) -> float | None:
    cap = ledger.cap_of(row.scope, row.resource)
    return None if cap is None else cap + row.granted


def escalations_waiting(engine: Engine, now: float) -> EscalationsWaiting:
    with Session(engine) as session:
        rows = session.exec(select(Escalation.type, Escalation.created_at).where(Escalation.status == "open")).all()
    oldest = min((created for _, created in rows), default=None)
    return EscalationsWaiting(
        open=len(rows),
        by_type=dict(sorted(Counter(kind for kind, _ in rows).items())),
        oldest_wait_s=None if oldest is None else now - oldest,
    )


def ops_report(
    engine: Engine, ledger: BlastRadius, *, window_s: float = DEFAULT_WINDOW_S, now: float | None = None
) -> OpsReport:
    """Every Ops figure for the ``window_s`` seconds up to ``now``, in ``BUCKETS`` buckets."""
    now = time.time() if now is None else now
    until = datetime.fromtimestamp(now, UTC)
    since = until - timedelta(seconds=window_s)
    bucket_s = window_s / BUCKETS
    runs = runs_between(engine, since, until)
    cached = cached_run_ids(engine, since)
    states, not_closed = breaker_states(engine)

    def route(run: Run) -> str:
        return run.route

    def release(run: Run) -> str:
        return run.release

    return OpsReport(
        since=since,
        until=until,
        bucket_s=bucket_s,
        by_route=per_group(runs, route, cached),
        by_release=per_group(runs, release, cached),
        route_series=series(runs, route, cached, bucket_s),
        release_series=series(runs, release, cached, bucket_s),
        dead_letters=dead_letters_per_bucket(engine, since, until, bucket_s),
        breakers=states,
        breakers_not_closed=not_closed,
        budgets=fullest(budget_lines(ledger, "day:", since=since.timestamp())),
        escalations=escalations_waiting(engine, now),
    )


def find_runs(engine: Engine, which: RunFilter, *, limit: int = 50) -> list[Run]:
    """The newest runs matching every filter given."""
    query = select(Run).order_by(col(Run.created_at).desc()).limit(limit)
    for column, value in (
        (Run.status, which.status),
        (Run.route, which.route),
        (Run.release, which.release),
        (Run.tenant_id, which.tenant),
    ):
        if value is not None:
            query = query.where(column == value)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(query).all())


def run_facets(engine: Engine) -> RunFacets:
    """Every status, route, release and tenant that some run has, sorted."""

    def values(column: Any) -> list[str]:
        with Session(engine) as session:
            return sorted(session.exec(select(column).distinct()).all())

    return RunFacets(
        statuses=values(Run.status),
        routes=values(Run.route),
        releases=values(Run.release),
        tenants=values(Run.tenant_id),
    )
