"""Replanning: plans as validated DAGs, patched, replanned or escalated by severity when a step fails.

Real agent, real checkpointer, real databases, real demo tools (the pricing API made to hang by the fault
plan, the operator's tool for an outage); the scripted model stands in for the provider.
"""

from __future__ import annotations

import pytest
from conftest import run

from app.planning.plan import Plan, Step, parse_plan, record_result, render, substitute_step
from core.errors import PlanInvalid
from evals.state import PRICING_DOWN, REPORT, seed_replan_script
from graph.agent import Agent
from memory.shared_state import EntityStore

ROUTE = "scripted/demo"
TOOLS = ["sales_data", "pricing_api", "cached_prices"]
ITEMS = {"items": ["USB-C dock", "Standing desk"]}
# The seed's example: sales, then live prices, then the report from both.
SEED_PLAN = {
    "goal": "A pricing report for the USB-C dock and the standing desk",
    "steps": [
        {"id": "s1", "tool": "sales_data", "inputs": {}, "why": "what sold"},
        {"id": "s2", "tool": "pricing_api", "inputs": ITEMS, "why": "current prices"},
        {"id": "s3", "tool": None, "depends_on": ["s1", "s2"], "why": "write the report"},
    ],
}


def planned(plan: dict) -> dict:
    return {"expect": "submit_plan", "tool_calls": [{"name": "submit_plan", "arguments": plan}]}


def calls(tool: str, arguments: dict, *, next_step: str) -> dict:
    """The model follows the plan: the prompt marks ``next_step`` as the one to take."""
    return {"expect": f"{next_step} [NEXT] {tool}", "tool_calls": [{"name": tool, "arguments": arguments}]}


def ask(settings, question: str, **kwargs):
    async def scenario():
        async with Agent.open(settings) as agent:
            result = agent.settle_script(await agent.ask(question, route=ROUTE, plan=True, **kwargs))
            return result, agent.services

    return run(scenario())


# The plan as data


def test_a_plan_with_a_cycle_is_refused_with_the_cycle_named():
    steps = [{"id": "a", "tool": "sales_data", "depends_on": ["b"]}, {"id": "b", "tool": None, "depends_on": ["a"]}]
    with pytest.raises(PlanInvalid, match="cycle: a → b → a"):
        parse_plan({"steps": steps}, tools=TOOLS, max_steps=8)


def test_a_plan_naming_an_unknown_tool_is_refused_with_the_tools_there_are():
    with pytest.raises(PlanInvalid, match="unknown tool 'send_fax'; available: cached_prices, pricing_api"):
        parse_plan({"steps": [{"id": "s1", "tool": "send_fax"}]}, tools=TOOLS, max_steps=8)


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("{not json", "not valid"),
        ({"steps": []}, "steps"),
        ({"steps": [{"id": "s1"}, {"id": "s1"}]}, "repeated: s1"),
        ({"steps": [{"id": "s1", "depends_on": ["s9"]}]}, "unknown steps: s9"),
        ({"steps": [{"id": f"s{n}"} for n in range(9)]}, "at most 8"),
        ({"steps": [{"id": "s1", "status": "done"}], "extra": 1}, "extra"),
    ],
)
def test_a_malformed_plan_gets_a_clear_error(raw, complaint):
    with pytest.raises(PlanInvalid, match=complaint):
        parse_plan(raw, tools=TOOLS, max_steps=8)


def test_the_model_cannot_mark_its_own_steps_done():
    plan = parse_plan({"steps": [{"id": "s1", "tool": "sales_data", "status": "done"}]}, tools=TOOLS, max_steps=8)
    assert plan.steps[0].status == "pending"


def test_a_substitute_takes_the_failed_steps_place_and_its_dependents_wait_for_it():
    plan = parse_plan(SEED_PLAN, tools=TOOLS, max_steps=8)
    plan, _ = record_result(plan, "sales_data", ok=True)
    plan, failed = record_result(plan, "pricing_api", ok=False, note="timed out")
    assert failed is not None

    patched = substitute_step(plan, failed, "cached_prices")

    assert [(s.id, s.tool, s.status) for s in patched.steps] == [
        ("s1", "sales_data", "done"),
        ("s2", "pricing_api", "dropped"),
        ("s2b", "cached_prices", "pending"),
        ("s3", None, "pending"),
    ]
    assert patched.step("s2b").inputs == ITEMS
    assert patched.step("s3").depends_on == ["s1", "s2b"]
    assert [s.id for s in patched.ready()] == ["s2b"]


