"""``firebreak eval state``: the seed's state patterns as measured scenarios.

* a 200-turn conversation on a 1,200-token window: the largest prompt sent, and whether a fact from turn 3
  is still used at turn 150 (context checkpointing, pattern 11);
* the seed's replanning example: the pricing API times out, the plan is patched with cached prices, the
  report is written (pattern 13);
* the seed's fourth failure story: three agents changing one ticket at once, and two that would flip it
  forever (multi-agent state sync, pattern 12).

Real agent, databases, checkpointer and tools; the scripted model stands in for the provider.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.services import prepare_database
from core.config import Settings, load_settings
from core.errors import ChangeBudgetExhausted
from core.status import RunStatus
from evals.scenario import Scenario, suite_report
from graph.agent import Agent
from memory.shared_state import Entity, EntityStore

ROUTE = "scripted/demo"
WINDOW = 1200
TURNS = 200
FACT_TURN, RECALL_TURN = 3, 150
AGENTS = ("triage", "billing", "support")
CHANGES_EACH = 20
FLIP_BUDGET = 10


def _script(folder: Path, name: str, lines: Sequence[dict[str, Any]]) -> str:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return str(path)


def _settings(folder: Path, name: str, script: str, **overrides: Any) -> Settings:
    return load_settings(database_url=f"sqlite:///{folder / name}.db", script=script, **overrides)


async def _ask(settings: Settings, questions: Sequence[str], thread: str, **kwargs: Any) -> tuple[list[Any], Any]:
    async with Agent.open(settings) as agent:
        results = [await agent.ask(q, route=ROUTE, thread_id=thread, **kwargs) for q in questions]
        return [agent.settle_script(r) for r in results], agent.services


async def long_conversation(folder: Path) -> Scenario:
    """200 turns on a 1,200-token window; turn 150 (in a new process's agent) needs the fact from turn 3."""
    conversation = {
        # The turns are alike on purpose: no rephrasing trigger, no cache, and budgets for 200 quick turns.
        "models": {ROUTE: {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "context_window": WINDOW}},
        "cache": {"enabled": False},
        "triggers": {"rephrase_count": 1_000_000},
        "limits": {"session": {"tokens": 1e7}, "day": {"tokens": 1e7}},
        "rate_limits": {"user": {"requests": 1e6}, "tenant": {"requests": 1e6}},
    }
    rules = _script(
        folder,
        "chat",
        [
            {"repeat": True, "expect": "Summary:", "text": "The user chatted about the weather and their plans."},
            {"repeat": True, "after": "user", "text": "Noted, thank you."},
        ],
    )
    recall = _script(folder, "recall", [{"expect": "order: 1234", "text": "Your order is 1234."}])
    filler = "Tell me something nice about the weather today, and about the plans I have for the weekend."
    turns = [f"Turn {n}: {filler}" for n in range(1, TURNS + 1)]
    turns[FACT_TURN - 1] = f"Turn {FACT_TURN}: for the record, my order number is 1234."
    turns[RECALL_TURN - 1] = f"Turn {RECALL_TURN}: what was my order number again?"
    chat = _settings(folder, "context", rules, **conversation)
    before, services = await _ask(chat, turns[: RECALL_TURN - 1], "long")
    (answer,), _ = await _ask(_settings(folder, "context", recall, **conversation), [turns[RECALL_TURN - 1]], "long")
    after, _ = await _ask(chat, turns[RECALL_TURN:], "long")
    results = [*before, answer, *after]
    prompts = [call.input_tokens for r in results for call in services.runs.model_calls(r.run_id)]
    figures = {
        "turns": len(results),
        "window_tokens": WINDOW,
        "max_context_tokens": max(prompts),
        "checkpoints": len(services.context.for_thread("long")),
        "fact_from_turn_3_used_at_turn_150": answer.answer == "Your order is 1234.",
        "unanswered_turns": sum(r.status != RunStatus.ANSWERED for r in results),
    }
    passed = (
        figures["max_context_tokens"] <= WINDOW
        and figures["fact_from_turn_3_used_at_turn_150"] is True
        and figures["unanswered_turns"] == 0
    )
    return Scenario("long_conversation_200_turns", passed, figures)


# The seed's replanning example: sales, then live prices, then the report from both; the live pricing API hangs.
PRICING_DOWN: dict[str, Any] = {
    "faults": {"pricing_api": {"hang": True}},
    "tools": {"timeouts_s": {"pricing_api": 0.2}},
}
REPORT = "Report: the dock lists at $89.90, the desk at $479."


def seed_replan_script(
    items: Sequence[str] = ("USB-C dock", "Standing desk"), report: str = REPORT
) -> list[dict[str, Any]]:
    """The scripted model's lines for the seed's example: the plan, each step as the plan marks it next (the
    pricing step fails, and the patch puts cached prices in its place), then the report."""
    prices = {"items": list(items)}
    plan = {
        "steps": [
            {"id": "s1", "tool": "sales_data"},
            {"id": "s2", "tool": "pricing_api", "inputs": prices},
            {"id": "s3", "depends_on": ["s1", "s2"]},
        ]
    }
    return [
        {"expect": "submit_plan", "tool_calls": [{"name": "submit_plan", "arguments": plan}]},
        {"expect": "s1 [NEXT] sales_data", "tool_calls": [{"name": "sales_data", "arguments": {}}]},
        {"expect": "s2 [NEXT] pricing_api", "tool_calls": [{"name": "pricing_api", "arguments": prices}]},
        {"expect": "s2b [NEXT] cached_prices", "tool_calls": [{"name": "cached_prices", "arguments": prices}]},
        {"expect": "s3 [NEXT] answer", "text": report},
    ]


async def replan_pricing_api_down(folder: Path) -> Scenario:
    """Sales, then live prices (the API hangs), then the report: the plan is patched, the report written."""
    settings = _settings(folder, "replan", _script(folder, "replan", seed_replan_script()), **PRICING_DOWN)
    question = "Write a pricing report for the dock and the desk"
    (result,), services = await _ask(settings, [question], "report", plan=True)
    versions = services.plans.versions(result.run_id)
    figures = {
        "status": result.status,
        "plan_versions": [f"v{v.version} {v.change}" + (f" ({v.severity})" if v.severity else "") for v in versions],
        "replans": len(versions) - 1,
        "report_written": bool(result.answer and result.answer.startswith("Report:")),
    }
    passed = [v.change for v in versions] == ["planned", "patched"] and figures["report_written"]
    return Scenario("replan_pricing_api_down", passed, figures)


def _agent_change(agent: str, n: int) -> Any:
    """One agent's n-th change, computed from the ticket as it is now: what a lost update would drop."""

    def change(ticket: Entity) -> dict[str, Any]:
        time.sleep(random.uniform(0.001, 0.004))  # thinking between read and write: the race window
        return {"log": [*ticket.data["log"], f"{agent}:{n}"], f"{agent}_step": n}

    return change


def three_agents_one_ticket(folder: Path) -> Scenario:
    """Three agents make 20 changes each to one ticket at once; then two flip its owner until stopped."""
    engine = prepare_database(load_settings(database_url=f"sqlite:///{folder / 'ticket.db'}"))
    store = EntityStore(engine, max_changes=len(AGENTS) * CHANGES_EACH)
    store.create("acme", "ticket", "T-1", {"log": []}, actor="intake")
    start = threading.Barrier(len(AGENTS))

    def work(agent: str) -> None:
        start.wait()
        for n in range(CHANGES_EACH):
            store.update_with_retry("acme", "ticket", "T-1", _agent_change(agent, n), actor=agent, attempts=50)

    threads = [threading.Thread(target=work, args=(agent,)) for agent in AGENTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = store.get("acme", "ticket", "T-1")
    assert final is not None
    events = store.history("acme", "ticket", "T-1")
    replayed: dict[str, Any] = {}
    for event in events:
        replayed.update(event.patch)

    flipper = EntityStore(engine, max_changes=FLIP_BUDGET)
    flipper.create("acme", "ticket", "T-2", {"owner": "nobody"}, actor="intake")
    stopped = []

    def take_it(agent: str) -> None:
        try:
            while True:
                flipper.update_with_retry("acme", "ticket", "T-2", lambda _: {"owner": agent}, actor=agent, attempts=50)
        except ChangeBudgetExhausted:
            stopped.append(agent)

    flippers = [threading.Thread(target=take_it, args=(agent,)) for agent in ("billing", "support")]
    for thread in flippers:
        thread.start()
    for thread in flippers:
        thread.join(timeout=60)
    flipped = flipper.get("acme", "ticket", "T-2")
    assert flipped is not None
    engine.dispose()
    figures = {
        "agents": len(AGENTS),
        "changes_made": len(AGENTS) * CHANGES_EACH,
        "lost_updates": len(AGENTS) * CHANGES_EACH - len(final.data["log"]),
        "final_version": final.version,
        "events": len(events),
        "log_replays_to_state": replayed == final.data,
        "ping_pong_changes": flipped.changes,
        "ping_pong_stopped_by_budget": len(stopped) == 2 and flipped.changes == FLIP_BUDGET,
    }
    passed = (
        figures["lost_updates"] == 0
        and figures["log_replays_to_state"] is True
        and figures["events"] == final.version
        and figures["ping_pong_stopped_by_budget"] is True
    )
    return Scenario("three_agents_one_ticket", passed, figures)


async def run_state(folder: Path) -> dict[str, Any]:
    scenarios = [
        await long_conversation(folder),
        await replan_pricing_api_down(folder),
        await asyncio.to_thread(three_agents_one_ticket, folder),
    ]
    return suite_report("state", scenarios)


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="firebreak-state-") as folder:
        return asyncio.run(run_state(Path(folder)))
