"""Orchestration: the supervisor drives research, writer and reviewer agents over one shared ticket.

Real agent runs (each with its breakers, gate and budgets), real shared-entity store, real databases; the
scripted model stands in for the provider, one script line per model call in the order the team makes them.
"""

from __future__ import annotations

import json

from conftest import run
from test_cli import firebreak

from app.services import prepare_database
from core.config import load_settings
from graph.agent import Agent
from graph.team import resume_team, run_team
from memory.shared_state import EntityStore

ROUTE = "scripted/demo"
CONFIDENT = {"text": "0.95"}  # the gate's self-critique of each write: executed without asking anyone
DRAFT = "Your order 42 was delivered on Monday."


def read(role: str) -> dict:
    return {"expect": f"You are the {role} agent", "tool_calls": [{"name": "ticket_read", "arguments": {"key": "T-1"}}]}


def update(version: int, changes: dict, expect: str) -> dict:
    arguments = {"key": "T-1", "version": version, "changes": changes}
    return {"expect": expect, "tool_calls": [{"name": "ticket_update", "arguments": arguments}]}


def team(settings, request: str = "Answer the customer about order 42"):
    async def scenario():
        async with Agent.open(settings) as agent:
            tickets = EntityStore(agent.services.engine)
            tickets.create("default", "ticket", "T-1", {"subject": "Where is order 42?"}, actor="intake")
            # A person changes the ticket after the writer will have read it: the writer's first write is stale.
            tickets.update(tickets.get("default", "ticket", "T-1"), {"priority": "high"}, actor="operator")
            result = await run_team(agent, request, ticket="T-1", route=ROUTE)
            return result, agent.services, tickets

    return run(scenario())


def test_the_team_researches_drafts_and_approves_a_ticket_without_overwriting_anyones_change(
    database_url, make_settings, write_script
):
    script = write_script(
        # research: reads the ticket, reports
        read("research"),
        {"expect": "Where is order 42?", "text": "Findings: order 42 was delivered on Monday."},
        # writer: writes at the version it assumed (1); the person's change made it 2, so it is refused …
        update(1, {"draft": DRAFT}, expect="Findings: order 42 was delivered on Monday."),
        CONFIDENT,
        # … and the writer re-reads and writes on the ticket as it is now, keeping the person's change
        {"expect": "re-read it", "tool_calls": [{"name": "ticket_read", "arguments": {"key": "T-1"}}]},
        update(2, {"draft": DRAFT}, expect='"priority": "high"'),
        CONFIDENT,
        {"expect": '"version": 3', "text": "Drafted."},
        # reviewer: reads the draft and approves
        read("reviewer"),
        update(3, {"status": "approved"}, expect=DRAFT),
        CONFIDENT,
        {"expect": '"status": "approved"', "text": "APPROVED"},
    )
    result, services, tickets = team(make_settings(database_url, script=script))

    assert (result.verdict, result.rounds) == ("approved", 1)
    assert [member["role"] for member in result.runs] == ["research", "writer", "reviewer"]
    final = tickets.get("default", "ticket", "T-1")
    assert final is not None
    # Kept: the person's priority and the writer's draft; the stale write changed nothing.
    assert final.data == {"subject": "Where is order 42?", "priority": "high", "draft": DRAFT, "status": "approved"}
    history = [(e.version, e.actor.split(" ")[0], sorted(e.patch)) for e in tickets.history("default", "ticket", "T-1")]
    assert history == [
        (1, "intake", ["subject"]),
        (2, "operator", ["priority"]),
        (3, "writer", ["draft"]),
        (4, "reviewer", ["status"]),
    ]
    # One correlation id ties the team's runs and their changes together.
    members = [services.runs.get(member["run_id"]) for member in result.runs]
    assert {m.correlation_id for m in members} == {result.correlation_id}
    assert [m.agent for m in members] == ["research", "writer", "reviewer"]
    assert [e.version for e in tickets.changes_in(result.correlation_id)] == [3, 4]


