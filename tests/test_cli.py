"""The ``firebreak`` command as a user runs it: a real process, a real database."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from conftest import approving_team, run

from core.config import Settings
from evals.state import PRICING_DOWN, seed_replan_script
from graph.agent import Agent
from memory.migrate import MIGRATIONS

FIREBREAK = str(Path(sys.executable).parent / "firebreak")


def firebreak(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIREBREAK, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_ask_json_runs_a_scripted_two_tool_conversation_and_trace_show_lists_its_spans(database_url, write_script):
    script = write_script(
        {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 1234}}]},
        {"tool_calls": [{"name": "knowledge_search", "arguments": {"query": "refund"}}]},
        {"text": "Order 1234 is pending; refunds take 5 business days."},
    )
    env = {"FIREBREAK_SCRIPT": script, "FIREBREAK_DATABASE_URL": database_url}
    asked = firebreak("ask", "--model", "scripted/demo", "--json", "Where is order 1234?", env=env)

    assert asked.returncode == 0, asked.stderr
    result = json.loads(asked.stdout)
    assert result["status"] == "answered"
    assert result["answer"] == "Order 1234 is pending; refunds take 5 business days."
    assert {"run_id", "thread_id", "trace_id"} <= set(result)
    assert result["usage"]["input_tokens"] > 0 and result["usage"]["cost_usd"] == 0.0

    shown = firebreak("trace", "show", result["run_id"], env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.startswith("invoke_agent firebreak") for line in lines)
    chats = [line for line in lines if line.strip().startswith("chat scripted/demo")]
    assert len(chats) == 3 and all("input_tokens=" in line and "output_tokens=" in line for line in chats)
    assert sum("execute_tool" in line for line in lines) == 2


def test_conversation_continues_after_the_process_is_killed_between_turns(tmp_path, write_script):
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    first = write_script({"text": "Got it: your order number is 1243."}, name="first.jsonl")
    # The first turn runs in a process that is SIGKILLed right after answering: no clean shutdown.
    killer = textwrap.dedent(f"""
        import asyncio, os, signal
        from core.config import load_settings
        from graph.agent import Agent
        async def main():
            agent = await Agent.create(load_settings(script={first!r}, database_url={database_url!r}))
            result = await agent.ask("My order number is 1243.", route="scripted/demo", thread_id="t-1")
            print(result.status, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
    """)
    killed = subprocess.run([sys.executable, "-c", killer], capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL and killed.stdout.strip() == "answered", killed.stderr

    second = write_script(
        {"expect": "My order number is 1243.", "text": "Your order number is 1243."}, name="second.jsonl"
    )
    env = {"FIREBREAK_SCRIPT": second, "FIREBREAK_DATABASE_URL": database_url}
    asked = firebreak(
        "ask", "--model", "scripted/demo", "--thread", "t-1", "--json", "What is my order number?", env=env
    )
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["answer"] == "Your order number is 1243."


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["ask", "--model", "scripted/demo", "hi"], {}, "needs a script: set FIREBREAK_SCRIPT"),
        (["ask", "--model", "nonsense", "hi"], {}, "unknown route 'nonsense'"),
        (["ask", "hi"], {"FIREBREAK_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}, "is unreachable"),
        (["trace", "show", "no-such-run"], {}, "no run 'no-such-run'"),
        (["ask", "hi"], {"FIREBREAK_AGENT__MAX_STEPS": "0"}, "agent.max_steps"),
    ],
)
def test_errors_are_one_line_with_a_non_zero_exit(tmp_path, args, env, message):
    env = {"FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}", **env}
    result = firebreak(*args, env=env)

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


NOTES = "my notes, not a database\n" * 200


@pytest.mark.parametrize(
    ("database", "says"),
    [
        ("notes.db", "database {folder}/notes.db cannot be opened: file is not a database"),
        ("a-folder", "database_url names the folder {folder}/a-folder: name a file in it, e.g. {folder}/a-folder/"),
        ("notes.db/fb.db", "cannot create the database's folder {folder}/notes.db: "),
    ],
)  # fmt: skip
def test_a_database_url_that_cannot_be_a_sqlite_file_is_one_line_naming_it_and_keeps_what_is_there(
    tmp_path, database, says
):
    (tmp_path / "notes.db").write_text(NOTES)
    (tmp_path / "a-folder").mkdir()

    result = firebreak("ask", "Hello?", env={"FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / database}"})

    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {says.format(folder=tmp_path)}") and result.stderr.count("\n") == 1
    assert (tmp_path / "notes.db").read_text() == NOTES and list((tmp_path / "a-folder").iterdir()) == []


def test_doctor_fails_loudly_when_the_database_is_unreachable(tmp_path):
    result = firebreak("doctor", env={"FIREBREAK_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"})

    assert result.returncode == 1
    assert "FAIL  database" in result.stdout


def test_doctor_reports_every_store_and_model(database_url, write_script):
    script = write_script({"text": "unused"})
    config = Path(script).with_name("routes.toml")
    config.write_text(
        "".join(
            f'[routes.{route}]\nmodels = ["scripted/demo"]\nmax_output_tokens = 64\n'
            "temperature = 0.0\ntimeout_s = 5.0\n"
            for route in ("chat", "verifier")
        )
    )
    env = {"FIREBREAK_DATABASE_URL": database_url, "FIREBREAK_SCRIPT": script}
    before = firebreak("doctor", "--config", str(config), env=env)
    assert before.returncode == 1 and "run `firebreak db upgrade`" in before.stdout
    assert firebreak("db", "upgrade", env=env).returncode == 0

    result = firebreak("doctor", "--config", str(config), "--json", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    checks = {check["name"]: check["ok"] for check in json.loads(result.stdout)}
    assert checks == {
        "database": True,
        "checkpointer": True,
        "graph": True,
        "model scripted/demo": True,
        "cache models": True,
        "telemetry": True,
    }


def test_db_upgrade_reports_the_revision(tmp_path):
    result = firebreak("db", "upgrade", env={"FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}"})

    assert result.returncode == 0, result.stderr
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert f"database at revision {head}" in result.stdout


def test_doctor_names_the_missing_provider_key(tmp_path):
    config = tmp_path / "openai.toml"
    config.write_text(
        '[routes.chat]\nmodels = ["openai/gpt-4o-mini"]\nmax_output_tokens = 64\ntemperature = 0.0\ntimeout_s = 5.0\n'
    )
    env = {key: value for key, value in os.environ.items() if key != "OPENAI_API_KEY"}
    env["FIREBREAK_DATABASE_URL"] = f"sqlite:///{tmp_path / 'fb.db'}"
    result = subprocess.run(
        [FIREBREAK, "doctor", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert "FAIL  model openai/gpt-4o-mini" in result.stdout and "set OPENAI_API_KEY" in result.stdout


def test_budgets_lists_usage_against_the_caps(tmp_path, write_script):
    env = {
        "FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}",
        "FIREBREAK_SCRIPT": write_script(
            {"tool_calls": [{"name": "knowledge_search", "arguments": {"query": "refund"}}]}, {"text": "30 days."}
        ),
    }
    assert firebreak("ask", "--model", "scripted/demo", "--tenant", "acme", "Refunds?", env=env).returncode == 0
    result = firebreak("budgets", "--scope", "day:acme", "--json", env=env)

    assert result.returncode == 0, result.stderr
    rows = {row["resource"]: row for row in json.loads(result.stdout)}
    assert rows["tool_calls"]["used"] == 1 and rows["tool_calls"]["limit"] == 500
    assert rows["tokens"]["used"] > 0 and rows["tokens"]["reserved"] == 0


# -- containment: the reviewer's inbox from the command line ---------------------------------------

CANCEL_ORDER_2 = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]}


def _waiting_for_a_reviewer(database_url: str, write_script) -> tuple[dict, dict[str, str]]:
    """Ask to cancel order 2; the model's self-critique scores the write 0.4, so a reviewer must decide."""
    script = write_script(CANCEL_ORDER_2, {"text": "0.4"}, name="ask.jsonl")
    env = {"FIREBREAK_SCRIPT": script, "FIREBREAK_DATABASE_URL": database_url}
    asked = firebreak("ask", "--model", "scripted/demo", "--json", "Cancel order 2", env=env)
    assert asked.returncode == 3, asked.stderr  # 3: waiting for a person, not failed
    return json.loads(asked.stdout), env


def test_ask_that_needs_a_reviewer_exits_3_and_says_how_to_answer(database_url, write_script):
    script = write_script(CANCEL_ORDER_2, {"text": "0.4"})
    env = {"FIREBREAK_SCRIPT": script, "FIREBREAK_DATABASE_URL": database_url}

    asked = firebreak("ask", "--model", "scripted/demo", "Cancel order 2", env=env)

    assert asked.returncode == 3
    assert "waiting for a reviewer: Is this the right thing to do: call update_order(" in asked.stderr
    assert "[approve / reject]" in asked.stderr
    assert "firebreak escalations answer " in asked.stderr


def test_a_reviewer_lists_shows_and_approves_in_another_process_and_the_write_runs_once(database_url, write_script):
    waiting, env = _waiting_for_a_reviewer(database_url, write_script)
    (pending,) = waiting["escalations"]

    listed = firebreak("escalations", "list", "--json", env=env)
    assert [row["id"] for row in json.loads(listed.stdout)] == [pending["id"]]
    shown = json.loads(firebreak("escalations", "show", pending["id"][:8], env=env).stdout)
    assert shown["context"]["target"] == "update_order" and shown["context"]["score"] == 0.4

    # The answering process resumes the run from its checkpoint: the model is asked only for its final answer.
    env["FIREBREAK_SCRIPT"] = write_script({"text": "Order 2 is cancelled."}, name="resume.jsonl")
    answered = firebreak("escalations", "answer", pending["id"][:8], "approve", "--json", env=env)

    assert answered.returncode == 0, answered.stderr
    result = json.loads(answered.stdout)
    assert result["run_id"] == waiting["run_id"] and result["status"] == "answered"
    assert result["answer"] == "Order 2 is cancelled."
    again = firebreak("escalations", "answer", pending["id"][:8], "approve", env=env)
    # Without a token the person at this machine answers, as local:<os user> ([operators] local_role).
    assert again.returncode == 1 and f"already answered by local:{getpass.getuser()}" in again.stderr
    assert json.loads(firebreak("escalations", "list", "--json", env=env).stdout) == []


def test_an_answer_that_is_not_an_option_is_refused_and_the_escalation_stays_open(database_url, write_script):
    waiting, env = _waiting_for_a_reviewer(database_url, write_script)
    (pending,) = waiting["escalations"]

    refused = firebreak("escalations", "answer", pending["id"], "maybe", env=env)

    assert refused.returncode == 1 and "use one of ['approve', 'reject']" in refused.stderr
    assert [row["status"] for row in json.loads(firebreak("escalations", "list", "--json", env=env).stdout)] == ["open"]


def test_labels_export_writes_every_human_answer_as_a_json_line(tmp_path, write_script):
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    waiting, env = _waiting_for_a_reviewer(database_url, write_script)
    env["FIREBREAK_SCRIPT"] = write_script({"text": "I did not cancel order 2."}, name="resume.jsonl")
    rejected = firebreak(
        "escalations", "answer", waiting["escalations"][0]["id"], "reject", "--note", "wrong order", env=env
    )
    assert rejected.returncode == 0, rejected.stderr

    exported = firebreak("labels", "export", "--format", "jsonl", "-o", str(tmp_path / "labels.jsonl"), env=env)

    assert exported.returncode == 0, exported.stderr
    (label,) = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert (
        label["label"] == "reject"
        and label["note"] == "wrong order"
        and label["labeled_by"] == f"local:{getpass.getuser()}"
    )
    assert label["input"]["context"]["target"] == "update_order" and label["latency_s"] >= 0


def test_eval_gate_reports_each_bands_accuracy_from_recorded_outcomes(tmp_path, write_script):
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    waiting, env = _waiting_for_a_reviewer(database_url, write_script)
    env["FIREBREAK_SCRIPT"] = write_script({"text": "Done."}, name="resume.jsonl")
    assert firebreak("escalations", "answer", waiting["escalations"][0]["id"], "approve", env=env).returncode == 0

    report = json.loads(firebreak("eval", "gate", "--json", env=env).stdout)

    human = next(band for band in report["bands"] if band["band"] == "human")
    assert human == {"band": "human", "range": "< 0.6", "decisions": 1, "with_outcome": 1, "right": 1, "accuracy": 1.0}
    assert report["thresholds"] == {"execute_above": 0.85, "confirm_above": 0.6}


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (["containment", "--dataset", "pairs.jsonl"], "--dataset"),
        (["gate", "--out", "reports"], "--out"),
        (["all", "--min-score", "0.5", "--config", "x.toml"], "--config, --min-score"),
    ],
)
def test_eval_refuses_an_option_its_suite_does_not_take_before_running_it(args, refused):
    result = firebreak("eval", *args, env={})

    assert result.returncode == 1
    assert result.stderr == f"error: eval {args[0]} takes no {refused} option\n"


