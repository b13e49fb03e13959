"""Canary rollouts: releases, sticky assignment, analysis and the controller, through real runs."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import run
from sqlmodel import Session, select

from app.canary.analysis import RunSample, analyze
from app.canary.controller import bucket
from app.canary.release import release_spec
from app.faults import FaultPlan
from app.services import build_services
from core.config import load_settings
from core.errors import CanaryError, ConfigError
from graph.agent import Agent
from memory.tables import Alert, Run

ANSWER = {"repeat": True, "text": "We open at nine."}


def canary_settings(make_settings, database_url, write_script, **overrides):
    """Release base on route chat (scripted/demo), v2 on scripted/v2; steps 50% then 100%, 5 runs per arm."""
    config = {
        "script": write_script(ANSWER),
        "routes": {"chat": {"models": ["scripted/demo"]}},
        "releases": {"v2": {"route": "scripted/v2", "system_prompt": "You are version two."}},
        "canary": {"steps": [50, 100], "min_runs": [5], "metrics": {"latency_p95": {"tolerance": 100.0}}},
        "cache": {"enabled": False},
        "triggers": {"rephrase_count": 1_000_000},
    }
    for key, value in overrides.items():
        config[key] = value if not isinstance(value, dict) else {**config.get(key, {}), **value}
    return make_settings(database_url, **config)


async def traffic(settings, *, users: int, limit: int = 200, faults=None):
    """Ask from ``users`` users (round robin) until the active rollout ends (or ``limit`` runs); the agent."""
    services = build_services(settings, faults=faults)
    async with Agent.open(settings, services=services) as agent:
        for n in range(limit):
            if agent.services.canary.store.active() is None:
                break
            await agent.ask("When do you open?", tenant_id="acme", user_id=f"u{n % users}")
        return agent


def _runs(agent) -> list[Run]:
    with Session(agent.services.engine) as session:
        return list(session.exec(select(Run).order_by(Run.created_at)))


def _sample(arm: str, *, error: bool = False, cost: float = 0.001, latency: float = 0.1) -> RunSample:
    return RunSample(arm=arm, error=error, flagged=False, cost_usd=cost, latency_s=latency)


def test_a_release_digest_changes_when_its_prompt_route_or_planner_does(make_settings, sqlite_url):
    settings = make_settings(sqlite_url, releases={"v2": {"route": "scripted/v2"}})
    changed = make_settings(sqlite_url, releases={"v2": {"route": "scripted/v2", "planner": True}})

    assert release_spec(settings, "v2").digest == release_spec(settings, "v2").digest
    assert release_spec(settings, "v2").digest != release_spec(changed, "v2").digest
    assert release_spec(settings, "base").route == settings.agent.default_route


def test_an_unknown_release_is_a_configuration_error_naming_the_known_ones(make_settings, sqlite_url):
    with pytest.raises(ConfigError, match=r"unknown release 'v9'.*\['base'"):
        release_spec(make_settings(sqlite_url), "v9")


def test_a_ramp_must_rise_and_end_at_100(sqlite_url):
    with pytest.raises(ConfigError, match="must rise strictly and end at 100"):
        load_settings(database_url=sqlite_url, canary={"steps": [1, 5, 50], "min_runs": [1, 1]})


def test_raising_the_weight_only_moves_users_newly_inside_it_to_the_canary():
    users = [f"acme/u{n}" for n in range(2000)]
    inside = {weight: {user for user in users if bucket(7, user) < weight} for weight in (1, 5, 25, 100)}

    assert inside[1] <= inside[5] <= inside[25] <= inside[100] == set(users)
    assert 0.2 < len(inside[25]) / len(users) < 0.3


def test_a_new_rollout_reshuffles_who_goes_first():
    users = [f"acme/u{n}" for n in range(2000)]
    first = {user for user in users if bucket(1, user) < 5}
    second = {user for user in users if bucket(2, user) < 5}

    assert first != second


def test_too_few_runs_is_inconclusive_even_when_the_canary_looks_worse(make_settings, sqlite_url):
    settings = make_settings(sqlite_url).canary
    samples = [_sample("control") for _ in range(50)] + [_sample("canary", error=True) for _ in range(3)]

    analysis = analyze(samples, settings, step=1)  # the 5% step needs 20 runs per arm

    assert analysis.verdict == "inconclusive"
    assert analysis.canary_runs == 3 and analysis.min_runs == 20


def test_a_significantly_worse_error_rate_fails_as_a_critical_metric(make_settings, sqlite_url):
    settings = make_settings(sqlite_url).canary
    samples = [_sample("control", error=n % 50 == 0) for n in range(400)]
    samples += [_sample("canary", error=n % 4 == 0) for n in range(20)]

    analysis = analyze(samples, settings, step=1)

    error_rate = next(metric for metric in analysis.metrics if metric.name == "error_rate")
    assert analysis.verdict == "failed" and analysis.critical_failure
    assert error_rate.canary == 0.25 and error_rate.control == 0.02
    assert error_rate.p_value is not None and error_rate.p_value < 0.01


def test_a_difference_within_tolerance_passes_even_with_many_runs(make_settings, sqlite_url):
    settings = make_settings(sqlite_url).canary
    samples = [_sample("control", cost=0.0100) for _ in range(2000)] + [
        _sample("canary", cost=0.0105) for _ in range(500)
    ]

    analysis = analyze(samples, settings, step=2)

    cost = next(metric for metric in analysis.metrics if metric.name == "cost_per_run")
    assert cost.p_value is not None and cost.p_value < 0.05  # significant, but only 5% dearer: tolerated
    assert analysis.verdict == "successful"


def test_a_worse_non_critical_metric_fails_without_being_critical(make_settings, sqlite_url):
    settings = make_settings(sqlite_url).canary
    samples = [_sample("control", cost=0.01) for _ in range(40)] + [_sample("canary", cost=0.03) for _ in range(40)]

    analysis = analyze(samples, settings, step=2)

    assert analysis.verdict == "failed" and not analysis.critical_failure


def test_runs_record_their_release_and_arm_and_every_span_carries_the_release(
    database_url, make_settings, write_script
):
    settings = canary_settings(make_settings, database_url, write_script, canary={"min_runs": [50]})
    build_services(settings).canary.start("v2", by="test")
    agent = run(traffic(settings, users=20, limit=20))

    runs = _runs(agent)
    assert {run.arm for run in runs} == {"control", "canary"}
    assert all(run.release == ("v2" if run.arm == "canary" else "base") for run in runs)
    assert all(run.route == ("scripted/v2" if run.arm == "canary" else "chat") for run in runs)
    canary_run = next(run for run in runs if run.arm == "canary")
    spans = agent.services.runs.spans(canary_run.id)
    assert len(spans) > 3
    assert all(span.attributes.get("firebreak.release") == "v2" for span in spans)
    assert all(span.attributes.get("service.version") == "v2" for span in spans)
    assert all(span.attributes.get("firebreak.route") == "scripted/v2" for span in spans)


def test_a_user_keeps_their_arm_across_runs(make_settings, sqlite_url, write_script):
    settings = canary_settings(make_settings, sqlite_url, write_script, canary={"min_runs": [50]})
    build_services(settings).canary.start("v2", by="test")
    agent = run(traffic(settings, users=6, limit=24))

    arms: dict[str, set[str | None]] = {}
    for record in _runs(agent):
        arms.setdefault(record.user_id, set()).add(record.arm)
    assert all(len(seen) == 1 for seen in arms.values())


def test_a_run_that_names_its_route_stays_out_of_the_rollout(make_settings, sqlite_url, write_script):
    settings = canary_settings(make_settings, sqlite_url, write_script)

    async def ask():
        async with Agent.open(settings) as agent:
            agent.services.canary.start("v2", by="test")
            return await agent.ask("When do you open?", route="scripted/demo"), agent

    result, agent = run(ask())
    recorded = agent.services.runs.get(result.run_id)
    assert recorded is not None
    assert (recorded.release, recorded.arm, recorded.rollout_id) == ("base", None, None)


def test_early_users_get_the_canary_from_the_first_step(make_settings, sqlite_url, write_script):
    settings = canary_settings(
        make_settings,
        sqlite_url,
        write_script,
        canary={"steps": [1, 100], "min_runs": [50], "early_users": ["acme/u0"]},
    )
    services = build_services(settings)
    rollout = services.canary.start("v2", by="test")

    assert services.canary.serve("acme", "u0", "t").arm == "canary"
    assert rollout.steps[rollout.step] == 1


def test_a_release_with_more_errors_is_rolled_back_alerted_and_serves_nobody_after(
    database_url, make_settings, write_script
):
    settings = canary_settings(
        make_settings,
        database_url,
        write_script,
        faults={"scripted/v2": {"error_rate": 1.0, "error_kind": "bad_request"}},
    )
    build_services(settings).canary.start("v2", by="test")
    agent = run(traffic(settings, users=30, faults=FaultPlan(settings.faults, rng=random.Random(1))))

    canary = agent.services.canary
    rollout = canary.store.latest(1)[0]
    assert rollout.status == "rolled_back" and rollout.active is None
    assert "error_rate" in (rollout.reason or "")
    [decision] = canary.store.analyses(rollout.id)
    assert (decision.action, decision.by, decision.verdict) == ("rolled_back", "analysis", "failed")
    with Session(agent.services.engine) as session:
        [alert] = session.exec(select(Alert).where(Alert.kind == "canary_rollback")).all()
    error_rate = next(metric for metric in alert.payload["metrics"] if metric["name"] == "error_rate")
    assert error_rate["canary"] == 1.0 and error_rate["control"] == 0.0
    assert all(canary.serve("acme", f"u{n}", "t").release.name == "base" for n in range(30))


def test_a_release_as_good_as_control_is_promoted_and_becomes_stable(database_url, make_settings, write_script):
    settings = canary_settings(make_settings, database_url, write_script)
    build_services(settings).canary.start("v2", by="test")
    agent = run(traffic(settings, users=30))

    canary = agent.services.canary
    rollout = canary.store.latest(1)[0]
    assert (rollout.status, rollout.steps[rollout.step]) == ("promoted", 100)
    assert canary.stable().name == "v2"
    assert canary.serve("acme", "anyone", "t").release.system_prompt == "You are version two."


def test_only_one_rollout_runs_at_a_time(make_settings, sqlite_url, write_script):
    canary = build_services(canary_settings(make_settings, sqlite_url, write_script)).canary
    canary.start("v2", by="test")

    with pytest.raises(CanaryError, match="still active"):
        canary.start("v2", by="test")


def test_a_release_cannot_change_under_its_name(make_settings, sqlite_url, write_script):
    canary = build_services(canary_settings(make_settings, sqlite_url, write_script)).canary
    canary.start("v2", by="test")
    canary.rollback(by="test")
    edited = canary_settings(make_settings, sqlite_url, write_script, releases={"v2": {"route": "scripted/v3"}})

    with pytest.raises(CanaryError, match="changed since it first served"):
        build_services(edited).canary.start("v2", by="test")


def test_an_operator_promotes_step_by_step_and_rolls_back_by_hand(make_settings, sqlite_url, write_script):
    settings = canary_settings(
        make_settings, sqlite_url, write_script, canary={"steps": [1, 5, 100], "min_runs": [5, 5]}
    )
    canary = build_services(settings).canary
    canary.start("v2", by="test")

    stepped = canary.promote(by="ops:alice")
    rolled_back = canary.rollback(by="ops:alice", reason="customer complaints")

    assert stepped.steps[stepped.step] == 5 and stepped.status == "running"
    assert rolled_back.status == "rolled_back" and rolled_back.reason == "customer complaints"
    assert [(row.action, row.by) for row in canary.store.analyses(rolled_back.id)] == [
        ("advanced", "ops:alice"),
        ("rolled_back", "ops:alice"),
    ]
    with pytest.raises(CanaryError, match="no rollout is active"):
        canary.promote(by="ops:alice")


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A real HTTP receiver on 127.0.0.1: (its URL, the JSON bodies posted to it)."""
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()


