"""``[agent] graph`` names the agent's graph, and every door runs it; a wrong name stops the start with one line.

The README's "Add a node" runs through the ``firebreak`` command and the queue's worker process
(tests/test_readme_examples.py); here the in-process doors, the Python API and the UI, and the errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run
from entry_paths import Deployment, through
from signed_graph import SIGNATURE, signed_builder
from test_containment import CANCEL

from app.canary.controller import bucket
from app.canary.release import ReleaseSpec, release_spec
from app.services import build_services
from core.config import load_settings
from core.errors import ConfigError
from graph.agent import Agent, RunResult
from graph.builder import configured_builder, default_builder
from graph.doctor import run_checks

FIREBREAK = str(Path(sys.executable).with_name("firebreak"))


@pytest.mark.parametrize("door", ["python_api", "ui"])
def test_every_door_runs_the_configured_graph(door, database_url, tmp_path, write_script):
    deployment = Deployment(database_url, tmp_path, {"agent": {"graph": "signed_graph:builder"}})

    shown = through(door, deployment, write_script({"text": "Paris."}), "What is the capital of France?")

    assert shown.status == "answered"
    assert f"Paris.{SIGNATURE}" in shown.text


def test_a_function_returning_a_builder_is_called_for_it():
    assert configured_builder("signed_graph:signed_builder").digest() == signed_builder().digest()


def test_no_graph_named_is_the_built_in_graph():
    assert configured_builder("").digest() == default_builder().digest()


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("signed_graph", "agent.graph is 'signed_graph': write \"module:attribute\""),
        ("no_such_module:builder", "agent.graph: cannot import 'no_such_module': No module named 'no_such_module'"),
        ("signed_graph:missing", "agent.graph: module 'signed_graph' has no 'missing'"),
        ("signed_graph:not_a_builder", "agent.graph: signed_graph:not_a_builder is a str, not a GraphBuilder"),
    ],
)
def test_a_wrong_graph_name_is_one_config_error_saying_what_is_wrong(spec, says):
    with pytest.raises(ConfigError) as refused:
        configured_builder(spec)

    assert str(refused.value).startswith(says)


def test_firebreak_ask_with_a_graph_that_does_not_import_prints_one_line_and_runs_nothing(tmp_path, write_script):
    env = {
        **os.environ,
        "FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}",
        "FIREBREAK_SCRIPT": write_script({"text": "Paris."}),
        "FIREBREAK_ROUTES__CHAT__MODELS": '["scripted/demo"]',
        "FIREBREAK_AGENT__GRAPH": "my_graf:builder",
    }

    done = subprocess.run(
        [FIREBREAK, "ask", "What is the capital of France?"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr == "error: agent.graph: cannot import 'my_graf': No module named 'my_graf'\n"
    assert not (tmp_path / "fb.db").exists()  # refused before any store opened: no run, no file


def test_doctor_names_the_configured_graph_or_says_what_is_wrong_with_it(database_url):
    async def graph_check(spec: str) -> tuple[bool, str]:
        [check] = [
            c
            for c in await run_checks(load_settings(database_url=database_url, agent={"graph": spec}))
            if c.name == "graph"
        ]
        return check.ok, check.detail

    assert asyncio.run(graph_check("signed_graph:builder")) == (
        True,
        f"signed_graph:builder: {len(signed_builder().nodes)} nodes",
    )
    assert asyncio.run(graph_check("signed_graph:missing")) == (
        False,
        "agent.graph: module 'signed_graph' has no 'missing'",
    )


# -- a release may carry its own graph: a canary of a graph change ------------------------------------------------


def graph_canary(make_settings, database_url, script):
    """v2 is the built-in graph with every answer signed; acme/early gets it from the first step (1 %)."""
    return make_settings(
        database_url,
        script=script,
        routes={"chat": {"models": ["scripted/demo"]}},
        releases={"v2": {"graph": "signed_graph:builder"}},
        canary={"steps": [1, 100], "min_runs": [50], "early_users": ["acme/early"]},
        cache={"enabled": False},
    )


def test_a_release_runs_its_own_graph_and_the_stable_release_keeps_the_built_in_one(
    database_url, make_settings, write_script
):
    settings = graph_canary(make_settings, database_url, write_script({"repeat": True, "text": "Paris."}))

    async def scenario() -> tuple[RunResult, RunResult, Agent]:
        async with Agent.open(settings) as agent:
            rollout = agent.services.canary.start("v2", by="test")
            assert bucket(rollout.id, "acme/late") >= 1  # outside the first step: the control arm
            early = await agent.ask("Capital of France?", tenant_id="acme", user_id="early")
            late = await agent.ask("Capital of France?", tenant_id="acme", user_id="late")
            return early, late, agent

    early, late, agent = run(scenario())

    assert (early.answer, late.answer) == (f"Paris.{SIGNATURE}", "Paris.")
    assert [agent.services.runs.get(r.run_id).release for r in (early, late)] == ["v2", "base"]
    assert "node sign" in [span.name for span in agent.services.runs.spans(early.run_id)]


def test_a_paused_canary_run_resumes_on_its_releases_graph(database_url, make_settings, write_script):
    script = write_script(CANCEL, {"text": "0.4"}, {"text": "Order 2 is cancelled."})
    settings = graph_canary(make_settings, database_url, script)

    async def scenario() -> RunResult:
        async with Agent.open(settings) as agent:
            agent.services.canary.start("v2", by="test")
            first = await agent.ask("Cancel order 2", tenant_id="acme", user_id="early")
            [pending] = first.escalations
            return agent.settle_script(await agent.answer(pending["id"], "approve", by="reviewer:ada"))

    done = run(scenario())

    assert (done.status, done.answer) == ("answered", f"Order 2 is cancelled.{SIGNATURE}")


def test_starting_a_release_whose_graph_does_not_import_fails_and_starts_nothing(database_url, make_settings):
    settings = make_settings(database_url, releases={"v2": {"graph": "my_graf:builder"}})
    canary = build_services(settings).canary

    with pytest.raises(ConfigError, match="release v2's graph: cannot import 'my_graf'"):
        canary.start("v2", by="test")

    assert canary.store.active() is None


def test_a_release_stored_before_releases_had_a_graph_reads_back_unchanged(make_settings, sqlite_url):
    spec = release_spec(make_settings(sqlite_url, releases={"v2": {"route": "scripted/v2"}}), "v2")
    stored_then = {key: value for key, value in spec.as_dict().items() if key != "graph"}

    assert ReleaseSpec.from_dict(stored_then) == spec
    assert (
        spec.digest
        != release_spec(
            make_settings(sqlite_url, releases={"v2": {"route": "scripted/v2", "graph": "signed_graph:builder"}}), "v2"
        ).digest
    )


def test_firebreak_graph_draws_the_configured_graph_and_a_releases(tmp_path):
    (tmp_path / "my_graph.py").write_text(Path(__file__).with_name("signed_graph.py").read_text(), encoding="utf-8")
    env = {
        **os.environ,
        "FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}",
        "FIREBREAK_RELEASES": '{"v2": {"graph": "my_graph:builder"}}',
    }

    def graph(*args: str) -> subprocess.CompletedProcess[str]:
        command = [FIREBREAK, "graph", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)

    built_in, release, drawn = graph("--json"), graph("--release", "v2", "--json"), graph("--release", "v2")

    assert json.loads(built_in.stdout)["graph"] == "built-in" and "sign" not in json.loads(built_in.stdout)["nodes"]
    shown = json.loads(release.stdout)
    assert shown["graph"] == "my_graph:builder"
    assert ["respond", "sign"] in shown["edges"] and ["sign", "__end__"] in shown["edges"]
    assert "respond -.-> sign;" in drawn.stdout
