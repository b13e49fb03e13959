"""``firebreak eval operations``: canary rollouts (seed pattern 14) over simulated traffic, measured.

Users (sticky by a hash of their name) ask the agent through the real graph, gateway, databases and canary
controller; the scripted model stands in for three deployments that differ only in price and error rate:

* ``bad_release_rolled_back``: release B errs on a quarter of its runs (control: 2%). It must be rolled back
  automatically, before reaching a quarter of the users, and serve nobody afterwards.
* ``cheaper_release_promoted``: release C has the control's quality at half the price. It must ramp
  1% → 5% → 25% → 100% on its own and then serve everyone.

In both, no user may switch arms while the rollout runs (only users newly inside the weight move).
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from app.faults import FaultPlan
from app.services import build_services
from core.config import Settings, load_settings
from evals.scenario import Scenario, suite_report
from graph.agent import Agent
from memory.tables import Alert, Run

POPULATION = 400
QUESTION = "What are your opening hours?"
MAX_RUNS = 4000  # a rollout that neither promotes nor rolls back by then has failed the scenario
AFTER_RUNS = 50  # traffic sent once the rollout ended, to see who serves it
PRICE = 1e-6
# The simulation is deterministic for a seed (users, faults, hash buckets). With this one, B's first five
# canary runs hold one error, which a 1% smoke step cannot tell from the control's 2%; over seeds 1-15, B is
# rolled back at 1% five times, at 5% nine times and at 25% once, and never promoted.
SEED = 11  # the control's price per token; C costs half


def _route(model: str) -> dict[str, Any]:
    return {"models": [model], "max_output_tokens": 64, "temperature": 0.0, "timeout_s": 5.0}


def _model(price: float) -> dict[str, Any]:
    return {"input_cost_per_token": price, "output_cost_per_token": 2 * price, "context_window": 4096}


def simulation_config(folder: Path) -> dict[str, Any]:
    """Three deployments, releases B and C, and limits that let one tenant send thousands of runs."""
    script = folder / "answers.jsonl"
    script.write_text(json.dumps({"repeat": True, "text": "We are open 9 to 5, Monday to Friday."}) + "\n")
    errors = {"error_kind": "bad_request"}
    return {
        "script": str(script),
        "agent": {"default_route": "stable"},
        "routes": {
            "stable": _route("scripted/stable"),
            "buggy": _route("scripted/buggy"),
            "cheap": _route("scripted/cheap"),
        },
        "models": {
            "scripted/stable": _model(PRICE),
            "scripted/buggy": _model(PRICE),
            "scripted/cheap": _model(PRICE / 2),
        },
        "faults": {
            "scripted/stable": {"error_rate": 0.02, **errors},
            "scripted/buggy": {"error_rate": 0.25, **errors},
            "scripted/cheap": {"error_rate": 0.02, **errors},
        },
        "releases": {"b": {"route": "buggy"}, "c": {"route": "cheap"}},
        # Every question is the same: the cache would answer them all without a model.
        "cache": {"enabled": False},
        # Scripted runs take milliseconds: scheduler noise on a busy machine is not a release's latency.
        "canary": {"metrics": {"latency_p95": {"tolerance": 1.0}}},
        "triggers": {"rephrase_count": 1_000_000},
        "limits": {"session": {"tokens": 1e9, "cost_usd": 1e6}, "day": {"tokens": 1e9, "cost_usd": 1e6}},
        "rate_limits": {"user": {"requests": 1e9, "tokens": 1e12}, "tenant": {"requests": 1e9, "tokens": 1e12}},
    }


def _switched_users(runs: list[Run]) -> int:
    """Users who were served by the canary and later by the control while the rollout ran."""
    seen_canary: set[str] = set()
    switched: set[str] = set()
    for run in runs:
        if run.arm == "canary":
            seen_canary.add(run.user_id)
        elif run.user_id in seen_canary:
            switched.add(run.user_id)
    return len(switched)


async def rollout(settings: Settings, release: str, seed: int) -> dict[str, Any]:
    """Start a rollout of ``release``, send traffic until it ends, then a little more; the figures."""
    rng = random.Random(seed)
    services = build_services(settings, faults=FaultPlan(settings.faults, rng=random.Random(seed)))
    async with Agent.open(settings, services=services) as agent:
        canary = agent.services.canary
        started = canary.start(release, by="eval")
        assert started.id is not None
        users = [f"user{n:03d}" for n in range(POPULATION)]
        sent = 0
        while sent < MAX_RUNS and (canary.store.get(started.id) or started).status in ("running", "paused"):
            await agent.ask(QUESTION, tenant_id="acme", user_id=rng.choice(users))
            sent += 1
        ended = canary.store.get(started.id)
        assert ended is not None
        for _ in range(AFTER_RUNS):
            await agent.ask(QUESTION, tenant_id="acme", user_id=rng.choice(users))
        with Session(agent.services.engine) as session:
            during = list(session.exec(select(Run).where(Run.rollout_id == started.id).order_by(col(Run.created_at))))
            after = list(session.exec(select(Run).where(col(Run.rollout_id).is_(None))))
            alerts = list(session.exec(select(Alert).where(Alert.kind == "canary_rollback")))
        history = canary.store.analyses(started.id)
    last = history[-1] if history else None
    metrics = {metric["name"]: metric for metric in (last.metrics if last else [])}
    return {
        "status": ended.status,
        "final_weight": ended.steps[ended.step],
        "runs_in_rollout": len(during),
        "decided_at_weight": last.weight if last else None,
        "canary_runs_at_decision": last.canary_runs if last else 0,
        "control_runs_at_decision": last.control_runs if last else 0,
        "metrics_at_decision": metrics,
        "users_switched_arms": _switched_users(during),
        "share_after": sum(run.release == release for run in after) / max(len(after), 1),
        "rollback_alerts": len(alerts),
        "stable_after": canary.stable().name,
    }


def _figure(metrics: dict[str, Any], name: str, key: str) -> float | None:
    value = metrics.get(name, {}).get(key)
    return None if value is None else round(value, 6)


async def bad_release_rolled_back(folder: Path, seed: int) -> Scenario:
    settings = load_settings(database_url=f"sqlite:///{folder / 'bad.db'}", **simulation_config(folder))
    figures = await rollout(settings, "b", seed)
    metrics = figures["metrics_at_decision"]
    shown = {
        "rollback_step": figures["decided_at_weight"] if figures["status"] == "rolled_back" else None,
        "status": figures["status"],
        "runs_in_rollout": figures["runs_in_rollout"],
        "canary_runs_at_decision": figures["canary_runs_at_decision"],
        "canary_error_rate": _figure(metrics, "error_rate", "canary"),
        "control_error_rate": _figure(metrics, "error_rate", "control"),
        "error_rate_p_value": _figure(metrics, "error_rate", "p_value"),
        "bad_release_share_after_rollback": figures["share_after"],
        "users_switched_arms": figures["users_switched_arms"],
        "rollback_alerts": figures["rollback_alerts"],
    }
    passed = (
        figures["status"] == "rolled_back"
        and shown["rollback_step"] is not None
        and shown["rollback_step"] < 25
        and figures["share_after"] == 0
        and figures["users_switched_arms"] == 0
        and figures["rollback_alerts"] == 1
    )
    return Scenario("bad_release_rolled_back", passed, shown)


async def cheaper_release_promoted(folder: Path, seed: int) -> Scenario:
    settings = load_settings(database_url=f"sqlite:///{folder / 'cheap.db'}", **simulation_config(folder))
    figures = await rollout(settings, "c", seed)
    metrics = figures["metrics_at_decision"]
    control_cost, canary_cost = _figure(metrics, "cost_per_run", "control"), _figure(metrics, "cost_per_run", "canary")
    shown = {
        "status": figures["status"],
        "final_weight": figures["final_weight"],
        "runs_in_rollout": figures["runs_in_rollout"],
        "cost_ratio_canary_to_control": round(canary_cost / control_cost, 3) if canary_cost and control_cost else None,
        "canary_error_rate": _figure(metrics, "error_rate", "canary"),
        "control_error_rate": _figure(metrics, "error_rate", "control"),
        "share_after_promotion": figures["share_after"],
        "users_switched_arms": figures["users_switched_arms"],
        "stable_after": figures["stable_after"],
    }
    passed = (
        figures["status"] == "promoted"
        and figures["final_weight"] == 100
        and figures["share_after"] == 1.0
        and figures["users_switched_arms"] == 0
        and figures["stable_after"] == "c"
    )
    return Scenario("cheaper_release_promoted", passed, shown)


async def run_operations(folder: Path, seed: int = SEED) -> dict[str, Any]:
    scenarios = [await bad_release_rolled_back(folder, seed), await cheaper_release_promoted(folder, seed)]
    return suite_report("operations", scenarios)


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="firebreak-operations-") as folder:
        return asyncio.run(run_operations(Path(folder)))
