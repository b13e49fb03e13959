"""README's "Fitting your stack": each door's example, run as written.

Every block is read from README.md, not copied: the Python blocks run in a fresh interpreter, the shell lines
run as commands in a folder of the test's own (with ``.venv`` linked there, so ``.venv/bin/...`` means what it
means in a checkout), on a fresh SQLite file and the scripted model. The test adds only what a reader would
replace: a free port, the test's database, its operator token and the path of this checkout.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import stop
from entry_paths import free_port
from mcp import Client, StdioServerParameters
from test_langgraph_server import _wait_until_up, last_reply

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTION = "Fitting your stack"
OPERATOR_TOKEN = "doors-token-only-for-this-test"


def blocks(subsection: str, language: str) -> list[str]:
    """The ``language`` code blocks of one ``### subsection`` of the section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"\n## {SECTION}\n", 1)[1].split("\n## ", 1)[0]
    body = section.split(f"\n### {subsection}\n", 1)[1].split("\n### ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", body, flags=re.DOTALL)


def command_line(subsection: str) -> list[str]:
    """The one shell command of a subsection, as argv (its comment dropped)."""
    (block,) = blocks(subsection, "bash")
    (line,) = [line for line in block.splitlines() if line.strip()]
    return shlex.split(line, comments=True)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where a reader would stand: ``.venv/`` resolves to this checkout's virtualenv."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    return tmp_path