def test_the_rendered_plan_marks_what_is_done_failed_and_next():
    plan = Plan(
        steps=[
            Step(id="s1", tool="sales_data", status="done"),
            Step(id="s2", tool="pricing_api", inputs=ITEMS, status="failed", note="timed out"),
            Step(id="s3", depends_on=["s1"]),
        ]
    )
    text = render(plan, 2)
    assert "Plan (version 2)" in text
    assert "- s1 [done] sales_data({})" in text
    assert "- s2 [FAILED] pricing_api" in text and "timed out" in text
    assert "- s3 [NEXT] answer the user" in text


# End to end through the graph


def test_the_seeds_example_patches_a_dead_pricing_api_with_cached_prices_and_writes_the_report(
    database_url, make_settings, write_script
):
    settings = make_settings(database_url, script=write_script(*seed_replan_script()), **PRICING_DOWN)

    result, services = ask(settings, "Write a pricing report for the USB-C dock and the standing desk")

    assert (result.status, result.answer) == ("answered", REPORT)
    first, second = services.plans.versions(result.run_id)
    assert (first.version, first.change, first.made_by) == (1, "planned", "scripted/demo")
    assert [s["status"] for s in first.steps] == ["done", "failed", "pending"]  # frozen when replaced
    assert (second.version, second.change, second.trigger, second.severity, second.made_by) == (
        2,
        "patched",
        "tool_failed",
        "minor",
        "code",
    )
    assert "cached_prices" in second.reason
    assert [(s["id"], s["status"]) for s in second.steps] == [
        ("s1", "done"),
        ("s2", "dropped"),
        ("s2b", "done"),
        ("s3", "pending"),
    ]
    events = [(e.node, e.kind) for e in services.runs.events(result.run_id) if e.node in ("plan", "replan")]
    assert events == [("plan", "planned"), ("replan", "patched")]
    spans = services.runs.spans(result.run_id)
    planning = next(span for span in spans if span.name == "node plan").attributes
    assert (planning["firebreak.plan.version"], planning["firebreak.plan.change"]) == (1, "planned")
    patching = [
        span.attributes for span in spans if span.name == "node replan" and "firebreak.plan.change" in span.attributes
    ]
    assert [(a["firebreak.plan.version"], a["firebreak.plan.severity"]) for a in patching] == [(2, "minor")]


def test_a_failed_step_without_a_substitute_is_replanned_by_the_model(database_url, make_settings, write_script):
    plan = {"steps": [{"id": "s1", "tool": "pricing_api", "inputs": ITEMS}, {"id": "s2", "depends_on": ["s1"]}]}
    # Once the substitute has failed too, the plan's assumption (prices are available) is broken.
    new_plan = {"steps": [{"id": "r1", "tool": "sales_data"}, {"id": "r2", "depends_on": ["r1"]}]}
    script = write_script(
        planned(plan),
        calls("pricing_api", ITEMS, next_step="s1"),
        calls("cached_prices", ITEMS, next_step="s1b"),  # the patch fails too: the substitute is tried once
        {"expect": "Write a new plan", "tool_calls": [{"name": "submit_plan", "arguments": new_plan}]},
        calls("sales_data", {}, next_step="r1"),
        {"expect": "r2 [NEXT]", "text": "No prices today; here are the sales."},
    )
    outage = {
        "faults": {"pricing_api": {"hang": True}, "cached_prices": {"hang": True}},
        "tools": {"timeouts_s": {"pricing_api": 0.2, "cached_prices": 0.2}},
    }
    settings = make_settings(database_url, script=script, **outage)

    result, services = ask(settings, "Prices for the dock and the desk?")

    assert result.status == "answered"
    changes = [(v.version, v.change, v.severity) for v in services.plans.versions(result.run_id)]
    assert changes == [(1, "planned", None), (2, "patched", "minor"), (3, "replanned", "major")]