def test_the_team_is_one_trace_and_each_ticket_write_carries_its_snapshot(database_url, make_settings, write_script):
    script = write_script(
        read("research"),
        {"text": "Findings: order 42 was delivered on Monday."},
        update(2, {"draft": DRAFT}, expect="You are the writer agent"),
        CONFIDENT,
        {"text": "Drafted."},
        read("reviewer"),
        update(3, {"status": "approved"}, expect=DRAFT),
        CONFIDENT,
        {"text": "APPROVED"},
    )
    result, services, _ = team(make_settings(database_url, script=script))

    members = [services.runs.get(member["run_id"]) for member in result.runs]
    assert len({m.trace_id for m in members}) == 1
    spans = services.runs.spans(members[0].id)  # the whole trace
    assert {"invoke_agent team", "invoke_agent firebreak"} <= {span.name for span in spans}
    writes = [span.attributes for span in spans if span.name == "execute_tool ticket_update"]
    snapshots = [(a["firebreak.entity.version"], "approved" in a["firebreak.entity.snapshot"]) for a in writes]
    assert snapshots == [(3, False), (4, True)]


def test_a_reviewer_who_keeps_sending_the_draft_back_stops_the_team_after_max_rounds(
    database_url, make_settings, write_script
):
    script = write_script(
        read("research"),
        {"text": "Findings: nothing yet."},
        update(2, {"draft": "draft 2"}, expect="You are the writer agent"),
        CONFIDENT,
        {"text": "Drafted."},
        {"expect": "You are the reviewer agent", "text": "REVISE: more detail"},
        update(3, {"draft": "draft 3"}, expect="The reviewer asked: more detail"),
        CONFIDENT,
        {"text": "Drafted."},
        {"expect": "You are the reviewer agent", "text": "REVISE: still not enough"},
    )
    result, _, tickets = team(make_settings(database_url, script=script, team={"max_rounds": 2}))

    assert (result.verdict, result.rounds) == ("revise", 2)
    assert [member["role"] for member in result.runs] == ["research", "writer", "reviewer", "writer", "reviewer"]
    assert tickets.get("default", "ticket", "T-1").data["draft"] == "draft 3"


def test_a_persons_run_neither_sees_nor_calls_the_teams_ticket_tools(database_url, make_settings, write_script):
    script = write_script(
        update(1, {"status": "closed"}, expect="Close T-1"),
        {"expect": "unknown tool 'ticket_update'", "text": "I cannot change tickets."},
    )
    settings = make_settings(database_url, script=script)

    async def scenario():
        async with Agent.open(settings) as agent:
            tickets = EntityStore(agent.services.engine)
            tickets.create("default", "ticket", "T-1", {"status": "open"}, actor="intake")
            result = agent.settle_script(await agent.ask("Close T-1", route=ROUTE))
            return result, tickets, agent.services.tools

    result, tickets, chat_tools = run(scenario())

    assert result.answer == "I cannot change tickets."
    assert "ticket_update" not in {spec["function"]["name"] for spec in chat_tools.specs()}
    assert tickets.get("default", "ticket", "T-1").data == {"status": "open"}


CARD_FINDINGS = {"expect": "You are the research agent", "text": "Findings: the card on file is 4111 1111 1111 1111."}


def test_a_member_the_safety_breaker_stops_ends_the_team_and_no_later_member_runs(
    database_url, make_settings, write_script
):
    # One script line: a writer or reviewer that ran would find the script used up and fail the run instead.
    settings = make_settings(database_url, script=write_script(CARD_FINDINGS))

    async def scenario():
        async with Agent.open(settings) as agent:
            tickets = EntityStore(agent.services.engine)
            tickets.create("default", "ticket", "T-1", {"subject": "Where is order 42?"}, actor="intake")
            result = await run_team(agent, "Answer the customer about order 42", ticket="T-1", route=ROUTE)
            agent.services.gateway.verify_script_consumed()
            return result, tickets.get("default", "ticket", "T-1")

    result, ticket = run(scenario())

    assert (result.status, result.verdict, result.runs) == ("stopped", "", [])
    assert result.stopped_by is not None
    assert (result.stopped_by["role"], result.stopped_by["status"]) == ("research", "terminated")
    assert "safety breaker" in result.stopped_by["answer"] and result.stopped_by["resumable"] is False
    assert (ticket.version, ticket.data) == (1, {"subject": "Where is order 42?"})  # nothing drafted from it
    assert "4111" not in json.dumps(result.as_dict())


