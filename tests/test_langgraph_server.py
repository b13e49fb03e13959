"""LangGraph Server serves Firebreak: `langgraph dev` started on langgraph.json, driven over its HTTP API.

Each test starts the real server (the in-memory runtime) on 127.0.0.1 with the scripted model and a SQLite
database of its own, creates a thread, runs it as Agent Chat UI would (``{"messages": [...]}``), and reads both
the server's answer and Firebreak's own records: the server runs Firebreak's guarded runs, not a side door.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ScriptWriter, order_2, stop
from entry_paths import Deployment, free_port
from langgraph_cli.config import validate_config_file
from sqlmodel import Session, select

from graph.server import graph as served
from memory.checkpointer import checkpoint_path
from memory.engine import make_engine
from memory.tables import Escalation, OperatorAction, Run

ROOT = Path(__file__).resolve().parent.parent
LANGGRAPH = str(Path(sys.executable).parent / "langgraph")
STARTUP_S = 120.0
CANCEL_ORDER_2 = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]}
LOW_SCORE = {"text": "0.40"}  # below the gate's confirm threshold: a reviewer decides


@contextmanager
def langgraph_dev(where: Deployment, script: str) -> Iterator[httpx.Client]:
    """`langgraph dev` on the repository's langgraph.json, answering on a free local port, until the block ends."""
    port = free_port()
    env = {
        **os.environ,
        "FIREBREAK_CONFIG": str(where.config_file()),
        "FIREBREAK_DATABASE_URL": where.database_url,
        "FIREBREAK_SCRIPT": script,
        "PYTHONPATH": str(ROOT),  # this tree's graph.server, whatever the environment has installed
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }
    args = [LANGGRAPH, "dev", "--config", str(ROOT / "langgraph.json"), "--host", "127.0.0.1", "--port", str(port)]
    # Firebreak's stores are synchronous: the in-memory runtime's blocking-call detector would refuse them.
    args += ["--no-browser", "--no-reload", "--allow-blocking"]
    log = where.folder / "langgraph-dev.log"
    with log.open("w") as out:
        # Its own folder: the in-memory runtime keeps its threads in ./.langgraph_api.
        server = subprocess.Popen(args, cwd=where.folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        _wait_until_up(client, server, log)
        yield client
    finally:
        stop(server)


def _wait_until_up(client: httpx.Client, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"langgraph dev exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if client.get("/ok").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"langgraph dev did not answer in {STARTUP_S:g}s:\n{log.read_text()[-4000:]}")


def run_thread(client: httpx.Client, thread_id: str, **body: Any) -> dict[str, Any]:
    """One run of the thread, waited for: the thread's values when it ends or pauses."""
    response = client.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "firebreak", **body})
    response.raise_for_status()
    return dict(response.json())


def ask(client: httpx.Client, thread_id: str, question: str) -> dict[str, Any]:
    return run_thread(client, thread_id, input={"messages": [{"role": "user", "content": question}]})


def new_thread(client: httpx.Client) -> str:
    response = client.post("/threads", json={})
    response.raise_for_status()
    return str(response.json()["thread_id"])


def last_reply(values: dict[str, Any]) -> str:
    return str(values["messages"][-1]["content"])


