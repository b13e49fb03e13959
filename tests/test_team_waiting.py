"""A team never stalls silently: a member's gated write waits for a reviewer, the team run says so, and it
goes on from its checkpoint once answered, or after its process died, without running a finished member again.

The gate has the shipped embedded route's thresholds (execute_above 0.95) on the scripted route, so a write
graded 0.9, as the 0.5B model grades almost everything, is in the confirm band: a chat user would be asked,
but a team has none, so a reviewer is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import run
from sqlmodel import Session, select

from app.services import prepare_database
from core.config import Settings, load_settings
from graph.agent import Agent
from graph.choreography import subscribe
from graph.team import resume_team, run_team
from memory.shared_state import EntityStore
from memory.tables import EventHandling

ROUTE = "scripted/demo"
FIREBREAK = str(Path(sys.executable).parent / "firebreak")
DRAFT = "Your order 42 was delivered on Monday."
FINDINGS = {"expect": "You are the research agent", "text": "Findings: order 42 was delivered on Monday."}
UNSURE = {"text": "0.9"}  # what the embedded model grades its writes: confirm band on its route
SURE = {"text": "0.97"}
DRAFTED = {"text": "Drafted."}


def shipped_embedded_gate(make_settings: Any, database_url: str, **overrides: Any) -> Settings:
    """Settings whose scripted route has the gate thresholds the shipped config gives the embedded model."""
    shipped = make_settings(database_url)
    embedded = shipped.gate.routes[shipped.agent.default_route]
    return make_settings(database_url, gate={"routes": {ROUTE: embedded}}, **overrides)


def change(version: int, changes: dict[str, Any], role: str, key: str = "T-1") -> dict[str, Any]:
    arguments = {"key": key, "version": version, "changes": changes}
    return {"expect": f"You are the {role} agent", "tool_calls": [{"name": "ticket_update", "arguments": arguments}]}


def with_ticket(agent: Agent, key: str = "T-1") -> EntityStore:
    tickets = EntityStore(agent.services.engine)
    tickets.create("default", "ticket", key, {"subject": "Where is order 42?"}, actor="intake")
    return tickets


def runs_of(agent: Agent, role: str) -> list[str]:
    return [run.id for run in agent.services.runs.recent(limit=50) if run.agent == role]


def test_a_members_unsure_write_waits_for_a_reviewer_and_the_team_goes_on_once_answered(
    database_url, make_settings, write_script
):
    script = write_script(
        FINDINGS,
        change(1, {"draft": DRAFT}, "writer"),
        UNSURE,
        DRAFTED,  # the writer's run, resumed by the reviewer's approval
        change(2, {"status": "approved"}, "reviewer"),
        SURE,
        {"text": "APPROVED"},
    )
    settings = shipped_embedded_gate(make_settings, database_url, script=script)

    async def scenario() -> None:
        async with Agent.open(settings) as agent:
            tickets = with_ticket(agent)
            waiting = await run_team(agent, "Answer the customer about order 42", ticket="T-1", route=ROUTE)

            assert waiting.status == "waiting"
            [pending] = waiting.waiting_for
            assert (pending["role"], pending["audience"], pending["status"]) == ("writer", "reviewer", "open")
            assert [member["role"] for member in waiting.runs] == ["research"]
            assert tickets.get("default", "ticket", "T-1").version == 1  # nothing written before the answer

            answered = await agent.answer(pending["id"], "approve", by="reviewer:ana")
            assert answered is not None and answered.status == "answered"
            finished = await resume_team(agent, waiting.correlation_id)

            assert (finished.status, finished.verdict, finished.waiting_for) == ("finished", "approved", [])
            assert [member["role"] for member in finished.runs] == ["research", "writer", "reviewer"]
            assert finished.runs[1]["run_id"] == pending["run_id"]  # the answered run, not a new one
            assert len(runs_of(agent, "research")) == len(runs_of(agent, "writer")) == 1
            ticket = tickets.get("default", "ticket", "T-1")
            assert (ticket.data["draft"], ticket.data["status"], ticket.version) == (DRAFT, "approved", 3)
            agent.services.gateway.verify_script_consumed()

    run(scenario())


def test_resuming_a_team_before_its_reviewer_answered_still_waits_and_runs_nothing(
    sqlite_url, make_settings, write_script
):
    script = write_script(FINDINGS, change(1, {"draft": DRAFT}, "writer"), UNSURE)
    settings = shipped_embedded_gate(make_settings, sqlite_url, script=script)

    async def scenario() -> None:
        async with Agent.open(settings) as agent:
            with_ticket(agent)
            waiting = await run_team(agent, "Answer the customer about order 42", ticket="T-1", route=ROUTE)
            again = await resume_team(agent, waiting.correlation_id)

            assert again.status == "waiting"
            assert [item["id"] for item in again.waiting_for] == [item["id"] for item in waiting.waiting_for]
            assert len(runs_of(agent, "writer")) == 1
            agent.services.gateway.verify_script_consumed()  # no model call was made again

    run(scenario())


def test_a_team_run_whose_process_was_killed_goes_on_from_its_checkpoint_without_rerunning_finished_members(
    tmp_path, make_settings, write_script
):
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    # The first process: research finishes, the writer is in its model call when the process is SIGKILLed.
    first = write_script(FINDINGS, {**change(1, {"draft": DRAFT}, "writer"), "delay_s": 60}, name="first.jsonl")
    killer = textwrap.dedent(f"""
        import asyncio, os, signal
        from core.config import load_settings
        from graph.agent import Agent
        from graph.team import run_team
        from memory.shared_state import EntityStore
        async def main():
            agent = await Agent.create(load_settings(script={first!r}, database_url={database_url!r}))
            EntityStore(agent.services.engine).create("default", "ticket", "T-1", {{"subject": "42?"}}, actor="intake")
            asyncio.create_task(run_team(agent, "Answer the customer", ticket="T-1", route={ROUTE!r}))
            while not [run for run in agent.services.runs.recent(limit=5) if run.agent == "writer"]:
                await asyncio.sleep(0.01)
            print([run.correlation_id for run in agent.services.runs.recent(limit=5)][0], flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
    """)
    killed = subprocess.run([sys.executable, "-c", killer], capture_output=True, text=True, timeout=180, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    correlation = killed.stdout.strip()

    # The second process is asked only for what was not done: the writer's turn again, and the reviewer's.
    rest = write_script(
        change(1, {"draft": DRAFT}, "writer"),
        SURE,
        DRAFTED,
        change(2, {"status": "approved"}, "reviewer"),
        SURE,
        {"text": "APPROVED"},
        name="rest.jsonl",
    )

    async def scenario() -> None:
        async with Agent.open(make_settings(database_url, script=rest)) as agent:
            [writer_run] = runs_of(agent, "writer")
            assert agent.services.runs.get(writer_run).status == "running"  # as the killed process left it
            finished = await resume_team(agent, correlation)

            assert (finished.status, finished.verdict) == ("finished", "approved")
            assert [member["role"] for member in finished.runs] == ["research", "writer", "reviewer"]
            assert finished.runs[1]["run_id"] == writer_run
            assert len(runs_of(agent, "research")) == 1
            agent.services.gateway.verify_script_consumed()

    run(scenario())


def test_a_subscriber_whose_member_waits_leaves_the_event_waiting_and_completes_it_after_the_answer(
    database_url, make_settings, write_script
):
    script = write_script(
        change(1, {"findings": "order 42 was delivered"}, "research", key="T-5"),
        UNSURE,
        {"text": "Findings written."},  # the research run, resumed by the reviewer's approval
    )
    settings = shipped_embedded_gate(make_settings, database_url, script=script)

    def handling(agent: Agent) -> tuple[str, int]:
        with Session(agent.services.engine) as session:
            [row] = session.exec(select(EventHandling).where(EventHandling.handler == "choreography:research")).all()
        return row.status, row.attempts

    async def scenario() -> None:
        async with Agent.open(settings) as agent:
            with_ticket(agent, "T-5")
            handled = await subscribe(agent, "research", tenant_id="default", until_idle=True, route=ROUTE)
            assert handled == 0 and handling(agent) == ("waiting", 1)
            again = await subscribe(agent, "research", tenant_id="default", until_idle=True, route=ROUTE)
            assert again == 0 and handling(agent) == ("waiting", 1)  # looked at again: no attempt counted

            [run_id] = runs_of(agent, "research")
            [pending] = [row for row in agent.services.escalations.for_run(run_id) if row.status == "open"]
            assert pending.audience == "reviewer"
            await agent.answer(pending.id, "approve", by="reviewer:ana")
            done = await subscribe(agent, "research", tenant_id="default", until_idle=True, route=ROUTE)

            assert done == 1 and handling(agent) == ("done", 1)
            assert runs_of(agent, "research") == [run_id]  # completed with the answered run, no second one
            agent.services.gateway.verify_script_consumed()

    run(scenario())


READ_TWICE = [
    {"expect": "You are the research agent", "tool_calls": [{"name": "ticket_read", "arguments": {"key": "T-1"}}]},
    {"tool_calls": [{"name": "ticket_read", "arguments": {"key": "T-1"}}]},  # the second call: over the cap
]


def capped_at_one_tool_call(make_settings: Any, database_url: str, script: str) -> Settings:
    return make_settings(database_url, script=script, limits={"request": {"tool_calls": 1}})


def tickets_read(agent: Agent, run_id: str) -> int:
    """How many ticket_read calls the run executed, from its recorded events."""
    events = agent.services.runs.events(run_id)
    return sum(e.kind == "tool_result" and e.payload.get("tool") == "ticket_read" for e in events)


def test_a_member_over_the_request_cap_makes_no_call_and_the_team_waits_for_a_reviewer(
    database_url, make_settings, write_script
):
    settings = capped_at_one_tool_call(make_settings, database_url, write_script(*READ_TWICE))

    async def scenario() -> None:
        async with Agent.open(settings) as agent:
            with_ticket(agent)
            result = await run_team(agent, "Answer the customer about order 42", ticket="T-1", route=ROUTE)

            assert (result.status, result.runs, result.stopped_by) == ("waiting", [], None)
            [pending] = result.waiting_for
            assert (pending["role"], pending["audience"], pending["trigger"]) == (
                "research",
                "reviewer",
                "budget_breach",
            )
            assert tickets_read(agent, pending["run_id"]) == 1
            agent.services.gateway.verify_script_consumed()

    run(scenario())


def test_a_subscriber_over_the_request_cap_makes_no_call_and_its_event_waits_for_a_reviewer(
    database_url, make_settings, write_script
):
    settings = capped_at_one_tool_call(make_settings, database_url, write_script(*READ_TWICE))

    async def scenario() -> None:
        async with Agent.open(settings) as agent:
            with_ticket(agent)
            handled = await subscribe(agent, "research", tenant_id="default", until_idle=True, route=ROUTE)

            assert handled == 0
            with Session(agent.services.engine) as session:
                [row] = session.exec(select(EventHandling)).all()
            assert (row.handler, row.status) == ("choreography:research", "waiting")
            [run_id] = runs_of(agent, "research")
            [pending] = [row for row in agent.services.escalations.for_run(run_id) if row.status == "open"]
            assert (pending.audience, pending.trigger) == ("reviewer", "budget_breach")
            assert tickets_read(agent, run_id) == 1
            agent.services.gateway.verify_script_consumed()

    run(scenario())


def firebreak(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIREBREAK, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_firebreak_team_prints_what_it_waits_for_exits_3_and_resume_finishes_it(tmp_path, write_script):
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    config = tmp_path / "embedded-gate.toml"
    config.write_text(f'[gate.routes."{ROUTE}"]\nexecute_above = 0.95\n', encoding="utf-8")
    # The cache is not the subject: without it each process starts without loading the embedding model.
    env = {"FIREBREAK_DATABASE_URL": database_url, "FIREBREAK_CONFIG": str(config), "FIREBREAK_CACHE__ENABLED": "false"}
    EntityStore(prepare_database(load_settings(database_url=database_url))).create(
        "default", "ticket", "T-1", {"subject": "Where is order 42?"}, actor="intake"
    )

    env["FIREBREAK_SCRIPT"] = write_script(FINDINGS, change(1, {"draft": DRAFT}, "writer"), UNSURE, name="a.jsonl")
    waiting = firebreak("team", "--ticket", "T-1", "--model", ROUTE, "Answer the customer", env=env)

    assert waiting.returncode == 3, waiting.stderr
    [line] = [line for line in waiting.stdout.splitlines() if line.startswith("waiting for a reviewer: ")]
    escalation = line.removeprefix("waiting for a reviewer: ").split(" ")[0]
    assert f"answer: firebreak escalations answer {escalation} <answer>" in waiting.stdout
    [resume] = [line for line in waiting.stdout.splitlines() if line.startswith("then: firebreak team --resume ")]

    env["FIREBREAK_SCRIPT"] = write_script(DRAFTED, name="b.jsonl")
    answered = firebreak("escalations", "answer", escalation, "approve", env=env)
    assert answered.returncode == 0, answered.stderr
    assert f"its team goes on with: {resume.removeprefix('then: ')}" in answered.stderr
    env["FIREBREAK_SCRIPT"] = write_script(
        change(2, {"status": "approved"}, "reviewer"), SURE, {"text": "APPROVED"}, name="c.jsonl"
    )
    finished = firebreak(*resume.removeprefix("then: firebreak ").split(" "), "--json", env=env)

    assert finished.returncode == 0, finished.stderr
    team = json.loads(finished.stdout)
    assert (team["status"], team["verdict"]) == ("finished", "approved")
    assert [member["role"] for member in team["runs"]] == ["research", "writer", "reviewer"]


@pytest.mark.slow
def test_firebreak_team_on_the_shipped_config_and_the_embedded_model_finishes_or_waits_visibly(tmp_path):
    """No script: the shipped firebreak.toml and the real 0.5B model, as `make run` leaves a new user."""
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    EntityStore(prepare_database(load_settings(database_url=database_url))).create(
        "default", "ticket", "T-1", {"subject": "Where is order 42?"}, actor="intake"
    )
    env = {"FIREBREAK_DATABASE_URL": database_url}

    team = firebreak("team", "--ticket", "T-1", "--json", "Answer the customer about order 42", env=env, timeout=280)

    result = json.loads(team.stdout)
    outcome = result["status"] if result["status"] in ("waiting", "stopped") else result["verdict"]
    visible = {("waiting", 3), ("stopped", 1), ("approved", 0), ("revise", 1)}
    assert (outcome, team.returncode) in visible, team.stderr
    if outcome == "waiting":
        assert result["waiting_for"] and all(item["audience"] == "reviewer" for item in result["waiting_for"])
    if outcome == "stopped":  # the 0.5B model's run ended without an answer: the team says whose, and stops there
        assert result["stopped_by"]["status"] not in ("answered", "running", "waiting")
    assert all(member["status"] != "running" for member in result["runs"])
