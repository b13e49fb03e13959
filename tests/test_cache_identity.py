"""The cache serves an answer only to identities allowed to see what it was built from, and never a degraded one.

Issue 16, items 1 and 2. An answer built from a tool that reads who asks ("my balance") is kept in the asking
user's scope; only answers built from tools declared ``shared`` (or from none) are served across the tenant.
The read-tool layer follows the same rule. A run in which a tool failed, timed out or was refused, an open
breaker refused a call, a plan step was substituted or a fallback model served is never stored, and its
``cache_store`` span says why. Real agent, real embeddings and FAISS, real databases; the scripted model and
the fault plan are the edge.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from conftest import run
from sqlmodel import Session, func, select

from app.services import Services, build_services
from app.tools.registry import Tool, ToolContext, ToolRegistry, tool
from app.tools.runner import run_tool
from evals.scenario import SimulatedTime
from evals.state import PRICING_DOWN, seed_replan_script
from examples.support_desk.tools import knowledge_search
from graph.agent import Agent, RunResult
from memory.tables import CacheEntry

ROUTE = "scripted/demo"
BALANCES = {"ann": "$120.00", "bob": "$7.00", "gina": "$55.00"}
BALANCE = "What is my account balance?"
REPORT = "What does the quarterly report say?"
UNAVAILABLE = {"text": "The report is unavailable right now."}


@tool(kind="read", cost_class="db")
def my_balance(ctx: ToolContext) -> str:
    """The asking user's account balance."""
    return f"{ctx.user_id}: {BALANCES[ctx.user_id]}"


@tool(kind="read", cost_class="db", shared=True, retries=1, timeout_s=0.2)
def quarterly_report() -> str:
    """The quarterly report every employee may read."""
    return "Revenue grew 4% in the quarter."


TOOLS = [my_balance, knowledge_search, quarterly_report]


def call(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments or {}}]}


def balance_reply(user: str) -> list[dict[str, Any]]:
    return [call("my_balance"), {"expect": BALANCES[user], "text": f"Your balance is {BALANCES[user]}."}]


def ask_in_turn(settings, *asks: tuple[str, str, str], route: str = ROUTE) -> tuple[list[RunResult], Services]:
    """Ask each (question, tenant, user) in a new conversation, one after another, on one agent."""

    async def scenario():
        services = build_services(settings, tools=ToolRegistry(TOOLS))
        async with Agent.open(settings, services=services) as agent:
            results = [
                await agent.ask(question, route=route, tenant_id=tenant, user_id=user)
                for question, tenant, user in asks
            ]
            results[-1] = agent.settle_script(results[-1])
            return results, agent.services

    return run(scenario())


def answers_stored(services: Services) -> int:
    with Session(services.engine) as session:
        return session.exec(select(func.count()).where(CacheEntry.layer == "llm_response")).one()


def store_span(services: Services, result: RunResult) -> dict[str, Any]:
    return next(s.attributes for s in services.runs.spans(result.run_id) if s.name == "node cache_store")


def settings_for(make_settings, database_url, write_script, *replies, **overrides):
    return make_settings(database_url, script=write_script(*replies), **overrides)


# --- the semantic layer: whose answer is it ------------------------------------------------------------------------


def test_another_user_of_the_tenant_is_not_served_an_answer_built_from_a_per_user_tool(
    database_url, make_settings, write_script
):
    settings = settings_for(make_settings, database_url, write_script, *balance_reply("ann"), *balance_reply("bob"))

    (ann, bob), services = ask_in_turn(settings, (BALANCE, "acme", "ann"), (BALANCE, "acme", "bob"))

    assert ann.answer == "Your balance is $120.00."
    assert (bob.status, bob.cache, bob.answer) == ("answered", None, "Your balance is $7.00.")
    assert store_span(services, ann)["firebreak.cache.scope"] == "user"


def test_the_same_user_asking_again_is_served_their_own_answer(sqlite_url, make_settings, write_script):
    settings = settings_for(make_settings, sqlite_url, write_script, *balance_reply("ann"))

    (_, again), services = ask_in_turn(settings, (BALANCE, "acme", "ann"), ("what's my account balance", "acme", "ann"))

    assert again.answer == "Your balance is $120.00."
    assert again.cache is not None and again.cache["scope"] == "user"
    assert services.runs.model_calls(again.run_id) == []