def test_a_plan_that_cannot_go_on_asks_a_person_and_the_run_waits(database_url, make_settings, write_script):
    plan = {"steps": [{"id": "s1", "tool": "pricing_api", "inputs": ITEMS}, {"id": "s2", "depends_on": ["s1"]}]}
    script = write_script(
        planned(plan),
        calls("pricing_api", ITEMS, next_step="s1"),
        calls("cached_prices", ITEMS, next_step="s1b"),
    )
    outage = {
        "faults": {"pricing_api": {"hang": True}, "cached_prices": {"hang": True}},
        "tools": {"timeouts_s": {"pricing_api": 0.2, "cached_prices": 0.2}},
        "planner": {"max_replans": 0},
    }
    settings = make_settings(database_url, script=script, **outage)

    result, services = ask(settings, "Prices for the dock and the desk?")

    assert result.status == "waiting"
    (waiting,) = result.escalations
    assert waiting["trigger"] == "replan_critical"
    assert "cached_prices" in waiting["reason"] and "no replans left" in waiting["reason"]
    kept = services.plans.latest(result.run_id)
    assert kept is not None and [s["status"] for s in kept.steps] == ["dropped", "failed", "pending"]


def test_a_plan_the_model_gets_wrong_leaves_the_run_unplanned_not_failed(database_url, make_settings, write_script):
    bad = {"steps": [{"id": "s1", "tool": "teleport"}]}
    script = write_script(planned(bad), {"expect": "Where is order 42?", "text": "It was delivered."})
    settings = make_settings(database_url, script=script)

    result, services = ask(settings, "Where is order 42?")

    assert (result.status, result.answer) == ("answered", "It was delivered.")
    assert services.plans.versions(result.run_id) == []
    (failure,) = [e.payload for e in services.runs.events(result.run_id) if e.kind == "plan_failed"]
    assert "unknown tool 'teleport'" in failure["error"]


def test_an_unplanned_run_makes_no_planning_call(database_url, make_settings, write_script):
    settings = make_settings(database_url, script=write_script({"text": "Paris."}))

    async def scenario():
        async with Agent.open(settings) as agent:
            return agent.settle_script(await agent.ask("Capital of France?", route=ROUTE)), agent.services

    result, services = run(scenario())
    assert result.answer == "Paris." and services.plans.versions(result.run_id) == []


def test_a_ticket_changed_under_the_plan_is_a_context_change_and_the_model_replans_on_it(
    database_url, make_settings, write_script
):
    draft = {"key": "T-1", "version": 1, "changes": {"draft": "Delivered."}}
    plan = {"steps": [{"id": "s1", "tool": "ticket_update", "inputs": draft}, {"id": "s2", "depends_on": ["s1"]}]}
    new_plan = {"steps": [{"id": "s1", "tool": "ticket_read", "inputs": {"key": "T-1"}}, {"id": "s2"}]}
    script = write_script(
        planned(plan),
        calls("ticket_update", draft, next_step="s1"),
        {"text": "0.95"},  # the gate's grade of the write: executed (and refused as stale)
        {"expect": "Write a new plan", "tool_calls": [{"name": "submit_plan", "arguments": new_plan}]},
        calls("ticket_read", {"key": "T-1"}, next_step="s1"),
        {"expect": "s2 [NEXT]", "text": "Someone escalated the ticket meanwhile; I left the draft for them."},
    )
    settings = make_settings(database_url, script=script)

    async def scenario():
        async with Agent.open(settings) as agent:
            tickets = EntityStore(agent.services.engine)
            tickets.create("default", "ticket", "T-1", {"subject": "Order 42?"}, actor="intake")
            # A person changes the ticket after the plan was made on version 1.
            tickets.update(tickets.get("default", "ticket", "T-1"), {"priority": "high"}, actor="operator")
            asked = agent.ask("Draft a reply on T-1", route=ROUTE, plan=True, agent="writer")  # a team member
            result = agent.settle_script(await asked)
            return result, agent.services, tickets

    result, services, tickets = run(scenario())

    assert result.status == "answered"
    versions = [(v.version, v.change, v.trigger, v.severity) for v in services.plans.versions(result.run_id)]
    assert versions == [(1, "planned", None, None), (2, "replanned", "context_changed", "major")]
    # Kept: the person's change; the stale draft was never written.
    assert tickets.get("default", "ticket", "T-1").data == {"subject": "Order 42?", "priority": "high"}
