"""Containment end to end: the confidence gate, people in the loop, the blast radius, the secondary triggers.

Each test is one behaviour of the real graph, gateway, ledger and database, driven by the scripted model.
With the default ``[gate]`` (estimator ``self_critique``, actions ``["write"]``) every write tool call is
followed by one extra scripted line: the model grading its own action, e.g. ``{"text": "0.4"}``.
``evals/containment.py`` is the worked example these tests specify one behaviour at a time.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from conftest import run
from langchain_core.messages import ToolMessage
from sqlmodel import Session, col, select

from app.containment.labels import export_jsonl
from app.services import build_services
from core.config import ModelSettings, Settings
from core.errors import ConfigError, EscalationClosed, FirebreakError
from evals.gate import calibration
from evals.scenario import SimulatedTime
from examples.support_desk.tables import DemoOrder, OutboxEmail
from graph.agent import Agent, RunResult
from graph.builder import GraphBuilder, default_builder
from graph.routing import after_gate, after_hitl, after_screen_actions
from graph.state import AgentState
from memory.tables import Alert, Escalation, GateDecision, Operation

ROUTE = "scripted/demo"
SPENDER = "scripted/spender"
# Long outputs at a frontier model's price, as in the eval: each call may cost about $0.15.
SPENDER_PRICES = ModelSettings(input_cost_per_token=0.0001, output_cost_per_token=0.0003, context_window=128_000)
UPDATE = {"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}
EMAIL = {
    "name": "send_email",
    "arguments": {"to": "alan@example.com", "subject": "Cancelled", "body": "Your order 2 is cancelled."},
}
CANCEL = {"tool_calls": [UPDATE]}
PASSWORD_REPHRASINGS = [
    "How do I reset my password?",
    "I can't log in, how do I change my password?",
    "password reset how?",
]
# Rephrasing needs the embedding model; tests whose subject is another trigger never reach it.
NO_REPHRASING = {"triggers": {"rephrase_count": 10}}


def _open(settings: Settings, clock: SimulatedTime | None = None, **kwargs: Any) -> Any:
    services = build_services(settings, clock=clock) if clock is not None else None
    return Agent.open(settings, services=services, **kwargs)


def _spender(settings: Settings) -> Settings:
    return settings.model_copy(update={"models": {**settings.models, SPENDER: SPENDER_PRICES}})


def _runaway(write_script) -> str:
    """A model that never stops: every reply asks for another search and bills a long output."""
    search = {"name": "knowledge_search", "arguments": {"query": "refund policy"}}
    usage = {"input_tokens": 400, "output_tokens": 384}
    return write_script({"repeat": True, "tool_calls": [search], "usage": usage}, name="runaway.jsonl")


def order_status(agent: Agent, order_id: int = 2) -> str:
    with Session(agent.services.engine) as session:
        order = session.get(DemoOrder, order_id)
        assert order is not None
        return order.status


def writes(agent: Agent, run_id: str, tool: str = "update_order") -> int:
    """Completed write operations of one tool in one run: how often the side effect really happened."""
    with Session(agent.services.engine) as session:
        rows = session.exec(
            select(Operation).where(Operation.run_id == run_id, Operation.tool == tool, Operation.status == "completed")
        ).all()
    return len(rows)


def events(agent: Agent, run_id: str, node: str, kind: str) -> list[dict[str, Any]]:
    return [e.payload for e in agent.services.runs.events(run_id) if (e.node, e.kind) == (node, kind)]


def alerts(agent: Agent, kind: str) -> list[Alert]:
    with Session(agent.services.engine) as session:
        return list(session.exec(select(Alert).where(Alert.kind == kind).order_by(col(Alert.id))).all())


def decisions(agent: Agent, run_id: str) -> list[GateDecision]:
    return list(agent.services.gate.for_run(run_id))


def escalation(agent: Agent, escalation_id: str) -> Escalation:
    row = agent.services.escalations.get(escalation_id)
    assert row is not None
    return row


def spent(agent: Agent, run_id: str) -> float:
    return sum(call.cost_usd for call in agent.services.runs.model_calls(run_id))


async def _waiting(agent: Agent, question: str, **kwargs: Any) -> tuple[RunResult, dict[str, Any]]:
    """Ask; the run must wait for exactly one escalation, which is returned with it."""
    result = await agent.ask(question, route=ROUTE, **kwargs)
    assert result.status == "waiting", result
    assert result.answer is None
    [pending] = result.escalations
    return result, pending


# -- the confidence gate: execute, confirm, reviewer --------------------------------------------------------------


def test_a_write_scored_above_execute_above_runs_without_asking_anyone(database_url, make_settings, write_script):
    script = write_script(CANCEL, {"text": "0.95"}, {"text": "Order 2 is cancelled."})

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            result = agent.settle_script(await agent.ask("Cancel order 2", route=ROUTE))

            assert (result.status, result.answer, result.escalations) == ("answered", "Order 2 is cancelled.", [])
            assert [(d.target, d.estimator, d.score, d.band, d.outcome) for d in decisions(agent, result.run_id)] == [
                ("update_order", "self_critique", 0.95, "execute", "executed")
            ]
            assert agent.services.escalations.for_run(result.run_id) == []
            assert order_status(agent) == "cancelled"
            assert writes(agent, result.run_id) == 1

    run(scenario())


def test_a_write_scored_in_the_confirm_band_waits_for_the_users_yes_and_then_runs_once(
    database_url, make_settings, write_script
):
    script = write_script(CANCEL, {"text": "0.7"}, {"expect": '"status": "cancelled"', "text": "Order 2 is cancelled."})

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")

            assert pending["type"] == "confirmation" and pending["audience"] == "user"
            assert (pending["trigger"], pending["options"], pending["status"]) == (
                "medium_confidence",
                ["yes", "no"],
                "open",
            )
            assert pending["question"].startswith("Before I go on: shall I call update_order(")
            # Nothing is written while it waits.
            assert order_status(agent) == "pending" and writes(agent, first.run_id) == 0
            assert events(agent, first.run_id, "act", "tool_result") == []
            assert agent.services.runs.get(first.run_id).status == "waiting"

            done = agent.settle_script(await agent.answer(pending["id"], "yes", by="user:local"))

            assert (done.run_id, done.status, done.answer) == (first.run_id, "answered", "Order 2 is cancelled.")
            assert order_status(agent) == "cancelled" and writes(agent, first.run_id) == 1
            assert [(d.band, d.outcome) for d in decisions(agent, first.run_id)] == [("confirm", "approved")]

    run(scenario())


def test_typing_yes_as_the_next_message_of_the_thread_answers_its_confirmation(
    database_url, make_settings, write_script
):
    script = write_script(CANCEL, {"text": "0.7"}, {"text": "Order 2 is cancelled."})

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2", thread_id="t-yes")

            done = agent.settle_script(await agent.ask("Yes!", thread_id="t-yes"))

            assert (done.run_id, done.status) == (first.run_id, "answered")
            row = escalation(agent, pending["id"])
            assert (row.status, row.answer, row.answered_by) == ("answered", "yes", "user:local")
            # The "yes" answered the waiting run; it did not start a run of its own.
            assert [r.id for r in agent.services.runs.recent(thread_id="t-yes")] == [first.run_id]
            assert writes(agent, first.run_id) == 1

    run(scenario())


def test_typing_no_as_the_next_message_of_the_thread_declines_its_confirmation(sqlite_url, make_settings, write_script):
    script = write_script(
        CANCEL, {"text": "0.7"}, {"expect": "Rejected: update_order was not run", "text": "I left order 2 alone."}
    )

    async def scenario() -> None:
        async with _open(make_settings(sqlite_url, script=script)) as agent:
            first, _ = await _waiting(agent, "Cancel order 2", thread_id="t-no")

            done = agent.settle_script(await agent.ask("no", thread_id="t-no"))

            assert (done.run_id, done.status, done.answer) == (first.run_id, "answered", "I left order 2 alone.")
            assert order_status(agent) == "pending" and writes(agent, first.run_id) == 0

    run(scenario())


def test_the_verifier_estimator_asks_another_route_to_grade_the_action(sqlite_url, make_settings, write_script):
    script = write_script(
        CANCEL, {"expect": "The assistant's proposed action: call update_order(", "text": "0.95"}, {"text": "Done."}
    )
    verifier = {"models": ["scripted/verifier"], "max_output_tokens": 8, "temperature": 0.0, "timeout_s": 5.0}
    settings = make_settings(sqlite_url, script=script, gate={"estimator": "verifier"}, routes={"verifier": verifier})

    async def scenario() -> None:
        async with _open(settings) as agent:
            result = agent.settle_script(await agent.ask("Cancel order 2", route=ROUTE))
            assert result.status == "answered" and writes(agent, result.run_id) == 1
            (decision,) = decisions(agent, result.run_id)
            assert (decision.estimator, decision.score, decision.band) == ("verifier", 0.95, "execute")
            routed = [(c.task_class, c.route, c.model) for c in agent.services.runs.model_calls(result.run_id)]
            assert routed == [
                ("answer", ROUTE, "scripted/demo"),
                ("verify", "verifier", "scripted/verifier"),  # [routing] verify sends the grading elsewhere
                ("answer", ROUTE, "scripted/demo"),
            ]
            agent.services.telemetry.flush()
            chats = [s for s in agent.services.runs.spans(result.run_id) if s.name.startswith("chat ")]
            assert [s.attributes["firebreak.task_class"] for s in chats] == ["answer", "verify", "answer"]

    run(scenario())


def test_routing_a_task_to_an_unknown_route_is_a_configuration_error(sqlite_url, make_settings):
    with pytest.raises(ConfigError, match=r"routing\.verify names route .nowhere."):
        make_settings(sqlite_url, routing={"verify": "nowhere"})


def test_a_paused_run_shows_its_score_and_its_pause_in_the_trace_without_an_error(
    sqlite_url, make_settings, write_script
):
    script = write_script(CANCEL, {"text": "0.4"})

    async def scenario() -> None:
        async with _open(make_settings(sqlite_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")
            spans = {span.name: span for span in agent.services.runs.spans(first.run_id)}
            gate, hitl = spans["node confidence_gate"], spans["node hitl"]
            (scored,) = [event for event in gate.events if event["name"] == "firebreak.gate.scored"]
            assert scored["attributes"]["firebreak.gate.score"] == 0.4
            assert scored["attributes"]["firebreak.gate.band"] == "human"
            assert hitl.status != "ERROR" and hitl.attributes["firebreak.escalation_ids"] == [pending["id"]]
            assert [event["name"] for event in hitl.events] == ["firebreak.paused"]
            assert spans["invoke_agent firebreak"].attributes["firebreak.status"] == "waiting"

    run(scenario())


def test_a_write_scored_below_confirm_above_goes_to_a_reviewer_and_runs_exactly_once_when_approved(
    database_url, make_settings, write_script
):
    script = write_script(CANCEL, {"text": "0.4"}, {"text": "Order 2 is cancelled."})

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")

            assert (pending["type"], pending["audience"], pending["trigger"]) == (
                "targeted",
                "reviewer",
                "low_confidence",
            )
            assert pending["options"] == ["approve", "reject"]
            assert order_status(agent) == "pending"

            done = agent.settle_script(await agent.answer(pending["id"], "approve", by="reviewer:ada"))
            assert (done.status, done.answer) == ("answered", "Order 2 is cancelled.")
            assert writes(agent, first.run_id) == 1

            # A second answer (a double click, a second reviewer) is refused and runs nothing again.
            with pytest.raises(EscalationClosed, match="already answered by reviewer:ada"):
                await agent.answer(pending["id"], "approve", by="reviewer:bob")
            assert writes(agent, first.run_id) == 1
            assert escalation(agent, pending["id"]).answered_by == "reviewer:ada"
            agent.services.gateway.verify_script_consumed()

    run(scenario())


def test_an_approval_after_a_restart_resumes_the_run_from_its_checkpoint_and_writes_once(
    database_url, make_settings, write_script
):
    # Each process has its own scripted model: the first proposes and grades, the second only answers.
    before = write_script(CANCEL, {"text": "0.4"}, name="before.jsonl")
    after = write_script(
        {"expect": '"previous_status": "pending"', "text": "Order 2 is cancelled."}, name="after.jsonl"
    )

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=before)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")
            agent.settle_script(first)
        # The first agent is closed: the run lives only in the database and its checkpoint.
        async with _open(make_settings(database_url, script=after)) as agent:
            assert agent.services.runs.get(first.run_id).status == "waiting"

            done = agent.settle_script(await agent.answer(pending["id"][:8], "approve", by="reviewer:ada"))

            assert (done.run_id, done.status, done.answer) == (first.run_id, "answered", "Order 2 is cancelled.")
            assert writes(agent, first.run_id) == 1 and order_status(agent) == "cancelled"
            assert len(agent.services.runs.model_calls(first.run_id)) == 3  # decide, critique; then decide

    run(scenario())


def test_a_rejected_write_never_runs_and_the_refusal_is_audited(database_url, make_settings, write_script):
    script = write_script(
        CANCEL,
        {"text": "0.4"},
        {"expect": "Rejected: update_order was not run because a person declined it", "text": "I did not cancel it."},
    )

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")

            done = agent.settle_script(await agent.answer(pending["id"], "reject", by="reviewer:ada"))

            # Kept: the run goes on and answers; only the write is refused.
            assert (done.status, done.answer) == ("answered", "I did not cancel it.")
            assert order_status(agent) == "pending" and writes(agent, first.run_id) == 0
            [refused] = events(agent, first.run_id, "act", "refused")
            assert refused["tool"] == "update_order" and refused["why"].startswith("Rejected:")
            assert [(d.band, d.outcome) for d in decisions(agent, first.run_id)] == [("human", "rejected")]
            [answered] = events(agent, first.run_id, "hitl", "answered")
            assert (answered["answer"], answered["by"]) == ("reject", "reviewer:ada")

    run(scenario())


def test_a_rejected_write_proposed_again_is_refused_without_asking_anyone_twice(
    database_url, make_settings, write_script
):
    script = write_script(
        CANCEL,
        {"text": "0.4"},
        # After the rejection the model tries the same write once more: no critique line, no new escalation.
        {"expect": "Do not propose it again", **CANCEL},
        {"text": "I could not cancel order 2."},
    )

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")

            done = agent.settle_script(await agent.answer(pending["id"], "reject", by="reviewer:ada"))

            assert (done.status, done.answer) == ("answered", "I could not cancel order 2.")
            assert len(agent.services.escalations.for_run(first.run_id)) == 1
            assert len(events(agent, first.run_id, "confidence_gate", "rejected_again")) == 1
            assert [e["tool"] for e in events(agent, first.run_id, "act", "refused")] == ["update_order"] * 2
            assert len(decisions(agent, first.run_id)) == 1  # scored once: the second proposal was not re-scored
            assert writes(agent, first.run_id) == 0 and order_status(agent) == "pending"

    run(scenario())


def test_two_gated_writes_in_one_decision_wait_for_both_answers_in_any_order(database_url, make_settings, write_script):
    script = write_script(
        {"tool_calls": [UPDATE, EMAIL]},
        {"text": "0.4"},
        {"text": "0.4"},
        {"text": "Cancelled order 2 and emailed Alan."},
    )

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first = await agent.ask("Cancel order 2 and tell Alan", route=ROUTE)
            assert first.status == "waiting"
            assert [e["trigger"] for e in first.escalations] == ["low_confidence"] * 2
            ids = [e["id"] for e in first.escalations]
            assert len(set(ids)) == 2

            later, last = reversed(ids)
            assert await agent.answer(later, "approve", by="reviewer:ada") is None  # still waiting for the other
            assert agent.services.runs.get(first.run_id).status == "waiting"
            assert writes(agent, first.run_id) == 0 and writes(agent, first.run_id, "send_email") == 0

            done = agent.settle_script(await agent.answer(last, "approve", by="reviewer:ada"))

            assert (done.run_id, done.status) == (first.run_id, "answered")
            assert writes(agent, first.run_id) == 1 and writes(agent, first.run_id, "send_email") == 1
            with Session(agent.services.engine) as session:
                emails = session.exec(select(OutboxEmail).where(OutboxEmail.run_id == first.run_id)).all()
            assert [email.to for email in emails] == ["alan@example.com"]

    run(scenario())


def test_an_unreadable_self_critique_counts_as_zero_and_goes_to_a_reviewer(database_url, make_settings, write_script):
    script = write_script(CANCEL, {"text": "I think it's fine"})

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")
            agent.settle_script(first)

            assert (pending["type"], pending["trigger"]) == ("targeted", "low_confidence")
            [decision] = decisions(agent, first.run_id)
            assert (decision.score, decision.band, decision.outcome) == (0.0, "human", None)
            assert "unreadable score" in decision.reason and "I think it's fine" in decision.reason
            assert "unreadable score" in escalation(agent, pending["id"]).reason
            assert order_status(agent) == "pending"

    run(scenario())


def test_a_tool_that_requires_approval_goes_to_a_reviewer_even_when_the_model_is_sure(
    database_url, make_settings, write_script
):
    script = write_script(CANCEL, {"text": "0.99"}, {"text": "Order 2 is cancelled."})
    settings = make_settings(database_url, script=script, gate={"require_approval": ["update_order"]})

    async def scenario() -> None:
        async with _open(settings) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")

            assert (pending["type"], pending["trigger"]) == ("targeted", "approval_required")
            assert escalation(agent, pending["id"]).reason == "update_order always needs approval"
            assert [(d.score, d.band) for d in decisions(agent, first.run_id)] == [(0.99, "human")]
            assert order_status(agent) == "pending"

            done = agent.settle_script(await agent.answer(pending["id"], "approve", by="reviewer:ada"))
            assert done.status == "answered" and writes(agent, first.run_id) == 1

    run(scenario())


def test_a_read_tool_that_requires_approval_is_gated_although_reads_are_not(sqlite_url, make_settings, write_script):
    lookup = {"name": "sql_lookup", "arguments": {"order_id": 1}}
    script = write_script({"tool_calls": [lookup]}, {"text": "0.99"})
    settings = make_settings(sqlite_url, script=script, gate={"require_approval": ["sql_lookup"]})

    async def scenario() -> None:
        async with _open(settings) as agent:
            first, pending = await _waiting(agent, "Where is order 1?")
            agent.settle_script(first)

            assert (pending["trigger"], pending["options"]) == ("approval_required", ["approve", "reject"])
            assert events(agent, first.run_id, "act", "tool_result") == []

    run(scenario())


def test_writes_run_ungated_when_gate_actions_leave_out_write(database_url, make_settings, write_script):
    lookup = {"name": "sql_lookup", "arguments": {"order_id": 1}}
    # No critique line for the write; the read, gated instead, gets one.
    script = write_script({"tool_calls": [UPDATE, lookup]}, {"text": "0.95"}, {"text": "Done."})
    settings = make_settings(database_url, script=script, gate={"actions": ["read"]})

    async def scenario() -> None:
        async with _open(settings) as agent:
            result = agent.settle_script(await agent.ask("Cancel order 2, then look up order 1", route=ROUTE))

            assert result.status == "answered"
            assert writes(agent, result.run_id) == 1 and order_status(agent) == "cancelled"
            assert [(d.target, d.action_kind, d.outcome) for d in decisions(agent, result.run_id)] == [
                ("sql_lookup", "read", "executed")
            ]

    run(scenario())


def test_a_routes_own_thresholds_replace_the_default_ones(database_url, make_settings, write_script):
    # 0.92 would run unattended under the default 0.85; this route asks the user above 0.90 and below 0.95.
    script = write_script(CANCEL, {"text": "0.92"})
    gate = {"routes": {ROUTE: {"execute_above": 0.95, "confirm_above": 0.90}}}

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script, gate=gate)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")
            agent.settle_script(first)

            assert pending["type"] == "confirmation"
            assert escalation(agent, pending["id"]).reason == "confidence 0.92 is below 0.95"
            assert [(d.score, d.band) for d in decisions(agent, first.run_id)] == [(0.92, "confirm")]

    run(scenario())


def test_an_answer_in_the_confirm_band_goes_out_marked_as_uncertain(sqlite_url, make_settings, write_script):
    script = write_script({"text": "Paris."}, {"text": "0.7"})
    settings = make_settings(sqlite_url, script=script, gate={"actions": ["answer"]})

    async def scenario() -> None:
        async with _open(settings) as agent:
            result = agent.settle_script(await agent.ask("What is the capital of France?", route=ROUTE))

            assert result.status == "answered"
            assert result.answer.startswith("Paris.") and "I am not fully sure about this answer" in result.answer
            assert [(d.target, d.band) for d in decisions(agent, result.run_id)] == [("answer", "confirm")]

    run(scenario())


def test_an_answer_a_reviewer_rejects_is_withheld(sqlite_url, make_settings, write_script):
    script = write_script({"text": "Lyon."}, {"text": "0.2"})
    settings = make_settings(sqlite_url, script=script, gate={"actions": ["answer"]})

    async def scenario() -> None:
        async with _open(settings) as agent:
            first, pending = await _waiting(agent, "What is the capital of France?")

            done = agent.settle_script(await agent.answer(pending["id"], "reject", by="reviewer:ada"))

            assert done.status == "answered"
            assert done.answer == "A reviewer withheld this answer; a person will follow up."
            assert [(d.band, d.outcome) for d in decisions(agent, first.run_id)] == [("human", "rejected")]

    run(scenario())


# -- the blast radius: a cap hit waits for a reviewer -------------------------------------------------------------


def test_a_runaway_model_is_stopped_at_the_requests_cost_cap_and_waits_for_a_reviewer(
    database_url, make_settings, write_script
):
    settings = _spender(make_settings(database_url, script=_runaway(write_script)))
    cap = settings.limits.request.cost_usd

    async def scenario() -> None:
        async with _open(settings) as agent:
            first = await agent.ask("Find our refund policy", route=SPENDER)

            assert first.status == "waiting"
            [pending] = first.escalations
            assert (pending["type"], pending["trigger"], pending["options"]) == (
                "targeted",
                "budget_breach",
                ["raise", "stop"],
            )
            assert 0 < spent(agent, first.run_id) <= cap  # zero overshoot: the refused call was never made
            breach = escalation(agent, pending["id"]).context["breach"]
            assert (breach["scope"], breach["resource"]) == (f"request:{first.run_id}", "cost_usd")
            assert [a.payload["run_id"] for a in alerts(agent, "budget_breach")] == [first.run_id]
            assert len(events(agent, first.run_id, "budget_guard", "budget_breach")) == 1

    run(scenario())


def test_stop_ends_a_run_at_its_cap_with_budget_exceeded_and_an_explanation(database_url, make_settings, write_script):
    settings = _spender(make_settings(database_url, script=_runaway(write_script)))

    async def scenario() -> None:
        async with _open(settings) as agent:
            first = await agent.ask("Find our refund policy", route=SPENDER)
            calls = len(agent.services.runs.model_calls(first.run_id))

            done = await agent.answer(first.escalations[0]["id"], "stop", by="reviewer:ada")

            assert (done.run_id, done.status) == (first.run_id, "budget_exceeded")
            assert done.answer.startswith("I stopped because this request reached its budget:")
            assert "cost_usd" in done.answer
            assert len(agent.services.runs.model_calls(first.run_id)) == calls  # nothing more was spent
            assert agent.services.runs.get(first.run_id).status == "budget_exceeded"

    run(scenario())


def test_raise_lets_a_run_go_on_to_at_most_twice_its_cap_where_it_waits_again(
    database_url, make_settings, write_script
):
    settings = _spender(make_settings(database_url, script=_runaway(write_script)))
    cap = settings.limits.request.cost_usd

    async def scenario() -> None:
        async with _open(settings) as agent:
            first = await agent.ask("Find our refund policy", route=SPENDER)
            breach_id = first.escalations[0]["id"]

            raised = await agent.answer(breach_id, "raise", by="reviewer:ada")

            assert (raised.run_id, raised.status) == (first.run_id, "waiting")
            assert cap < spent(agent, first.run_id) <= 2 * cap
            [again] = raised.escalations
            assert again["trigger"] == "budget_breach" and again["id"] != breach_id
            assert len(alerts(agent, "budget_breach")) == 2

    run(scenario())


def test_a_tool_call_refused_by_a_cap_runs_after_a_raise_and_the_earlier_results_are_kept(
    database_url, make_settings, write_script
):
    lookups = [{"name": "sql_lookup", "arguments": {"order_id": n}} for n in (1, 2)]
    script = write_script(
        {"tool_calls": lookups},
        {"expect": "Alan Turing", "text": "Order 1 has shipped; order 2 is pending."},
    )
    settings = make_settings(database_url, script=script, limits={"request": {"tool_calls": 1}})

    async def scenario() -> None:
        async with _open(settings) as agent:
            first, pending = await _waiting(agent, "Where are orders 1 and 2?")

            assert pending["trigger"] == "budget_breach"
            assert escalation(agent, pending["id"]).context["breach"]["resource"] == "tool_calls"
            [made] = events(agent, first.run_id, "act", "tool_result")  # the first call ran, the second waits
            assert made["call_id"].endswith("_0")

            done = agent.settle_script(await agent.answer(pending["id"], "raise", by="reviewer:ada"))

            assert done.status == "answered"
            results = events(agent, first.run_id, "act", "tool_result")
            assert [r["call_id"][-2:] for r in results] == ["_0", "_1"]  # each call ran once, in order
            state = await agent.graph.aget_state({"configurable": {"thread_id": first.thread_id}})
            tool_messages = [m for m in state.values["messages"] if isinstance(m, ToolMessage)]
            assert [m.status for m in tool_messages] == ["success", "success"]
            assert "Ada Lovelace" in tool_messages[0].text  # the result made before the wait is kept

    run(scenario())


# -- secondary triggers --------------------------------------------------------------------------------------------


def test_asking_for_a_human_transfers_the_conversation_and_the_reviewers_reply_is_the_answer(
    sqlite_url, make_settings, write_script
):
    script = write_script()  # the model is never asked

    async def scenario() -> None:
        async with _open(make_settings(sqlite_url, script=script, **NO_REPHRASING)) as agent:
            first, pending = await _waiting(agent, "I want to talk to a human")

            assert (pending["type"], pending["trigger"]) == ("immediate_transfer", "human_requested")
            context = escalation(agent, pending["id"]).context
            assert "The user asks: 'I want to talk to a human'" in context["summary"]
            assert context["history"] == [{"role": "user", "text": "I want to talk to a human"}]

            reply = "Hi, this is Sam from support. I can help you now."
            done = agent.settle_script(await agent.answer(pending["id"], reply, by="reviewer:sam"))

            assert (done.run_id, done.status, done.answer) == (first.run_id, "handed_off", reply)
            assert agent.services.runs.model_calls(first.run_id) == []

    run(scenario())


def test_a_legal_question_is_a_full_handoff_with_a_summary_and_the_whole_history(
    sqlite_url, make_settings, write_script
):
    script = write_script(
        {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 1}}]},
        {"text": "Order 1 has shipped."},
        {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 2}}]},
        {"text": "Order 2 is pending."},
    )

    async def scenario() -> None:
        async with _open(make_settings(sqlite_url, script=script, **NO_REPHRASING)) as agent:
            await agent.ask("Where is order 1?", thread_id="t-legal", route=ROUTE)
            await agent.ask("And where is order 2?", thread_id="t-legal", route=ROUTE)
            first, pending = await _waiting(agent, "Can I sue my landlord?", thread_id="t-legal")
            agent.settle_script(first)

            assert (pending["type"], pending["trigger"]) == ("full_handoff", "high_risk_topic")
            row = escalation(agent, pending["id"])
            assert "legal" in row.reason
            summary = row.context["summary"]
            assert "The user asks: 'Can I sue my landlord?'" in summary
            assert "they asked 2 other question(s)" in summary and "sql_lookup" in summary
            # The whole conversation, not only the last messages of a warm handoff.
            history = row.context["history"]
            assert len(history) == 9
            assert history[0] == {"role": "user", "text": "Where is order 1?"}
            assert history[-1] == {"role": "user", "text": "Can I sue my landlord?"}

            done = await agent.answer(pending["id"], "A colleague from legal will call you.", by="reviewer:ada")
            assert (done.status, done.answer) == ("handed_off", "A colleague from legal will call you.")

    run(scenario())


def test_the_third_rephrasing_of_one_question_asks_a_reviewer_whose_answer_reaches_the_model(
    sqlite_url, make_settings, write_script
):
    note = "They never receive the reset email; resend it to their backup address."
    script = write_script(
        {"text": "Use the reset link on the login page."},
        {"text": "Click 'Forgot password' on the login page."},
        {"expect": f"A human reviewer adds: {note}", "text": "I have resent the reset email to your backup address."},
    )

    async def scenario() -> None:
        async with _open(make_settings(sqlite_url, script=script)) as agent:
            one, two, three = PASSWORD_REPHRASINGS
            assert (await agent.ask(one, thread_id="t-rephrase", route=ROUTE)).status == "answered"
            assert (await agent.ask(two, thread_id="t-rephrase", route=ROUTE)).status == "answered"
            first, pending = await _waiting(agent, three, thread_id="t-rephrase")

            assert (pending["type"], pending["trigger"]) == ("targeted", "repeated_rephrasing")

            done = agent.settle_script(await agent.answer(pending["id"], note, by="reviewer:ada"))

            assert (done.run_id, done.status) == (first.run_id, "answered")
            assert done.answer == "I have resent the reset email to your backup address."

    run(scenario())


def test_a_sudden_angry_message_asks_a_reviewer_alongside_and_their_note_reaches_the_next_run(
    sqlite_url, make_settings, write_script
):
    note = "Offer a 10% voucher for the delay."
    script = write_script(
        {"text": "Order 1 has shipped."},
        {"text": "I am sorry about the wait."},
        {"expect": f"A human reviewer adds: {note}", "text": "It arrives tomorrow, and here is a 10% voucher."},
    )

    async def scenario() -> None:
        async with _open(make_settings(sqlite_url, script=script, **NO_REPHRASING)) as agent:
            await agent.ask("Where is order 1?", thread_id="t-mood", route=ROUTE)
            angry = await agent.ask(
                "This is ridiculous, you are useless and I am furious!", thread_id="t-mood", route=ROUTE
            )

            # The agent does not wait: it answers, and the reviewer may add a note.
            assert (angry.status, angry.answer, angry.escalations) == ("answered", "I am sorry about the wait.", [])
            [row] = agent.services.escalations.for_run(angry.run_id)
            assert (row.type, row.trigger, row.pauses_run, row.status) == (
                "collaborative",
                "negative_sentiment",
                False,
                "open",
            )

            assert await agent.answer(row.id, note, by="reviewer:ada") is None  # no run is resumed

            later = agent.settle_script(await agent.ask("When will it arrive?", thread_id="t-mood", route=ROUTE))
            assert later.status == "answered"
            assert escalation(agent, row.id).delivered_at is not None  # delivered once, never again

    run(scenario())


# -- expiry --------------------------------------------------------------------------------------------------------


def test_an_unanswered_reviewer_question_is_passed_up_then_expires_and_the_write_never_runs(
    database_url, make_settings, write_script
):
    script = write_script(
        CANCEL, {"text": "0.4"}, {"expect": "Rejected: update_order was not run", "text": "I did not cancel order 2."}
    )
    settings = make_settings(database_url, script=script)
    timeout = settings.escalation.policies["targeted"].timeout_s
    clock = SimulatedTime()

    async def scenario() -> None:
        async with _open(settings, clock) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")
            assert await agent.sweep() == []  # not due yet

            clock.now += timeout + 1
            assert [action for _, action in await agent.sweep()] == ["escalated"]
            row = escalation(agent, pending["id"])
            assert (row.status, row.level) == ("open", 1)
            assert agent.services.runs.get(first.run_id).status == "waiting"
            assert [a.payload["level"] for a in alerts(agent, "escalation_escalated")] == [1]

            clock.now += timeout + 1
            assert [action for _, action in await agent.sweep()] == ["expired"]
            assert len(alerts(agent, "escalation_expired")) == 1
            row = escalation(agent, pending["id"])
            assert (row.status, row.answer, row.answered_by) == ("expired", "reject", "timeout")

            final = agent.services.runs.get(first.run_id)
            assert (final.status, final.answer) == ("answered", "I did not cancel order 2.")
            assert writes(agent, first.run_id) == 0 and order_status(agent) == "pending"
            assert [d.outcome for d in decisions(agent, first.run_id)] == ["expired"]
            # A late approval is refused: the expiry stands.
            with pytest.raises(EscalationClosed, match="already expired"):
                await agent.answer(pending["id"], "approve", by="reviewer:late")
            assert writes(agent, first.run_id) == 0
            agent.services.gateway.verify_script_consumed()

    run(scenario())


def test_an_unanswered_confirmation_expires_directly_as_a_no(database_url, make_settings, write_script):
    script = write_script(CANCEL, {"text": "0.7"}, {"text": "I did not cancel order 2."})
    settings = make_settings(database_url, script=script)
    clock = SimulatedTime()

    async def scenario() -> None:
        async with _open(settings, clock) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")

            clock.now += settings.escalation.policies["confirmation"].timeout_s + 1
            assert [action for _, action in await agent.sweep()] == ["expired"]

            row = escalation(agent, pending["id"])
            assert (row.status, row.answer, row.level) == ("expired", "no", 0)
            assert alerts(agent, "escalation_escalated") == []
            assert agent.services.runs.get(first.run_id).status == "answered"
            assert writes(agent, first.run_id) == 0 and order_status(agent) == "pending"
            agent.services.gateway.verify_script_consumed()

    run(scenario())


# -- a waiting thread ----------------------------------------------------------------------------------------------


def test_a_new_message_while_a_reviewer_is_asked_is_refused_and_loses_nothing(
    database_url, make_settings, write_script
):
    script = write_script(CANCEL, {"text": "0.4"}, {"text": "Order 2 is cancelled."})

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2", thread_id="t-busy")

            with pytest.raises(FirebreakError, match="waiting for a reviewer"):
                await agent.ask("Hello? Is anyone there?", thread_id="t-busy", route=ROUTE)

            # Kept: the waiting run, its escalation, and the thread (no run was started for the message).
            assert agent.services.runs.get(first.run_id).status == "waiting"
            row = escalation(agent, pending["id"])
            assert (row.status, row.answer) == ("open", None)
            assert [r.id for r in agent.services.runs.recent(thread_id="t-busy")] == [first.run_id]

            done = agent.settle_script(await agent.answer(pending["id"], "approve", by="reviewer:ada"))
            assert (done.status, done.answer) == ("answered", "Order 2 is cancelled.")
            assert writes(agent, first.run_id) == 1

    run(scenario())


@pytest.mark.parametrize(
    "message",
    [
        "What does cancelling cost me?",
        "No, I meant order 3",  # a no that adds something: declining would drop the order the user named
    ],
)
def test_a_message_that_is_not_yes_or_no_while_a_confirmation_waits_is_refused_with_the_question(
    database_url, make_settings, write_script, message
):
    script = write_script(CANCEL, {"text": "0.7"})

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first, pending = await _waiting(agent, "Cancel order 2", thread_id="t-confirm")
            agent.settle_script(first)

            with pytest.raises(FirebreakError) as refused:
                await agent.ask(message, thread_id="t-confirm", route=ROUTE)

            assert pending["question"] in str(refused.value) and "(yes or no)" in str(refused.value)
            assert "not taken as an answer and nothing ran" in str(refused.value)
            # Kept: the run still waits on the same open question; nothing was written, no new run began.
            assert escalation(agent, pending["id"]).status == "open"
            assert agent.services.runs.get(first.run_id).status == "waiting"
            assert order_status(agent) == "pending" and writes(agent, first.run_id) == 0
            assert [r.id for r in agent.services.runs.recent(thread_id="t-confirm")] == [first.run_id]

    run(scenario())


# -- what the answers teach ---------------------------------------------------------------------------------------


def test_every_closed_escalation_exports_as_one_labeled_example(database_url, make_settings, write_script):
    script = write_script(CANCEL, {"text": "0.4"}, {"text": "Order 2 is cancelled."}, CANCEL, {"text": "0.3"})
    clock = SimulatedTime()

    async def scenario() -> None:
        settings = make_settings(database_url, script=script)
        async with _open(settings, clock) as agent:
            first, pending = await _waiting(agent, "Cancel order 2")
            clock.now += 42
            await agent.answer(pending["id"], "approve", by="reviewer:ada")
            second, still_open = await _waiting(agent, "Cancel order 2 again")
            agent.settle_script(second)

            lines = export_jsonl(agent.services.escalations.answered())

            [line] = lines  # the open escalation is no label yet
            example = json.loads(line)
            assert (example["escalation_id"], example["run_id"]) == (pending["id"], first.run_id)
            assert (example["label"], example["labeled_by"], example["latency_s"]) == ("approve", "reviewer:ada", 42.0)
            assert example["input"]["question"] == pending["question"]
            assert example["input"]["options"] == ["approve", "reject"]
            assert example["input"]["context"]["target"] == "update_order"
            assert (example["type"], example["trigger"], example["status"]) == (
                "targeted",
                "low_confidence",
                "answered",
            )
            assert still_open["id"] not in line

    run(scenario())


def test_calibration_reports_each_bands_accuracy_from_recorded_decisions(database_url, make_settings, write_script):
    script = write_script(
        *[CANCEL, {"text": "0.95"}, {"text": "Cancelled."}],  # executed: right
        *[CANCEL, {"text": "0.4"}, {"text": "Cancelled."}],  # approved by a reviewer: right
        *[CANCEL, {"text": "0.3"}, {"text": "Not cancelled."}],  # rejected by a reviewer: wrong
    )
    settings = make_settings(database_url, script=script)

    async def scenario() -> dict[str, Any]:
        async with _open(settings) as agent:
            await agent.ask("Cancel order 2", route=ROUTE)
            _, approve = await _waiting(agent, "Cancel order 2")
            await agent.answer(approve["id"], "approve", by="reviewer:ada")
            _, reject = await _waiting(agent, "Cancel order 2")
            agent.settle_script(await agent.answer(reject["id"], "reject", by="reviewer:ada"))
            return calibration(agent.services.gate.all(), settings.gate.for_route(ROUTE))

    report = run(scenario())
    bands = {band["band"]: band for band in report["bands"]}
    assert report["decisions"] == 3
    assert (bands["execute"]["decisions"], bands["execute"]["accuracy"]) == (1, 1.0)
    assert (bands["confirm"]["decisions"], bands["confirm"]["accuracy"]) == (0, None)
    assert {k: bands["human"][k] for k in ("decisions", "with_outcome", "right", "accuracy")} == {
        "decisions": 2,
        "with_outcome": 2,
        "right": 1,
        "accuracy": 0.5,
    }
    assert report["advice"].startswith("too few outcomes")


# -- the gate is enforced in act, not only by routing -------------------------------------------------------------


def _builder_without_gate() -> GraphBuilder:
    """The default graph with the confidence_gate node taken out, as a careless edit of the spec would."""
    builder = default_builder()
    del builder.nodes["confidence_gate"]
    del builder.edges["confidence_gate"]

    def after_screen_actions_ungated(state: AgentState) -> str:
        return "respond" if after_screen_actions(state) == "respond" else after_gate(state)

    targets = {
        "act": "act",
        "respond": "respond",
        "cache_store": "cache_store",
        "hitl": "hitl",
        "budget_guard": "budget_guard",
    }
    builder.add_branch("screen_actions", after_screen_actions_ungated, targets)
    return builder.add_branch("hitl", after_hitl, {"act": "act", "decide": "decide", "respond": "respond"})


def test_a_graph_without_the_confidence_gate_still_never_runs_a_write(database_url, make_settings, write_script):
    script = write_script(
        CANCEL,  # no critique line: nothing scores the write
        {"expect": "Not run: update_order was not cleared by the confidence gate", "text": "I could not cancel it."},
    )

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script), builder=_builder_without_gate()) as agent:
            result = agent.settle_script(await agent.ask("Cancel order 2", route=ROUTE))

            assert (result.status, result.answer) == ("answered", "I could not cancel it.")
            assert writes(agent, result.run_id) == 0 and order_status(agent) == "pending"
            [refused] = events(agent, result.run_id, "act", "refused")
            assert refused["tool"] == "update_order"
            assert decisions(agent, result.run_id) == []

    run(scenario())


# -- found while specifying: these fail on the current product code ----------------------------------------------


def test_yes_to_a_confirmation_while_a_reviewer_is_also_asked_starts_no_new_run_and_loses_no_write(
    database_url, make_settings, write_script
):
    # One decision, two writes: the update is in the confirm band (the user), the email in the human band.
    script = write_script(
        {"tool_calls": [UPDATE, EMAIL]},
        {"text": "0.7"},
        {"text": "0.4"},
        {"text": "Cancelled order 2 and emailed Alan."},
    )

    async def scenario() -> None:
        async with _open(make_settings(database_url, script=script)) as agent:
            first = await agent.ask("Cancel order 2 and tell Alan", thread_id="t-mixed", route=ROUTE)
            assert sorted(e["type"] for e in first.escalations) == ["confirmation", "targeted"]
            confirmation = next(e for e in first.escalations if e["type"] == "confirmation")
            targeted = next(e for e in first.escalations if e["type"] == "targeted")

            # Either a result that still waits or a clear refusal is fine; treating "yes" as a new question is not.
            with contextlib.suppress(FirebreakError):
                await agent.ask("yes", thread_id="t-mixed", route=ROUTE)

            assert escalation(agent, confirmation["id"]).answer == "yes"
            assert [r.id for r in agent.services.runs.recent(thread_id="t-mixed")] == [first.run_id]
            assert agent.services.runs.get(first.run_id).status == "waiting"

            # The reviewer's approval then resumes the waiting run, and both approved writes run once.
            done = agent.settle_script(await agent.answer(targeted["id"], "approve", by="reviewer:ada"))
            assert (done.run_id, done.status, done.answer) == (
                first.run_id,
                "answered",
                "Cancelled order 2 and emailed Alan.",
            )
            assert writes(agent, first.run_id) == 1 and writes(agent, first.run_id, "send_email") == 1

    run(scenario())


def test_a_cap_hit_while_scoring_the_second_write_leaves_no_gate_decision_without_an_outcome(
    database_url, make_settings, write_script
):
    # The request may use 3200 tokens: the decision and the first critique fit, the second critique does not
    # (each critique reserves its estimated prompt plus its output cap). Raised once by 3200, the rest fits.
    critique = {"text": "0.95", "usage": {"input_tokens": 400, "output_tokens": 1}}
    script = write_script(
        {"tool_calls": [UPDATE, EMAIL], "usage": {"input_tokens": 2750, "output_tokens": 10}},
        critique,
        # After the raise the gate scores the decision again today (two lines); a fix may keep the first score
        # instead (one line), so the script is not settled: the subject here is the audit rows, not the calls.
        critique,
        critique,
        {"text": "Cancelled order 2 and emailed Alan."},
    )
    settings = make_settings(database_url, script=script, limits={"request": {"tokens": 3200}})

    async def scenario() -> None:
        async with _open(settings) as agent:
            first, pending = await _waiting(agent, "Cancel order 2 and tell Alan")
            breach = escalation(agent, pending["id"]).context["breach"]
            assert (pending["trigger"], breach["resource"], breach["resume_to"]) == (
                "budget_breach",
                "tokens",
                "confidence_gate",
            )

            done = await agent.answer(pending["id"], "raise", by="reviewer:ada")

            assert done.status == "answered"
            assert writes(agent, first.run_id) == 1 and writes(agent, first.run_id, "send_email") == 1
            orphans = [(d.target, d.score) for d in decisions(agent, first.run_id) if d.outcome is None]
            assert orphans == []

    run(scenario())


def test_a_write_with_malformed_arguments_is_explained_to_the_model_as_invalid_arguments(
    sqlite_url, make_settings, write_script
):
    script = write_script(
        {"tool_calls": [{"name": "update_order", "arguments": '{"order_id": 2'}]},
        {"expect": "not valid JSON", "text": "I could not read my own request."},
    )

    async def scenario() -> None:
        async with _open(make_settings(sqlite_url, script=script)) as agent:
            result = agent.settle_script(await agent.ask("Cancel order 2", route=ROUTE))

            assert result.status == "answered", result.error
            assert order_status(agent) == "pending"

    run(scenario())