def rows(database_url: str, table: type[Any], thread_id: str) -> list[Any]:
    """Firebreak's rows of ``table`` (runs, escalations) for one thread, oldest first."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            found = session.exec(select(table).where(table.thread_id == thread_id).order_by(table.created_at))
            return list(found)
    finally:
        engine.dispose()


def firebreak_checkpoint_namespaces(database_url: str, thread_id: str) -> list[str]:
    """The namespaces of the thread's checkpoints in Firebreak's own checkpointer ("" is a root graph's)."""
    with closing(sqlite3.connect(checkpoint_path(database_url))) as db:
        found = db.execute("SELECT DISTINCT checkpoint_ns FROM checkpoints WHERE thread_id = ?", (thread_id,))
        return [namespace for (namespace,) in found]


def where(tmp_path: Path, **overrides: Any) -> Deployment:
    # A guarded run needs no semantic cache here: without it the server loads no embedding model.
    return Deployment(f"sqlite:///{tmp_path / 'firebreak.db'}", tmp_path, {"cache": {"enabled": False}, **overrides})


def test_langgraph_json_names_the_outer_graph_over_the_agent() -> None:
    config = validate_config_file(ROOT / "langgraph.json")

    assert config["graphs"] == {"firebreak": "graph.server:graph"}
    assert set(served.get_graph().nodes) == {"__start__", "ask", "review", "__end__"}


@pytest.mark.slow
def test_a_chat_message_sent_to_the_server_is_answered_by_a_recorded_firebreak_run(
    tmp_path: Path, write_script: ScriptWriter
) -> None:
    deployment = where(tmp_path)
    with langgraph_dev(deployment, write_script({"text": "Paris is the capital of France."})) as client:
        thread_id = new_thread(client)

        values = ask(client, thread_id, "What is the capital of France?")

    assert last_reply(values) == "Paris is the capital of France."
    (run,) = rows(deployment.database_url, Run, thread_id)
    assert (run.status, run.question, run.answer) == ("answered", "What is the capital of France?", last_reply(values))
    assert (run.tenant_id, run.user_id) == ("default", "local")


@pytest.mark.slow
def test_a_low_confidence_write_stops_the_server_thread_at_an_interrupt_with_an_escalation_row(
    tmp_path: Path, write_script: ScriptWriter
) -> None:
    deployment = where(tmp_path)
    with langgraph_dev(deployment, write_script(CANCEL_ORDER_2, LOW_SCORE)) as client:
        thread_id = new_thread(client)

        values = ask(client, thread_id, "Please cancel order 2.")
        state = client.get(f"/threads/{thread_id}/state").json()

    (escalation,) = rows(deployment.database_url, Escalation, thread_id)
    (pause,) = values["__interrupt__"]
    assert (escalation.status, escalation.trigger) == ("open", "low_confidence")
    assert pause["value"]["escalation_ids"] == [escalation.id]
    assert pause["value"]["action_requests"][0]["name"] == "update_order"
    assert state["next"] == ["review"]
    assert order_2(deployment.database_url) == ("pending", [])
    # The paused run lives in Firebreak's durable checkpointer, as a root graph, not in the server's.
    assert firebreak_checkpoint_namespaces(deployment.database_url, thread_id) == [""]


@pytest.mark.slow
def test_resuming_the_server_thread_with_approval_finishes_the_run_and_makes_the_write_once(
    tmp_path: Path, write_script: ScriptWriter
) -> None:
    deployment = where(tmp_path)
    script = write_script(CANCEL_ORDER_2, LOW_SCORE, {"text": "Order 2 is cancelled."})
    with langgraph_dev(deployment, script) as client:
        thread_id = new_thread(client)
        ask(client, thread_id, "Please cancel order 2.")

        values = run_thread(client, thread_id, command={"resume": {"decisions": [{"type": "approve"}]}})

    assert last_reply(values) == "Order 2 is cancelled."
    assert "__interrupt__" not in values
    (run,) = rows(deployment.database_url, Run, thread_id)
    (escalation,) = rows(deployment.database_url, Escalation, thread_id)
    assert (run.status, escalation.status, escalation.answer) == ("answered", "answered", "approve")
    assert escalation.answered_by == "local:langgraph"  # `langgraph dev` has no auth: the person at this machine
    status, writes = order_2(deployment.database_url)
    assert status == "cancelled" and len(writes) == 1


@pytest.mark.slow
def test_resuming_the_server_thread_with_a_rejection_ends_the_run_without_the_write(
    tmp_path: Path, write_script: ScriptWriter
) -> None:
    deployment = where(tmp_path)
    script = write_script(CANCEL_ORDER_2, LOW_SCORE, {"text": "I did not cancel order 2."})
    with langgraph_dev(deployment, script) as client:
        thread_id = new_thread(client)
        ask(client, thread_id, "Please cancel order 2.")

        rejection = {"decisions": [{"type": "reject", "message": "Order 2 must stay open."}]}
        values = run_thread(client, thread_id, command={"resume": rejection})

    assert last_reply(values) == "I did not cancel order 2."
    (escalation,) = rows(deployment.database_url, Escalation, thread_id)
    assert (escalation.status, escalation.answer, escalation.note) == ("answered", "reject", "Order 2 must stay open.")
    assert order_2(deployment.database_url) == ("pending", [])


@pytest.mark.slow
def test_a_run_names_its_tenant_and_user_in_the_run_config(tmp_path: Path, write_script: ScriptWriter) -> None:
    deployment = where(tmp_path)
    with langgraph_dev(deployment, write_script({"text": "Hello, Ada."})) as client:
        thread_id = new_thread(client)
        who = {"configurable": {"tenant_id": "acme", "user_id": "ada"}}

        run_thread(client, thread_id, input={"messages": [{"role": "user", "content": "Hi"}]}, config=who)

    (run,) = rows(deployment.database_url, Run, thread_id)
    assert (run.tenant_id, run.user_id, run.status) == ("acme", "ada", "answered")


@pytest.mark.slow
def test_an_approval_from_someone_without_an_operator_role_is_refused_audited_and_changes_nothing(
    tmp_path: Path, write_script: ScriptWriter
) -> None:
    deployment = where(tmp_path, operators={"local_role": ""})  # nobody acts without a token
    with langgraph_dev(deployment, write_script(CANCEL_ORDER_2, LOW_SCORE)) as client:
        thread_id = new_thread(client)
        ask(client, thread_id, "Please cancel order 2.")

        refused = client.post(
            f"/threads/{thread_id}/runs/wait",
            json={"assistant_id": "firebreak", "command": {"resume": "approve"}},
        )
        state = client.get(f"/threads/{thread_id}/state").json()

    assert refused.json()["__error__"]["error"] == "OperatorRefused"
    assert state["next"] == ["review"]  # still waiting: someone with the role may resume it
    (escalation,) = rows(deployment.database_url, Escalation, thread_id)
    assert escalation.status == "open"
    assert order_2(deployment.database_url) == ("pending", [])
    engine = make_engine(deployment.database_url)
    with Session(engine) as session:
        (action,) = session.exec(select(OperatorAction)).all()
    engine.dispose()
    assert (action.via, action.allowed, action.target) == ("langgraph", False, escalation.id)


@pytest.mark.slow
def test_a_new_message_on_a_thread_waiting_for_a_reviewer_is_told_so_and_the_thread_keeps_waiting(
    tmp_path: Path, write_script: ScriptWriter
) -> None:
    deployment = where(tmp_path)
    with langgraph_dev(deployment, write_script(CANCEL_ORDER_2, LOW_SCORE)) as client:
        thread_id = new_thread(client)
        first = ask(client, thread_id, "Please cancel order 2.")

        values = ask(client, thread_id, "Are you there?")

    assert "waiting for a reviewer" in last_reply(values)
    assert values["__interrupt__"][0]["value"] == first["__interrupt__"][0]["value"]
    assert [run.status for run in rows(deployment.database_url, Run, thread_id)] == ["waiting"]
