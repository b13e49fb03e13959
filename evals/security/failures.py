"""Failures that reach nobody (issue 16, item 5): a run that fails on any entry path must be in the operator's
one view (``firebreak dlq list``, the Runs & DLQ tab) with an action: requeue it, or the escalation it waits on.

``failed_run_visibility`` makes one run fail on each entry path that can fail (the Python API, ``firebreak
ask`` as a real process, the queue until it dead-letters, a team member, a subscriber's event until it
dead-letters), all on one SQLite file, and counts the failures the view does not list with an action.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from app.operators import Operator, needs_attention
from core.config import Settings, load_settings
from evals.scenario import Scenario
from graph.agent import Agent
from graph.choreography import settle
from graph.team import run_team
from graph.worker import Worker, submit
from memory.queue import QueueStore
from memory.shared_state import EntityStore

ROUTE = "scripted/demo"
SERVER_DOWN = {"error": "server"}
# The actions that reach someone: requeue it, answer its escalation, or the queue / its event is on it.
ACTIONABLE = ("requeue", "escalation", "retrying")
FAST: dict[str, Any] = {"retries": {"attempts": 1}, "queue": {"retry_base_delay_s": 0.0}}


def _script(folder: Path, name: str, *replies: dict[str, Any]) -> str:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(reply) + "\n" for reply in replies), encoding="utf-8")
    return str(path)


def _settings(database_url: str, script: str) -> Settings:
    return load_settings(database_url=database_url, script=script, **FAST)


async def _python_api(database_url: str, folder: Path) -> str:
    async with Agent.open(_settings(database_url, _script(folder, "api", SERVER_DOWN))) as agent:
        return (await agent.ask("What is the capital of France?", route=ROUTE)).run_id


def _cli_ask(database_url: str, folder: Path) -> str:
    env = {
        **os.environ,
        "FIREBREAK_DATABASE_URL": database_url,
        "FIREBREAK_SCRIPT": _script(folder, "cli", SERVER_DOWN),
        "FIREBREAK_RETRIES__ATTEMPTS": "1",
    }
    firebreak = str(Path(sys.executable).parent / "firebreak")
    done = subprocess.run(
        [firebreak, "ask", "--model", ROUTE, "--json", "What is the capital of Italy?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return str(json.loads(done.stdout)["run_id"])


async def _queue(database_url: str, folder: Path) -> str:
    settings = _settings(database_url, _script(folder, "queue", SERVER_DOWN, SERVER_DOWN, SERVER_DOWN))
    async with Agent.open(settings) as agent:
        store = QueueStore(agent.services.engine)
        job = submit(store, settings, "What is the capital of Spain?", route=ROUTE)
        await Worker(agent, store).run_until_idle()
        return job.id


async def _team_member(database_url: str, folder: Path) -> str:
    script = _script(folder, "team", SERVER_DOWN)  # the research run fails, and the team stops there
    async with Agent.open(_settings(database_url, script)) as agent:
        team = await run_team(agent, "Where is my order?", ticket="T-1", route=ROUTE)
        assert team.stopped_by is not None and team.stopped_by["role"] == "research", team.as_dict()
        return str(team.stopped_by["run_id"])


async def _subscriber(database_url: str, folder: Path) -> str:
    script = _script(folder, "subscribe", *[{"expect": "research agent", **SERVER_DOWN}] * 3)
    async with Agent.open(_settings(database_url, script)) as agent:
        EntityStore(agent.services.engine).create("default", "ticket", "T-2", {"subject": "Refund?"}, actor="intake")
        await settle(agent, tenant_id="default", route=ROUTE)
        return "event"


def failed_run_visibility(folder: Path) -> Scenario:
    """One failure per entry path; how many of them the operator's view does not list with an action."""
    database_url = f"sqlite:///{folder / 'failures.db'}"

    async def failures() -> dict[str, str]:
        return {
            "python_api": await _python_api(database_url, folder),
            "cli_ask": await asyncio.to_thread(_cli_ask, database_url, folder),
            "queue": await _queue(database_url, folder),
            "team_member": await _team_member(database_url, folder),
            "subscribe_event": await _subscriber(database_url, folder),
        }

    failed = asyncio.run(failures())
    from app.services import prepare_database

    engine = prepare_database(load_settings(database_url=database_url))
    view = needs_attention(engine, Operator("eval", "admin", "cli"), now=time.time())
    actions: dict[str, str | None] = {}
    for path, run_id in failed.items():
        listed = [item for item in view if (item.kind == "event" if run_id == "event" else item.run_id == run_id)]
        actions[path] = next((item.action for item in listed if item.action in ACTIONABLE), None)
    unreachable = sorted(path for path, action in actions.items() if action is None)
    return Scenario(
        "failed_run_visibility",
        passed=not unreachable,
        figures={
            "failed_runs": len(failed),
            "unreachable_failed_runs": len(unreachable),
            "actions": actions,
            "unreachable_paths": unreachable,
        },
    )


def scenarios(folder: Path) -> list[Scenario]:
    """This module's scenario, then the team and sweep scenarios of ``evals.security.team_sweep`` (if present)."""
    found = [failed_run_visibility(folder)]
    if importlib.util.find_spec("evals.security.team_sweep") is not None:
        team_sweep = importlib.import_module("evals.security.team_sweep")
        found += team_sweep.scenarios(folder)
    return found