@pytest.mark.parametrize(
    "replies",
    [
        [call("knowledge_search", {"query": "refund policy"}), {"text": "Refunds take 5 business days."}],
        [{"text": "Refunds take 5 business days."}],
    ],
    ids=["shared-tool", "no-tool"],
)
def test_an_answer_from_shared_data_alone_is_served_to_the_tenant_and_never_to_another_tenant(
    database_url, make_settings, write_script, replies
):
    question = "What is your refund policy?"
    other_tenant = {"text": "Globex refunds within 30 days."}
    settings = settings_for(make_settings, database_url, write_script, *replies, other_tenant)

    (ann, bob, gina), services = ask_in_turn(
        settings, (question, "acme", "ann"), (question, "acme", "bob"), (question, "globex", "gina")
    )

    assert store_span(services, ann)["firebreak.cache.scope"] == "tenant"
    assert bob.answer == "Refunds take 5 business days."
    assert bob.cache is not None and bob.cache["scope"] == "tenant"
    assert (gina.cache, gina.answer) == (None, "Globex refunds within 30 days.")


def test_a_per_user_result_earlier_in_the_conversation_keeps_later_answers_per_user(
    sqlite_url, make_settings, write_script
):
    replies = [*balance_reply("ann"), {"text": "Paris."}]
    settings = settings_for(make_settings, sqlite_url, write_script, *replies)

    async def scenario():
        services = build_services(settings, tools=ToolRegistry(TOOLS))
        async with Agent.open(settings, services=services) as agent:
            ann = {"route": ROUTE, "tenant_id": "acme", "user_id": "ann", "thread_id": "t-ann"}
            await agent.ask(BALANCE, **ann)
            later = await agent.ask("What is the capital of France?", **ann)
            return agent.settle_script(later), agent.services

    later, services = run(scenario())

    # The model still sees the balance read in the first turn: the answer may carry it.
    assert later.answer == "Paris." and store_span(services, later)["firebreak.cache.scope"] == "user"


# --- the read-tool layer -------------------------------------------------------------------------------------------


class Ledger:
    """Cached reads that count their calls: one per user (it reads ctx.user_id), one shared across the tenant."""

    def __init__(self) -> None:
        self.calls = 0

        @tool(kind="read", cost_class="db", cached=True)
        def statement(month: str, ctx: ToolContext) -> str:
            """The asking user's statement for a month."""
            self.calls += 1
            return f"{ctx.user_id} {month}: {BALANCES[ctx.user_id]}"

        @tool(kind="read", cost_class="db", cached=True, shared=True)
        def fee_schedule(month: str, ctx: ToolContext) -> str:
            """The tenant's published fees for a month."""
            self.calls += 1
            return f"{ctx.tenant_id} {month}: $2 per transfer"

        @tool(kind="write", cost_class="db")
        def transfer(amount: int) -> str:
            """Move money."""
            return "moved"

        self.statement, self.fee_schedule, self.transfer = statement, fee_schedule, transfer

    def services(self, make_settings, database_url) -> Services:
        registry = ToolRegistry([self.statement, self.fee_schedule, self.transfer])
        return build_services(make_settings(database_url), tools=registry, clock=SimulatedTime())


def read_as(services: Services, item: Tool, user: str, arguments: dict[str, Any], *, op: bool = False) -> str:
    context = ToolContext(
        run_id=uuid.uuid4().hex,
        tenant_id="acme",
        user_id=user,
        engine=services.engine,
        settings=services.settings,
        op_id=uuid.uuid4().hex if op else None,
        thread_id="t1" if op else None,
    )
    return run(run_tool(item, arguments, context, timeout_s=5.0, runtime=services.tool_runtime))


def test_a_cached_read_goes_to_another_user_only_when_its_tool_declares_its_data_shared(database_url, make_settings):
    ledger = Ledger()
    services = ledger.services(make_settings, database_url)
    for item in (ledger.statement, ledger.fee_schedule):
        read_as(services, item, "ann", {"month": "May"})

    bobs_statement = read_as(services, ledger.statement, "bob", {"month": "May"})
    bobs_fees = read_as(services, ledger.fee_schedule, "bob", {"month": "May"})
    anns_statement_again = read_as(services, ledger.statement, "ann", {"month": "May"})

    assert (bobs_statement, anns_statement_again) == ("bob May: $7.00", "ann May: $120.00")
    assert bobs_fees == "acme May: $2 per transfer"
    assert ledger.calls == 3  # ann's statement and fees, bob's statement; bob's fees and ann's repeat were cached


def test_a_write_by_one_user_drops_every_users_cached_reads_of_the_tenant(sqlite_url, make_settings):
    ledger = Ledger()
    services = ledger.services(make_settings, sqlite_url)
    for user in ("ann", "bob"):
        read_as(services, ledger.statement, user, {"month": "May"})

    read_as(services, ledger.transfer, "ann", {"amount": 5}, op=True)
    read_as(services, ledger.statement, "bob", {"month": "May"})

    assert ledger.calls == 3


