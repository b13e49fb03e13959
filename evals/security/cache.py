"""The semantic cache tried as the users of one tenant and as a tenant whose tools fail (issue 16, items 1 and 2).

* ``cross_user_cache``: four users of one tenant each ask three questions answered from per-user tools (balance,
  last order, address), each twice, and one question answered from a shared help centre. Counted: answers
  carrying another user's data (must be none), the users' repeats served from their own cache, and the
  shared answer reused across the tenant.
* ``degraded_answer_cached``: runs in which a tool timed out, failed, was declined, was refused by an open
  breaker, a fallback model answered, or a plan step was substituted; none may be stored, while a clean
  answer asked afterwards on the same configuration is.

Real agent, graph, checkpointer, embeddings and SQLite files under ``folder``; the scripted model and the
fault plan are the edge of the world.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from app.services import Services, build_services
from app.tools.registry import ToolContext, ToolRegistry, tool
from core.config import Settings, deep_merge, load_settings
from core.status import RunStatus
from evals.scenario import Scenario
from evals.state import PRICING_DOWN, seed_replan_script
from examples.support_desk.tools import knowledge_search
from graph.agent import Agent, RunResult
from memory.tables import CacheEntry

ROUTE = "scripted/demo"
TENANT = "acme"
# Each user's private data: distinct values, so an answer says whose data it carries.
PRIVATE: dict[str, dict[str, str]] = {
    "ann": {"balance": "$120.00", "order": "order 1001, a desk lamp", "address": "1 Elm Street"},
    "bob": {"balance": "$7.00", "order": "order 1002, a USB-C dock", "address": "22 Oak Road"},
    "cai": {"balance": "$3,400.00", "order": "order 1003, a standing desk", "address": "5 Pine Lane"},
    "dee": {"balance": "$0.50", "order": "order 1004, a monitor arm", "address": "9 Birch Court"},
}
# question → (per-user tool, the field it reads)
QUESTIONS = {
    "What is my account balance?": ("my_balance", "balance"),
    "Which was my last order?": ("my_last_order", "order"),
    "Which address do you have for me?": ("my_address", "address"),
}
SHARED_QUESTION = "What is your refund policy?"
SHARED_ANSWER = "Refunds take 5 business days."
# The scenarios ask alike questions on purpose, and database tools get a second as on a loaded machine.
QUIET: dict[str, Any] = {
    "triggers": {"rephrase_count": 1_000_000},
    "tools": {"class_timeouts_s": {"db": 1.0}},
}


def _private(field: str) -> Any:
    @tool(kind="read", cost_class="db", name=f"my_{'last_' if field == 'order' else ''}{field}")
    def read(ctx: ToolContext) -> dict[str, str]:
        """The asking user's own record."""
        return {"owner": ctx.user_id, field: PRIVATE[ctx.user_id][field]}

    return read


@tool(kind="read", cost_class="db", shared=True, retries=1, timeout_s=0.2)
def quarterly_report() -> str:
    """The quarterly report every employee of the tenant may read."""
    return "Revenue grew 4% in the quarter."


PRIVATE_TOOLS = [_private(field) for field in ("balance", "order", "address")]


def _settings(folder: Path, name: str, script: Sequence[dict[str, Any]], **overrides: Any) -> Settings:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in script), encoding="utf-8")
    database = f"sqlite:///{folder / name}.db"
    return load_settings(database_url=database, script=str(path), **deep_merge(QUIET, overrides))


def _stored(services: Services) -> list[str]:
    """The questions whose answers the semantic layer holds."""
    with Session(services.engine) as session:
        return list(session.exec(select(CacheEntry.text).where(col(CacheEntry.layer) == "llm_response")).all())


# --- cross_user_cache ----------------------------------------------------------------------------------------------


def _identity_rules() -> list[dict[str, Any]]:
    """A rules script: each question calls its tool, and each tool result is answered with what it holds."""
    answers = [
        {"repeat": True, "after": "tool", "expect": json.dumps({field: value}).strip("{}"), "text": f"{value}."}
        for data in PRIVATE.values()
        for field, value in data.items()
    ]
    calls = [
        {"repeat": True, "after": "user", "expect": question, "tool_calls": [{"name": name, "arguments": {}}]}
        for question, (name, _) in QUESTIONS.items()
    ]
    shared = [
        {"repeat": True, "after": "user", "expect": SHARED_QUESTION, "tool_calls": [_search_call()]},
        {"repeat": True, "after": "tool", "expect": "refund", "text": SHARED_ANSWER},
    ]
    return [*answers, *calls, *shared]


def _search_call() -> dict[str, Any]:
    return {"name": "knowledge_search", "arguments": {"query": "refund policy"}}


async def _cross_user(folder: Path) -> Scenario:
    settings = _settings(folder, "identity", _identity_rules())
    services = build_services(settings, tools=ToolRegistry([*PRIVATE_TOOLS, knowledge_search]))
    cross, same, shared, probes = 0, 0, 0, set()
    async with Agent.open(settings, services=services) as agent:
        for round_ in ("first", "again"):
            for question, (_, field) in QUESTIONS.items():
                for user, data in PRIVATE.items():
                    result = await agent.ask(question, route=ROUTE, tenant_id=TENANT, user_id=user)
                    probes.add((question, user))
                    others = [other[field] for name, other in PRIVATE.items() if name != user]
                    cross += any(value in (result.answer or "") for value in others)
                    same += round_ == "again" and result.cache is not None and data[field] in (result.answer or "")
        for user in PRIVATE:
            result = await agent.ask(SHARED_QUESTION, route=ROUTE, tenant_id=TENANT, user_id=user)
            shared += result.cache is not None and result.answer == SHARED_ANSWER
    figures = {
        "probes": len(probes),
        "per_user_tools": len(QUESTIONS),
        "users": len(PRIVATE),
        "cross_user_hits": cross,
        "same_user_hits": same,
        "shared_answer_hits": shared,  # the help-centre answer, reused by the tenant's other users
    }
    return Scenario("cross_user_cache", cross == 0 and same > 0, figures)