@pytest.mark.slow
def test_eval_containment_json_passes_every_scenario_with_zero_overshoot_and_no_unapproved_write():
    result = subprocess.run(
        [FIREBREAK, "eval", "containment", "--json"], capture_output=True, text=True, timeout=600, check=False
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    scenarios = {scenario["name"]: scenario for scenario in report["scenarios"]}
    assert set(scenarios) == {
        "runaway_spend_one_request",
        "runaway_spend_two_workers_one_tenant",
        "production_mutation",
    }
    assert all(scenario["passed"] for scenario in scenarios.values())
    assert scenarios["runaway_spend_one_request"]["max_request_cost_usd"] <= 0.50
    assert scenarios["runaway_spend_one_request"]["overshoot_usd"] == 0
    assert scenarios["runaway_spend_two_workers_one_tenant"]["overshoot_usd"] == 0
    assert scenarios["production_mutation"]["unapproved_writes"] == 0


def test_eval_cache_runs_a_users_own_pairs_through_the_real_cache(tmp_path):
    pairs = [
        {"cached": "How do I reset my password?", "query": "how can I reset my password", "same": True},
        {"cached": "Cancel my order 1234", "query": "Don't cancel my order 1234", "same": False},
        {
            "cached": "How do I reset my password?",
            "query": "How do I reset my password?",
            "same": False,
            "cached_tenant": "acme",
            "tenant": "globex",
        },
    ]
    dataset = tmp_path / "mine.jsonl"
    dataset.write_text("".join(json.dumps(pair) + "\n" for pair in pairs))
    env = {"FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}"}

    result = firebreak("eval", "cache", "--dataset", str(dataset), "--json", env=env, timeout=300)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pairs"] == 3 and report["agrees_with_cache"]
    assert (report["default"]["tp"], report["default"]["fp"]) == (1, 0)
    assert report["cross_tenant"] == {"probes": 1, "hits": 0}
    assert report["kinds"] == {"paraphrase": 1, "unlabelled": 1, "other_tenant": 1}


def test_eval_cache_names_the_bad_line_of_a_users_file(tmp_path):
    dataset = tmp_path / "mine.jsonl"
    dataset.write_text('{"cached": "a", "query": "b", "same": true}\n{"cached": "a", "query": "b"}\n')

    result = firebreak("eval", "cache", "--dataset", str(dataset), env={}, timeout=300)

    assert result.returncode == 1
    assert f"{dataset}:2: missing fields ['same']" in result.stderr and "Traceback" not in result.stderr


def test_a_repeated_question_is_answered_from_the_cache_and_says_so(tmp_path, write_script):
    env = {
        "FIREBREAK_SCRIPT": write_script({"text": "Refunds take 5 business days."}),
        "FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}",
    }
    assert firebreak("ask", "--model", "scripted/demo", "What is your refund policy?", env=env).returncode == 0
    env["FIREBREAK_SCRIPT"] = write_script(name="no_replies.jsonl")  # a model call would now fail the run

    again = firebreak("ask", "--model", "scripted/demo", "what's your refund policy", env=env)

    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "Refunds take 5 business days."  # printed though no token was streamed
    assert (
        "cached (similarity 0.9" in again.stderr and "matched: \u201cWhat is your refund policy?\u201d" in again.stderr
    )


def test_cache_stats_and_invalidate_by_tenant(tmp_path, write_script):
    env = {
        "FIREBREAK_SCRIPT": write_script({"text": "Refunds take 5 business days."}),
        "FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}",
    }
    assert (
        firebreak(
            "ask", "--model", "scripted/demo", "--tenant", "acme", "--user", "ann", "Refunds?", env=env
        ).returncode
        == 0
    )

    stats = json.loads(firebreak("cache", "stats", "--json", env=env).stdout)
    answers = [row for row in stats if row["layer"] == "llm_response"]
    assert [(row["tenant_id"], row["entries"]) for row in answers] == [("acme", 1)]

    assert "removed 0 cache entries" in firebreak("cache", "invalidate", "--tenant", "globex", env=env).stdout
    assert (
        "removed 1 cache entry"
        in firebreak("cache", "invalidate", "--tenant", "acme", "--layer", "llm_response", env=env).stdout
    )
    refused = firebreak("cache", "invalidate", env=env)
    assert refused.returncode == 1 and "--all" in refused.stderr


def test_context_show_lists_a_threads_checkpoints_with_the_messages_they_replaced(tmp_path, write_script):
    script = write_script(
        {"repeat": True, "expect": "Summary:", "text": "The user asked about gardening."},
        {"repeat": True, "after": "user", "text": "Plant tomatoes after the last frost."},
    )
    env = {
        "FIREBREAK_SCRIPT": script,
        "FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}",
        "FIREBREAK_CACHE__ENABLED": "false",
        "FIREBREAK_CONTEXT__EVERY_TURNS": "2",
        "FIREBREAK_CONTEXT__KEEP_RECENT": "2",
        "FIREBREAK_CONTEXT__SUMMARY_MAX_TOKENS": "16",
    }
    questions = [
        "My order number is 4321; when should I plant tomatoes in a cold northern garden?",
        "And which fertiliser suits young tomato plants best in early summer?",
        "How often should I water them during a hot week?",
    ]
    for question in questions:
        asked = firebreak("ask", "--model", "scripted/demo", "--thread", "garden", question, env=env)
        assert asked.returncode == 0, asked.stderr

    shown = firebreak("context", "show", "garden", "--raw", env=env)

    assert shown.returncode == 0, shown.stderr
    assert "messages replaced" in shown.stdout and "The user asked about gardening." in shown.stdout
    assert "facts: order: 4321" in shown.stdout
    assert f"user: {questions[0]}" in shown.stdout  # the replaced turn, kept for audit


def test_plan_show_prints_each_plan_version_and_what_was_executed(tmp_path, write_script):
    env = {
        "FIREBREAK_SCRIPT": write_script(*seed_replan_script(items=["USB-C dock"])),
        "FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}",
        "FIREBREAK_FAULTS": json.dumps(PRICING_DOWN["faults"]),
        "FIREBREAK_TOOLS__TIMEOUTS_S": json.dumps(PRICING_DOWN["tools"]["timeouts_s"]),
    }
    asked = firebreak("ask", "--model", "scripted/demo", "--plan", "--json", "Price of the USB-C dock?", env=env)
    assert asked.returncode == 0, asked.stderr
    run_id = json.loads(asked.stdout)["run_id"]

    shown = firebreak("plan", "show", run_id, env=env)

    assert shown.returncode == 0, shown.stderr
    assert "plan v1 · planned by scripted/demo" in shown.stdout
    assert "plan v2 · patched by code after tool_failed (minor)" in shown.stdout
    assert "– s2 pricing_api(items=['USB-C dock'])" in shown.stdout
    assert "✓ s2b cached_prices(items=['USB-C dock'])" in shown.stdout
    assert "executed: sales_data ✓, pricing_api ✗, cached_prices ✓" in shown.stdout
    as_json = json.loads(firebreak("plan", "show", run_id, "--json", env=env).stdout)
    assert [v["version"] for v in as_json["versions"]] == [1, 2]


def test_team_runs_the_agents_on_a_ticket_and_trace_replay_shows_its_versions_in_order(tmp_path, write_script):
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    script = approving_team(write_script, database_url, "T-7", draft="Yes.")
    env = {"FIREBREAK_SCRIPT": script, "FIREBREAK_DATABASE_URL": database_url}

    asked = ("team", "--ticket", "T-7", "--model", "scripted/demo", "--json", "Answer the refund question")
    done = firebreak(*asked, env=env)

    assert done.returncode == 0, done.stderr
    team = json.loads(done.stdout)
    assert (team["verdict"], [member["role"] for member in team["runs"]]) == (
        "approved",
        ["research", "writer", "reviewer"],
    )
    replayed = firebreak("trace", "replay", team["runs"][0]["run_id"], env=env)
    assert replayed.returncode == 0, replayed.stderr
    lines = [line for line in replayed.stdout.splitlines() if line.startswith("ticket")]
    assert [line.split(" · ")[0] for line in lines] == ["ticket T-7 v2", "ticket T-7 v3"]
    assert "changed by writer (run" in lines[0] and "draft='Yes.'" in lines[0]
    assert "changed by reviewer (run" in lines[1] and "status='approved'" in lines[1]


def test_subscribers_in_separate_processes_carry_a_ticket_from_new_to_approved(tmp_path, write_script):
    from app.services import prepare_database
    from core.config import load_settings
    from memory.shared_state import EntityStore

    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    tickets = EntityStore(prepare_database(load_settings(database_url=database_url)))
    tickets.create("default", "ticket", "T-9", {"subject": "Order 42?"}, actor="intake", correlation_id="c-9")

    def change(version: int, changes: dict) -> dict:
        arguments = {"key": "T-9", "version": version, "changes": changes}
        return {"tool_calls": [{"name": "ticket_update", "arguments": arguments}]}

    steps = {
        "research": change(1, {"findings": "delivered"}),
        "writer": change(2, {"draft": "It was delivered."}),
        "reviewer": change(3, {"status": "approved"}),
    }
    for role, step in steps.items():  # one process per agent, each with its own script
        script = write_script(step, {"text": "0.95"}, {"text": "Done."}, name=f"{role}.jsonl")
        env = {"FIREBREAK_SCRIPT": script, "FIREBREAK_DATABASE_URL": database_url}
        done = firebreak("subscribe", role, "--until-idle", "--model", "scripted/demo", env=env)
        assert done.returncode == 0, done.stderr
        assert f"{role}: 1 event(s) handled" in done.stdout

    assert tickets.get("default", "ticket", "T-9").data["status"] == "approved"
    assert [e.actor.split(" ")[0] for e in tickets.changes_in("c-9")] == ["intake", "research", "writer", "reviewer"]


async def _answered_and_failed(settings: Settings) -> tuple[str, str]:
    """An answered run for tenant acme, then a failed one for globex; their run ids."""
    async with Agent.open(settings) as agent:
        paris = await agent.ask("Capital of France?", route="scripted/demo", tenant_id="acme")
        peru = await agent.ask("Capital of Peru?", route="scripted/demo", tenant_id="globex")
    assert (paris.status, peru.status) == ("answered", "failed")
    return paris.run_id, peru.run_id


@pytest.fixture
def two_runs(tmp_path, write_script, make_settings) -> tuple[dict[str, str], str, str]:
    """(the CLI's environment, the answered run's id, the failed run's id) on a fresh SQLite file."""
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    script = write_script({"text": "Paris."}, {"error": "bad_request"})
    paris, peru = run(_answered_and_failed(make_settings(database_url, script=script)))
    return {"FIREBREAK_DATABASE_URL": database_url}, paris, peru


def test_ops_json_reports_runs_errors_and_latency_per_route_and_release(two_runs):
    env, _, _ = two_runs
    shown = firebreak("ops", "--json", "--window-s", "3600", env=env)

    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    (route, every) = report["by_route"]
    assert (route["group"], route["runs"], route["errors"], route["error_rate"]) == ("scripted/demo", 2, 1, 0.5)
    assert route["latency_p95_s"] >= route["latency_p50_s"] > 0
    assert every["group"] == "all" and every["runs"] == 2
    assert [(row["group"], row["runs"]) for row in report["by_release"]] == [("base", 2), ("all", 2)]
    assert report["bucket_s"] == 150.0
    assert sum(row["runs"] for row in report["route_series"]) == 2
    assert report["escalations"] == {"open": 0, "by_type": {}, "oldest_wait_s": None}
    assert {(line["resource"], line["percent"] > 0) for line in report["budgets"]} >= {("tokens", True)}


def test_ops_prints_a_table_per_route_and_per_release(two_runs):
    env, _, _ = two_runs
    shown = firebreak("ops", env=env)

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.startswith("route ") and "p95" in line for line in lines)
    assert any(line.startswith("scripted/demo ") and " 50.0% " in line for line in lines)
    assert any(line.startswith("release ") for line in lines)
    assert "dead letters: 0" in lines and "breakers: closed 1" in lines and "escalations waiting: 0" in lines


def test_runs_lists_the_newest_runs_matching_status_route_release_and_tenant(two_runs):
    env, paris, peru = two_runs

    def listed(*filters: str) -> list[str]:
        shown = firebreak("runs", "--json", *filters, env=env)
        assert shown.returncode == 0, shown.stderr
        return [row["id"] for row in json.loads(shown.stdout)]

    assert listed("--status", "failed") == [peru]
    assert listed("--tenant", "acme", "--route", "scripted/demo", "--release", "base") == [paris]
    text = firebreak("runs", "--tenant", "acme", env=env).stdout
    assert text.startswith(f"{paris}  answered") and "'Capital of France?'" in text