def test_a_rollback_is_posted_to_the_alert_webhook_with_both_arms_numbers(
    make_settings, sqlite_url, write_script, webhook
):
    url, received = webhook
    settings = canary_settings(make_settings, sqlite_url, write_script, queue={"alert_webhook": url})
    canary = build_services(settings).canary
    canary.start("v2", by="test")
    canary.rollback(by="ops:alice", reason="customer complaints")

    [posted] = received
    assert posted["kind"] == "canary_rollback"
    assert "customer complaints" in posted["message"]
    assert posted["payload"]["release"] == "v2" and posted["payload"]["by"] == "ops:alice"
    assert {metric["name"] for metric in posted["payload"]["metrics"]} == {
        "error_rate",
        "flag_rate",
        "cost_per_run",
        "latency_p95",
    }


def test_an_unreachable_webhook_never_stops_the_rollback(make_settings, sqlite_url, write_script):
    dead = {"alert_webhook": "http://127.0.0.1:9/alerts"}  # the discard port: nothing listens there
    canary = build_services(canary_settings(make_settings, sqlite_url, write_script, queue=dead)).canary
    canary.start("v2", by="test")

    assert canary.rollback(by="ops:alice").status == "rolled_back"
    assert canary.serve("acme", "anyone", "t").release.name == "base"