def test_firebreak_team_says_which_member_stopped_the_team_and_exits_1(sqlite_url, write_script):
    EntityStore(prepare_database(load_settings(database_url=sqlite_url))).create(
        "default", "ticket", "T-1", {"subject": "Where is order 42?"}, actor="intake"
    )
    env = {"FIREBREAK_DATABASE_URL": sqlite_url, "FIREBREAK_SCRIPT": write_script(CARD_FINDINGS)}

    done = firebreak("team", "--ticket", "T-1", "--model", ROUTE, "Answer the customer", env=env)

    assert done.returncode == 1, done.stderr
    [stopped] = [line for line in done.stdout.splitlines() if line.startswith("stopped: ")]
    assert stopped.startswith("stopped: the research run ") and " ended terminated (" in stopped
    assert "safety breaker" in stopped
    assert "verdict:" not in done.stdout and "--resume" not in done.stdout and "4111" not in done.stdout


def test_a_team_stopped_by_a_member_that_failed_on_the_way_tries_it_again_on_resume_and_finishes(
    database_url, make_settings, write_script
):
    script = write_script(
        {"expect": "You are the research agent", "error": "server"},  # one attempt: the research run fails
        {"expect": "You are the research agent", "text": "Findings: order 42 was delivered on Monday."},
        update(1, {"draft": DRAFT}, expect="You are the writer agent"),
        CONFIDENT,
        {"text": "Drafted."},
        update(2, {"status": "approved"}, expect="You are the reviewer agent"),
        CONFIDENT,
        {"text": "APPROVED"},
    )
    settings = make_settings(database_url, script=script, retries={"attempts": 1})

    async def scenario():
        async with Agent.open(settings) as agent:
            EntityStore(agent.services.engine).create("default", "ticket", "T-1", {"subject": "?"}, actor="intake")
            stopped = await run_team(agent, "Answer the customer about order 42", ticket="T-1", route=ROUTE)
            finished = await resume_team(agent, stopped.correlation_id)
            agent.services.gateway.verify_script_consumed()
            return stopped, finished

    stopped, finished = run(scenario())

    assert stopped.status == "stopped" and stopped.stopped_by is not None
    assert (stopped.stopped_by["status"], stopped.stopped_by["resumable"]) == ("failed", True)
    assert (finished.status, finished.verdict, finished.stopped_by) == ("finished", "approved", None)
    assert [member["role"] for member in finished.runs] == ["research", "writer", "reviewer"]
    assert finished.runs[0]["run_id"] == stopped.stopped_by["run_id"]  # the same run, resumed, not a new one


def test_a_team_asked_again_researches_again_instead_of_reusing_the_cached_findings(
    sqlite_url, make_settings, write_script
):
    # The ticket may have changed since the first team read it, and the members' questions name it, not its
    # state: a member's run never takes an answer from the cache, even for the very same words.
    def approving(findings: str, version: int, name: str) -> str:
        return write_script(
            {"expect": "You are the research agent", "text": findings},
            update(version, {"draft": findings}, expect="You are the writer agent"),
            CONFIDENT,
            {"text": "Drafted."},
            update(version + 1, {"status": "approved"}, expect="You are the reviewer agent"),
            CONFIDENT,
            {"text": "APPROVED"},
            name=name,
        )

    scripts = [approving("Findings: premium is cheaper.", 1, "a"), approving("Findings: basic is cheaper now.", 3, "b")]

    async def scenario():
        results = []
        for script in scripts:
            async with Agent.open(make_settings(sqlite_url, script=script)) as agent:
                if not results:
                    EntityStore(agent.services.engine).create(
                        "default", "ticket", "T-1", {"subject": "Which plan is cheaper?"}, actor="intake"
                    )
                result = await run_team(agent, "Which plan is cheaper?", ticket="T-1", route=ROUTE)
                agent.services.gateway.verify_script_consumed()  # every member asked the model, research too
                spans = agent.services.runs.spans(result.runs[0]["run_id"])
                results.append((result, next(span for span in spans if span.name == "node cache_lookup")))
        return results

    (first, _), (second, lookup) = run(scenario())

    assert (first.status, second.status) == ("finished", "finished")
    assert second.runs[0]["answer"] == "Findings: basic is cheaper now."
    assert lookup.attributes["firebreak.cache.skipped"] == "team_member"