# --- degraded_answer_cached ----------------------------------------------------------------------------------------

REPORT = "What does the quarterly report say?"
UNAVAILABLE = {"text": "The report is unavailable right now."}
REPORT_CALL = {"tool_calls": [{"name": "quarterly_report", "arguments": {}}]}
CLEAN = "When do you open?"
CLEAN_ANSWER = {"text": "We open at 9 every weekday."}
PLANNED = "Write a pricing report for the USB-C dock and the standing desk"
PAIR = {
    "models": ["scripted/primary", "scripted/backup"],
    "max_output_tokens": 64,
    "temperature": 0.0,
    "timeout_s": 5.0,
}
# case → (script, overrides, asks), each ask (question, extra keywords); the clean question comes last.
CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any], list[tuple[str, dict[str, Any]]]]] = {
    "timeout": ([REPORT_CALL, UNAVAILABLE], {"faults": {"quarterly_report": {"hang": True}}}, [(REPORT, {})]),
    "tool_error": (
        [REPORT_CALL, UNAVAILABLE],
        {"faults": {"quarterly_report": {"error_rate": 1.0, "error_kind": "bad_request"}}},
        [(REPORT, {})],
    ),
    "circuit_open": (
        [REPORT_CALL, UNAVAILABLE, REPORT_CALL, UNAVAILABLE],
        {
            "faults": {"quarterly_report": {"error_rate": 1.0, "error_kind": "server"}},
            "breakers": {"overrides": {"tool:quarterly_report": {"minimum_calls": 1, "failure_threshold": 1}}},
        },
        [(REPORT, {}), (REPORT, {"user_id": "bob"})],  # the first trips the breaker, the second is refused
    ),
    "refusal": (
        [REPORT_CALL, {"text": "0.7"}, {"text": "I did not open the report."}],
        {"gate": {"actions": ["write", "read"]}},
        [(REPORT, {"thread_id": "declined"}), ("no", {"thread_id": "declined"})],  # the user declines the read
    ),
    "fallback_model": (
        [{"error": "server"}, {"text": "The report says revenue grew 4%."}],
        {"routes": {"pair": PAIR}, "retries": {"attempts": 1}},
        [(REPORT, {"route": "pair"})],
    ),
    "substitution": (seed_replan_script(), PRICING_DOWN, [(PLANNED, {"plan": True})]),
}


async def _degraded_case(folder: Path, case: str) -> tuple[list[str], int, int]:
    """One case: why each degraded run was not stored, how many degraded answers and clean answers were."""
    script, overrides, asks = CASES[case]
    settings = _settings(folder, f"degraded-{case}", [*script, CLEAN_ANSWER], **overrides)
    tools = None if case == "substitution" else ToolRegistry([quarterly_report, knowledge_search])
    services = build_services(settings, tools=tools)
    async with Agent.open(settings, services=services) as agent:
        ended: list[RunResult] = []
        for question, extra in asks:
            result = await agent.ask(question, **{"route": ROUTE, "tenant_id": TENANT, "user_id": "ann", **extra})
            if result.status != RunStatus.WAITING:  # a declined read: the run ends once the user has said no
                ended.append(result)
        clean = agent.settle_script(await agent.ask(CLEAN, route=ROUTE, tenant_id=TENANT, user_id="ann"))
        stored = _stored(agent.services)
        reasons = [_skip_reason(agent.services, result) for result in ended]
    clean_stored = stored.count(CLEAN) if clean.status == RunStatus.ANSWERED else 0
    return reasons, len(stored) - stored.count(CLEAN), clean_stored


def _skip_reason(services: Services, result: RunResult) -> str:
    spans = services.runs.spans(result.run_id)
    store = next((s.attributes for s in spans if s.name == "node cache_store"), None)
    if store is None:
        return f"no cache_store ({result.status})"
    return str(store.get("firebreak.cache.store_skipped", "stored"))


async def _degraded(folder: Path) -> Scenario:
    reasons: dict[str, list[str]] = {}
    stored = clean = 0
    for case in CASES:
        reasons[case], case_stored, case_clean = await _degraded_case(folder, case)
        stored, clean = stored + case_stored, clean + case_clean
    figures = {
        "degraded_runs": sum(len(why) for why in reasons.values()),
        "skip_reasons": reasons,  # case → the firebreak.cache.store_skipped of each of its runs
        "degraded_answers_stored": stored,
        "clean_answers_stored": clean,  # one clean question after each case, on the same configuration
    }
    passed = stored == 0 and clean == len(CASES) and all(reasons.values())
    return Scenario("degraded_answer_cached", passed, figures)


def scenarios(folder: Path) -> list[Scenario]:
    return [asyncio.run(_cross_user(folder)), asyncio.run(_degraded(folder))]
