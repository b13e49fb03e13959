"""The Ops figures from real runs of the agent on the scripted model, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta

import pytest
from conftest import run
from sqlalchemy import update
from sqlalchemy.engine import Engine

from app.dashboards import ALL_RUNS, BUCKETS, OpsReport, RunFilter, find_runs, ops_report, run_facets
from app.limits.ledger import BlastRadius
from app.stats import percentile
from graph.agent import Agent, RunResult
from graph.worker import Worker, submit
from memory.engine import make_engine
from memory.ledger import LedgerStore
from memory.queue import QueueStore
from memory.tables import Run, table_of

ROUTE = "scripted/demo"
LOOKUP_42 = {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 42}}]}
# The answer takes a second, so the answered run is the slowest of the three: p95 sees it, p50 does not.
DELAY_S = 1.0
SLOW_ANSWER_42 = {"expect": "USB-C dock", "delay_s": DELAY_S, "text": "Order 42 is a USB-C dock."}
FAILS = {"error": "bad_request"}
FAST_DEATH = {"retries": {"attempts": 1}, "queue": {"retry_base_delay_s": 0.0}}
CANCEL_ORDER_2 = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]}


async def three_runs(settings) -> list[RunResult]:
    """An answered run, the same question answered from the cache in a new thread, and a failed run."""
    async with Agent.open(settings) as agent:
        answered = await agent.ask("Where is order 42?", route=ROUTE, tenant_id="acme")
        cached = await agent.ask("where is order 42", route=ROUTE, tenant_id="acme")
        failed = await agent.ask("Where is order 7?", route=ROUTE, tenant_id="globex")
        return [agent.settle_script(answered), cached, failed]


@pytest.fixture
def made(database_url, make_settings, write_script):
    """(settings, the three runs) on a fresh database."""
    settings = make_settings(database_url, script=write_script(LOOKUP_42, SLOW_ANSWER_42, FAILS))
    results = run(three_runs(settings))
    assert [result.status for result in results] == ["answered", "answered", "failed"]
    assert results[1].cache is not None
    return settings, results


@contextmanager
def engine_of(settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def report_of(settings, **kwargs) -> OpsReport:
    with engine_of(settings) as engine:
        ledger = BlastRadius(LedgerStore(engine), settings.limits, rates=settings.rate_limits)
        return ops_report(engine, ledger, **kwargs)


def runs_found(settings, which: RunFilter) -> list[Run]:
    with engine_of(settings) as engine:
        return find_runs(engine, which)


def test_runs_errors_and_cache_hits_are_counted_per_route(made):
    settings, _ = made
    report = report_of(settings)

    (route, total) = report.by_route
    assert (route.group, total.group) == (ROUTE, ALL_RUNS)
    assert (route.runs, route.finished, route.errors, route.cached) == (3, 3, 1, 1)
    assert route.error_rate == pytest.approx(1 / 3)
    assert route.cache_hit_rate == pytest.approx(1 / 3)
    assert route.input_tokens > 0 and route.output_tokens > 0
    assert total.runs == 3


def test_latency_percentiles_are_question_to_outcome_times(made):
    settings, _ = made
    (route, _) = report_of(settings).by_route

    assert route.latency_p95_s is not None and route.latency_p50_s is not None
    # Interpolated 90% of the way from the median run to the slow one.
    assert route.latency_p95_s >= 0.9 * DELAY_S
    assert route.latency_p50_s < route.latency_p95_s


def test_runs_are_grouped_per_release_they_were_served_by(made):
    settings, (answered, _, _) = made
    runs = table_of(Run)
    with engine_of(settings) as engine, engine.begin() as connection:
        # The release a run was served by is written when it starts; this one was served by v2.
        connection.execute(update(runs).where(runs.c.id == answered.run_id).values(release="v2"))
    by_release = {row.group: row for row in report_of(settings).by_release}

    assert set(by_release) == {"base", "v2", ALL_RUNS}
    assert (by_release["v2"].runs, by_release["v2"].errors) == (1, 0)
    assert (by_release["base"].runs, by_release["base"].errors) == (2, 1)


def test_each_run_falls_in_the_bucket_of_its_start(made):
    settings, _ = made
    report = report_of(settings, window_s=3600.0)

    assert report.bucket_s == 3600.0 / BUCKETS
    assert {row.group for row in report.route_series} == {ROUTE}
    assert sum(row.runs for row in report.route_series) == 3
    bucket = timedelta(seconds=report.bucket_s)
    starts = {row.start for row in report.route_series}
    for found in runs_found(settings, RunFilter()):
        created = found.created_at.replace(tzinfo=UTC) if found.created_at.tzinfo is None else found.created_at
        assert any(start is not None and start <= created < start + bucket for start in starts)


def test_runs_before_the_window_are_left_out(made):
    settings, _ = made
    report = report_of(settings, window_s=60.0, now=time.time() + 3600)

    assert report.by_route == [] and report.route_series == []


def test_dead_letters_are_counted_per_bucket(database_url, make_settings, write_script):
    settings = make_settings(database_url, script=write_script({"repeat": True, "error": "server"}), **FAST_DEATH)

    async def dead_letter() -> None:
        async with Agent.open(settings) as agent:
            store = QueueStore(agent.services.engine)
            submit(store, settings, "Where is order 42?", route=ROUTE)
            await Worker(agent, store).run_until_idle()

    run(dead_letter())
    report = report_of(settings)

    assert [count.dead_letters for count in report.dead_letters] == [1]
    assert report.by_route[0].errors == 1


def test_breakers_now_and_budget_use_against_the_day_caps(made):
    settings, _ = made
    report = report_of(settings)

    assert report.breakers == {"closed": 2}  # the scripted model's and sql_lookup's, both healthy
    assert report.breakers_not_closed == []
    tokens = next(line for line in report.budgets if line.scope.startswith("day:acme:") and line.resource == "tokens")
    assert tokens.limit == settings.limits.day.tokens
    assert tokens.percent == pytest.approx(100 * tokens.used / settings.limits.day.tokens)
    percents = [line.percent for line in report.budgets]
    assert percents == sorted(percents, reverse=True)


def test_escalations_waiting_for_a_person_are_counted_by_type(database_url, make_settings, write_script):
    # A low self-graded confidence on a write sends the run to a reviewer: it waits.
    settings = make_settings(database_url, script=write_script(CANCEL_ORDER_2, {"text": "0.4"}))

    async def ask() -> RunResult:
        async with Agent.open(settings) as agent:
            return await agent.ask("Please cancel order 2.", route=ROUTE)

    assert run(ask()).status == "waiting"
    report = report_of(settings)

    assert (report.escalations.open, report.escalations.by_type) == (1, {"targeted": 1})
    assert report.escalations.oldest_wait_s is not None and report.escalations.oldest_wait_s >= 0
    (route, _) = report.by_route
    assert (route.runs, route.finished, route.error_rate, route.latency_p50_s) == (1, 0, None, None)


def test_runs_are_found_by_status_route_release_and_tenant(made):
    settings, (answered, cached, failed) = made

    def found(which: RunFilter) -> list[str]:
        return [row.id for row in runs_found(settings, which)]

    assert found(RunFilter(status="failed")) == [failed.run_id]
    assert found(RunFilter(tenant="acme")) == [cached.run_id, answered.run_id]  # newest first
    assert found(RunFilter(route=ROUTE, release="base", tenant="globex")) == [failed.run_id]
    assert found(RunFilter(release="v9")) == []


def test_the_run_filters_offer_the_values_runs_have(made):
    settings, _ = made

    with engine_of(settings) as engine:
        found = run_facets(engine)

    assert (found.statuses, found.routes, found.releases, found.tenants) == (
        ["answered", "failed"],
        [ROUTE],
        ["base"],
        ["acme", "globex"],
    )


def test_percentiles_interpolate_between_the_closest_ranks():
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([float(n) for n in range(1, 21)], 95) == pytest.approx(19.05)