def scripted_env(folder: Path, script: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of every example: the folder's database, the scripted model on the chat route."""
    env = {
        **os.environ,
        "FIREBREAK_DATABASE_URL": f"sqlite:///{folder / 'fb.db'}",
        "FIREBREAK_ROUTES__CHAT__MODELS": json.dumps(["scripted/demo"]),
        **extra,
    }
    for leaked in ("FIREBREAK_SCRIPT", "FIREBREAK_CONFIG", "FIREBREAK_OPERATOR_TOKEN"):
        if leaked not in extra:
            env.pop(leaked, None)
    if script is not None:
        env["FIREBREAK_SCRIPT"] = script
    return env


def run(argv: list[str], folder: Path, env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def config_file(folder: Path, subsection: str, name: str = "my.toml") -> Path:
    """The subsection's toml blocks, written to one config file."""
    path = folder / name
    path.write_text("\n".join(blocks(subsection, "toml")), encoding="utf-8")
    return path


# --- LangChain tools ------------------------------------------------------------------------------------------------


def test_the_langchain_example_gives_the_agent_a_langchain_tool_configured_as_a_read(folder, write_script):
    (code,) = blocks("LangChain tools", "python")
    # A read: no self-critique of the gate between the call and the answer (a write would need one more reply).
    script = write_script(
        {"tool_calls": [{"name": "weather", "arguments": {"city": "Lyon"}}]},
        {"expect": "Sunny and 21 °C in Lyon", "text": "No umbrella: it is sunny in Lyon."},
    )
    env = scripted_env(folder, script, FIREBREAK_CONFIG=str(config_file(folder, "LangChain tools")))

    assert run([sys.executable, "-c", code], folder, env).strip() == "No umbrella: it is sunny in Lyon."


# --- MCP tool servers -----------------------------------------------------------------------------------------------


def test_the_mcp_example_serves_its_tool_to_firebreak_ask_as_server__tool(folder, write_script):
    (server,) = blocks("MCP tool servers", "python")
    argv = command_line("MCP tool servers")
    config = folder / argv[argv.index("--config") + 1]
    config.write_text("\n".join(blocks("MCP tool servers", "toml")), encoding="utf-8")
    (named,) = tomllib.loads(config.read_text(encoding="utf-8"))["mcp"]["servers"].values()
    (folder / named["command"][-1]).write_text(server, encoding="utf-8")
    script = write_script(
        {"tool_calls": [{"name": "shop__price", "arguments": {"sku": "dock"}}]},
        {"expect": "dock: 129 EUR", "text": "A dock costs 129 EUR."},
    )

    assert run(argv, folder, scripted_env(folder, script)).strip() == "A dock costs 129 EUR."


# --- Firebreak as an MCP server -------------------------------------------------------------------------------------


def test_the_mcp_client_config_starts_a_server_whose_runs_tool_lists_the_recorded_run(folder, write_script):
    (block,) = blocks("Firebreak as an MCP server", "json")
    config = folder / "operators.toml"
    digest = hashlib.sha256(OPERATOR_TOKEN.encode()).hexdigest()
    config.write_text(
        f'[operators]\nlocal_role = ""\n[operators.people.ops]\nrole = "operator"\ntoken_sha256 = "{digest}"\n',
        encoding="utf-8",
    )
    # The folder stands for the reader's checkout: `firebreak ask` there records its run in ./var/firebreak.db.
    ask_env = scripted_env(folder, write_script({"text": "Paris."}))
    del ask_env["FIREBREAK_DATABASE_URL"]
    argv = [str(folder / ".venv/bin/firebreak"), "ask", "--json", "What is the capital of France?"]
    asked = json.loads(run(argv, folder, ask_env))
    # What the reader fills in: the checkout's path and their token; their config names the operator.
    filled = json.loads(block.replace("/path/to/firebreak", str(folder)))["mcpServers"]["firebreak"]
    placeholder = "<token from firebreak operators add>"
    env = {key: value.replace(placeholder, OPERATOR_TOKEN) for key, value in filled["env"].items()}
    (folder / "client").mkdir()  # a client starts its servers in a folder of its own
    server = StdioServerParameters(
        command=filled["command"],
        args=filled["args"],
        env={**env, "FIREBREAK_CONFIG": str(config)},
        cwd=folder / "client",
    )

    async def session() -> tuple[set[str], Any]:
        async with Client(server) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            return tools, (await client.call_tool("runs", {})).structured_content

    tools, runs = asyncio.run(session())

    assert "runs" in tools
    assert [(run["id"], run["status"]) for run in runs["runs"]] == [(asked["run_id"], "answered")]


# --- LangGraph Server -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_langgraph_dev_line_serves_the_agent_to_an_http_client(folder, write_script):
    (folder / "langgraph.json").symlink_to(ROOT / "langgraph.json")
    port = free_port()
    # Added: a free port, and no file watcher (the server's own reloader would watch the linked virtualenv).
    argv = [*command_line("LangGraph Server, Studio and Agent Chat UI"), "--port", str(port), "--no-reload"]
    env = scripted_env(
        folder,
        write_script({"text": "Paris is the capital of France."}),
        FIREBREAK_CACHE__ENABLED="false",  # no embedding model to load in the server
        LANGSMITH_TRACING="false",
        LANGGRAPH_CLI_NO_ANALYTICS="1",
    )
    log = folder / "langgraph-dev.log"
    with log.open("w") as out:
        server = subprocess.Popen(argv, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            _wait_until_up(client, server, log)
            thread_id = client.post("/threads", json={}).raise_for_status().json()["thread_id"]
            question = {"messages": [{"role": "user", "content": "What is the capital of France?"}]}
            answered = client.post(
                f"/threads/{thread_id}/runs/wait", json={"assistant_id": "firebreak", "input": question}
            )
    finally:
        stop(server)

    assert last_reply(answered.raise_for_status().json()) == "Paris is the capital of France."


# --- Metrics --------------------------------------------------------------------------------------------------------


def test_the_metrics_example_scrapes_the_run_it_just_made(folder, write_script):
    (code,) = blocks("Metrics", "python")
    config = config_file(folder, "Metrics")
    assert tomllib.loads(config.read_text(encoding="utf-8"))["telemetry"]["prometheus_port"] > 0
    env = scripted_env(
        folder,
        write_script({"text": "Paris."}),
        FIREBREAK_CONFIG=str(config),
        FIREBREAK_TELEMETRY__PROMETHEUS_PORT=str(free_port()),  # the README's port may be taken here
    )

    (line,) = ast.literal_eval(run([sys.executable, "-c", code], folder, env))  # the example prints a list of lines

    assert line.startswith("firebreak_runs_total{") and 'firebreak_status="answered"' in line
    assert line.endswith(" 1.0")
