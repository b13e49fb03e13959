"""Blast-radius limits: reservations that never let concurrent callers cross a cap, on both databases."""

from __future__ import annotations

import threading

import pytest
from conftest import run
from sqlmodel import Session, delete, select

from app.limits.ledger import BlastRadius, Scope
from app.services import build_services
from core.config import load_settings
from core.errors import BudgetExceeded
from examples.support_desk.tables import DemoOrder
from graph.agent import Agent
from memory.ledger import LedgerStore
from memory.tables import Alert, BudgetUsage, ModelCall

SCOPE = Scope(run_id="run-1", thread_id="thread-1", tenant_id="acme")


def limiter(database_url: str, clock=None, **limits) -> BlastRadius:
    settings = load_settings(database_url=database_url, limits=limits)
    services = build_services(settings)
    return BlastRadius(LedgerStore(services.engine), settings.limits, **({"clock": clock} if clock else {}))


def test_a_hundred_concurrent_callers_against_a_cap_of_five_get_exactly_five(database_url):
    ledger = limiter(database_url, request={"tool_calls": 5})
    granted, refused = [], []
    start = threading.Barrier(100)

    def caller() -> None:
        start.wait()
        try:
            granted.append(ledger.reserve(SCOPE, {"tool_calls": 1}))
        except BudgetExceeded:
            refused.append(1)

    threads = [threading.Thread(target=caller) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(granted), len(refused)) == (5, 95)


def test_a_refused_reservation_holds_nothing_in_any_scope(database_url):
    ledger = limiter(database_url, request={"cost_usd": 0.5}, session={"cost_usd": 5.0})
    ledger.reserve(SCOPE, {"cost_usd": 0.4})
    with pytest.raises(BudgetExceeded, match=r"cost_usd cap of request:run-1 reached"):
        ledger.reserve(SCOPE, {"cost_usd": 0.2})

    held = {(row.scope.split(":")[0], row.resource): row.reserved for row in ledger.store.usage()}
    assert held[("session", "cost_usd")] == pytest.approx(0.4)


def test_settling_replaces_the_worst_case_with_the_real_usage(database_url):
    ledger = limiter(database_url, request={"tokens": 1000})
    reservation = ledger.reserve(SCOPE, {"tokens": 900})
    ledger.settle(reservation, {"tokens": 120})

    ledger.reserve(SCOPE, {"tokens": 880})  # 120 used + 880 = the cap exactly
    with pytest.raises(BudgetExceeded):
        ledger.reserve(SCOPE, {"tokens": 1})


def test_usage_rows_deleted_behind_the_ledgers_back_are_created_again_and_still_capped(database_url):
    ledger = limiter(database_url, request={"tool_calls": 2})
    ledger.settle(ledger.reserve(SCOPE, {"tool_calls": 1}), {"tool_calls": 1})  # the ledger now knows the rows
    with Session(ledger.store.engine) as session:  # an operator prunes the table
        session.exec(delete(BudgetUsage))
        session.commit()

    ledger.reserve(SCOPE, {"tool_calls": 1})
    ledger.reserve(SCOPE, {"tool_calls": 1})
    with pytest.raises(BudgetExceeded, match=r"tool_calls cap of request:run-1 reached"):
        ledger.reserve(SCOPE, {"tool_calls": 1})
    held = {(row.scope, row.resource): row.reserved for row in ledger.store.usage("request:")}
    assert held == {("request:run-1", "tool_calls"): 2.0}


def test_a_dead_workers_reservation_is_released_when_its_lease_expires(database_url):
    now = [1_000_000.0]
    ledger = limiter(database_url, clock=lambda: now[0], request={"emails": 1}, reservation_ttl_s=30.0)
    ledger.reserve(SCOPE, {"emails": 1})  # its worker dies: never settled
    with pytest.raises(BudgetExceeded):
        ledger.reserve(SCOPE, {"emails": 1})

    now[0] += 31
    ledger.reserve(SCOPE, {"emails": 1})


def test_the_200_dollar_request_is_stopped_at_its_cap_with_no_overshoot_and_an_alert(
    database_url, make_settings, write_script
):
    greedy = {
        "repeat": True,
        "usage": {"input_tokens": 3000, "output_tokens": 4000},
        "tool_calls": [{"name": "knowledge_search", "arguments": {"query": "everything"}}],
    }
    expensive = {
        "scripted/premium": {
            "input_cost_per_token": 0.00003,
            "output_cost_per_token": 0.00006,
            "context_window": 128000,
        }
    }
    settings = make_settings(
        database_url,
        script=write_script(greedy),
        models=expensive,
        agent={"max_steps": 50},
        routes={
            "chat": {"models": ["scripted/premium"], "max_output_tokens": 4000, "temperature": 0.0, "timeout_s": 5.0}
        },
        limits={"request": {"tokens": 10_000_000}},  # money, not tokens, is the cap under test
    )

    async def ask():
        async with Agent.open(settings) as agent:
            return await agent.ask("Research everything, spare no expense"), agent

    result, agent = run(ask())
    # Escalated, not dropped: the run waits for a reviewer to raise the cap once or stop it.
    assert result.status == "waiting"
    (escalation,) = result.escalations
    assert escalation["trigger"] == "budget_breach" and escalation["options"] == ["raise", "stop"]
    with Session(agent.services.engine) as session:
        calls = session.exec(select(ModelCall).where(ModelCall.run_id == result.run_id)).all()
        alerts = session.exec(select(Alert).where(Alert.kind == "budget_breach")).all()
    spent = sum(call.cost_usd for call in calls)
    assert 0 < spent <= 0.50
    assert result.usage.cost_usd == pytest.approx(spent)
    assert [alert.payload["run_id"] for alert in alerts] == [result.run_id]


def test_unpriced_models_are_charged_at_the_worst_case_price_never_free(database_url, make_settings):
    services = build_services(make_settings(database_url))
    unknown = services.gateway._prices("openai/a-model-with-no-known-price")
    known = services.gateway._prices("openai/gpt-4o-mini")

    assert not unknown.known
    assert unknown.cost(100, 10) == pytest.approx(100 * 0.00001 + 10 * 0.00003)
    assert known.known and known.cost(100, 10) > 0


def test_a_read_only_environment_denies_every_write(database_url, make_settings, write_script):
    script = write_script(
        {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]},
        {"expect": "this environment is read-only", "text": "I cannot change orders here."},
    )
    settings = make_settings(database_url, script=script, limits={"read_only": True})

    async def ask():
        async with Agent.open(settings) as agent:
            return agent.settle_script(await agent.ask("Cancel order 2", route="scripted/demo")), agent

    result, agent = run(ask())
    assert result.status == "answered"
    with Session(agent.services.engine) as session:
        assert session.get(DemoOrder, 2).status == "pending"