# --- degraded runs are never stored --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ({"quarterly_report": {"hang": True}}, "tool_timeout"),
        ({"quarterly_report": {"error_rate": 1.0, "error_kind": "bad_request"}}, "tool_failed"),
    ],
    ids=["timeout", "error"],
)
def test_an_answer_from_a_run_whose_tool_failed_is_not_stored(
    database_url, make_settings, write_script, faults, reason
):
    settings = settings_for(
        make_settings, database_url, write_script, call("quarterly_report"), UNAVAILABLE, faults=faults
    )

    (result,), services = ask_in_turn(settings, (REPORT, "acme", "ann"))

    assert result.answer == "The report is unavailable right now."
    assert answers_stored(services) == 0
    assert store_span(services, result)["firebreak.cache.store_skipped"] == reason


def test_an_answer_from_a_run_whose_call_an_open_breaker_refused_is_not_stored(sqlite_url, make_settings, write_script):
    replies = [call("quarterly_report"), UNAVAILABLE] * 2
    settings = settings_for(
        make_settings,
        sqlite_url,
        write_script,
        *replies,
        faults={"quarterly_report": {"error_rate": 1.0, "error_kind": "server"}},
        breakers={"overrides": {"tool:quarterly_report": {"minimum_calls": 1, "failure_threshold": 1}}},
    )

    (tripped, refused), services = ask_in_turn(settings, (REPORT, "acme", "ann"), (REPORT, "acme", "bob"))

    assert refused.cache is None and answers_stored(services) == 0
    assert store_span(services, tripped)["firebreak.cache.store_skipped"] == "tool_failed"
    assert store_span(services, refused)["firebreak.cache.store_skipped"] == "circuit_open"


def test_an_answer_from_a_run_whose_read_the_user_declined_is_not_stored(sqlite_url, make_settings, write_script):
    replies = [call("quarterly_report"), {"text": "0.7"}, {"expect": "Rejected", "text": "I did not open the report."}]
    settings = settings_for(make_settings, sqlite_url, write_script, *replies, gate={"actions": ["write", "read"]})

    async def scenario():
        services = build_services(settings, tools=ToolRegistry(TOOLS))
        async with Agent.open(settings, services=services) as agent:
            waiting = await agent.ask(REPORT, route=ROUTE, tenant_id="acme", user_id="ann", thread_id="t-no")
            assert waiting.status == "waiting"
            done = await agent.ask("no", tenant_id="acme", user_id="ann", thread_id="t-no")
            return agent.settle_script(done), agent.services

    done, services = run(scenario())

    assert (done.status, done.answer) == ("answered", "I did not open the report.")
    assert answers_stored(services) == 0
    assert store_span(services, done)["firebreak.cache.store_skipped"] == "tool_refused"


def test_an_answer_a_fallback_model_gave_is_not_stored(sqlite_url, make_settings, write_script):
    pair = {
        "models": ["scripted/primary", "scripted/backup"],
        "max_output_tokens": 64,
        "temperature": 0.0,
        "timeout_s": 5.0,
    }
    settings = make_settings(
        sqlite_url,
        script=write_script({"error": "server"}, {"text": "Refunds take 5 business days."}),
        routes={"pair": pair},
        retries={"attempts": 1},
    )

    (result,), services = ask_in_turn(settings, ("What is your refund policy?", "acme", "ann"), route="pair")

    assert result.answer == "Refunds take 5 business days."
    assert [call.fallback_position for call in services.runs.model_calls(result.run_id)] == [0, 1]
    assert answers_stored(services) == 0
    assert store_span(services, result)["firebreak.cache.store_skipped"] == "fallback_model"


def test_an_answer_from_a_plan_whose_step_was_substituted_is_not_stored(database_url, make_settings, write_script):
    settings = make_settings(database_url, script=write_script(*seed_replan_script()), **PRICING_DOWN)

    async def scenario():
        async with Agent.open(settings) as agent:
            question = "Write a pricing report for the USB-C dock and the standing desk"
            result = await agent.ask(question, route=ROUTE, tenant_id="acme", user_id="ann", plan=True)
            return agent.settle_script(result), agent.services

    result, services = run(scenario())

    assert result.status == "answered" and result.answer.startswith("Report:")
    assert answers_stored(services) == 0
    assert store_span(services, result)["firebreak.cache.store_skipped"] == "substituted"
