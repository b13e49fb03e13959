"""The README's extension examples, run exactly as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
FIREBREAK = str(Path(sys.executable).with_name("firebreak"))


def python_blocks(section: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)


def my_tools_env(tmp_path: Path, script: str, **extra: str) -> dict[str, str]:
    """The environment of a user who saved the README's tool as my_tools.py in ``tmp_path`` and registered it."""
    return {
        **os.environ,
        "FIREBREAK_SCRIPT": script,
        "FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}",
        "FIREBREAK_ROUTES__CHAT__MODELS": json.dumps(["scripted/demo"]),
        "FIREBREAK_TOOLS__MODULES": json.dumps(["examples.support_desk.tools", "my_tools"]),
        **extra,
    }


def saved_examples(tmp_path: Path) -> str:
    """Save the README's tool and graph modules where a user would, beside firebreak.toml; the Python API block."""
    tool_block, graph_block, api_block = python_blocks("Extend Firebreak")
    (tmp_path / "my_tools.py").write_text(tool_block, encoding="utf-8")
    (tmp_path / "my_graph.py").write_text(graph_block, encoding="utf-8")
    return api_block


EXCHANGE_RATE_SCRIPT = (
    {"tool_calls": [{"name": "exchange_rate", "arguments": {"currency": "eur"}}]},
    {
        "expect": "String should match pattern",
        "tool_calls": [{"name": "exchange_rate", "arguments": {"currency": "EUR"}}],
    },
    {"expect": "0.92", "text": "1 USD is 0.92 EUR."},
)


def test_the_tool_and_node_examples_work_together_in_python(tmp_path, write_script):
    api_block = saved_examples(tmp_path)
    env = my_tools_env(tmp_path, write_script(*EXCHANGE_RATE_SCRIPT))

    done = subprocess.run(
        [sys.executable, "-c", api_block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1 USD is 0.92 EUR. (automated answer)"


def test_the_configured_graph_answers_through_the_firebreak_command(tmp_path, write_script):
    saved_examples(tmp_path)
    env = my_tools_env(tmp_path, write_script(*EXCHANGE_RATE_SCRIPT), FIREBREAK_AGENT__GRAPH="my_graph:builder")

    done = subprocess.run(
        [FIREBREAK, "ask", "--json", "What is the USD to EUR rate?"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"] == "1 USD is 0.92 EUR. (automated answer)"


def test_the_configured_graph_answers_through_the_queue_and_its_worker(tmp_path, write_script):
    saved_examples(tmp_path)
    env = my_tools_env(tmp_path, write_script(*EXCHANGE_RATE_SCRIPT), FIREBREAK_AGENT__GRAPH="my_graph:builder")

    def firebreak(*args: str) -> str:
        done = subprocess.run([FIREBREAK, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run_id = firebreak("submit", "What is the USD to EUR rate?").strip()
    firebreak("worker", "--until-idle")

    [run] = [row for row in json.loads(firebreak("runs", "--json")) if row["id"] == run_id]
    assert (run["status"], run["answer"]) == ("answered", "1 USD is 0.92 EUR. (automated answer)")


def test_the_firebreak_command_finds_the_tool_module_in_the_directory_it_runs_in(tmp_path, write_script):
    saved_examples(tmp_path)
    script = write_script(
        {"tool_calls": [{"name": "exchange_rate", "arguments": {"currency": "GBP"}}]},
        {"expect": "0.79", "text": "1 USD is 0.79 GBP."},
    )
    env = my_tools_env(tmp_path, script)
    command = [FIREBREAK, "ask", "--json", "What is a dollar in pounds?"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"] == "1 USD is 0.79 GBP."


# --- the Python API: one example per door, each run as written on a fresh SQLite file ----------------------------
ASK, TOOLS, CONSOLE, ESCALATION, CANARY, QUEUE = python_blocks("Python API")
CANCEL_ORDER_2 = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]}


def run_example(block: str, tmp_path: Path, script: str | None = None, config: Path | None = None) -> str:
    """Run one README block in a fresh interpreter on the test's database; its stdout."""
    env = {
        **os.environ,
        "FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}",
        "FIREBREAK_ROUTES__CHAT__MODELS": json.dumps(["scripted/demo"]),
    }
    for leaked in ("FIREBREAK_SCRIPT", "FIREBREAK_CONFIG", "FIREBREAK_OPERATOR_TOKEN"):
        env.pop(leaked, None)
    if script is not None:
        env["FIREBREAK_SCRIPT"] = script
    if config is not None:
        env["FIREBREAK_CONFIG"] = str(config)
    done = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_ask_example_answers_and_the_console_example_reads_that_run_back(tmp_path, write_script):
    asked = run_example(ASK, tmp_path, write_script({"text": "Paris."}))
    read = run_example(CONSOLE, tmp_path).splitlines()

    assert asked.strip() == "answered Paris."
    assert read[0] == "answered What is the capital of France?"
    assert any("invoke_agent" in line for line in read)
    assert read[-1] == "0 runs need an operator"


def test_the_tools_example_gives_the_agent_a_python_tool(tmp_path, write_script):
    script = write_script(
        {"tool_calls": [{"name": "order_status", "arguments": {"order_id": 7}}]},
        {"expect": "shipped", "text": "Order 7 has shipped."},
    )

    assert run_example(TOOLS, tmp_path, script).strip() == "Order 7 has shipped."


def test_the_escalation_example_approves_the_waiting_write_and_the_run_resumes(tmp_path, write_script):
    script = write_script(CANCEL_ORDER_2, {"text": "0.4"}, {"text": "Order 2 is cancelled."})

    assert run_example(ESCALATION, tmp_path, script).strip() == "waiting answered Order 2 is cancelled."


def test_the_canary_example_starts_a_release_at_the_first_step_and_rolls_it_back(tmp_path):
    config = tmp_path / "my.toml"
    config.write_text('[releases.v2]\nroute = "scripted/v2"\nsystem_prompt = "Version two."\n', encoding="utf-8")

    assert run_example(CANARY, tmp_path, config=config).splitlines() == ["1.0 % of users on v2", "rolled_back"]


def test_the_queue_example_submits_a_question_and_a_worker_answers_it(tmp_path, write_script):
    assert run_example(QUEUE, tmp_path, write_script({"text": "Paris."})).strip() == "True"
