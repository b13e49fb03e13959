"""``firebreak mcp serve`` (issue 20, item 2): Firebreak's own operator views as a read-only MCP server.

The server is a real ``firebreak`` process, over stdio and over streamable HTTP on a free loopback port, and
the official SDK's client talks to it. The database is a real SQLite file with real rows: an answered run of
tenant acme (two tool calls: spans, breakers, budget use) and a run of tenant globex waiting for a reviewer
(an open escalation, a run that needs an operator), both made by ``firebreak ask`` on the scripted model.
What the server shows is compared with what the CLI prints for the same views: one implementation, two faces.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from entry_paths import free_port
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult

FIREBREAK = str(Path(sys.executable).parent / "firebreak")
ADMIN_TOKEN = "admin-token-only-for-these-tests"
ACME_TOKEN = "acme-token-only-for-these-tests"
VIEWS = {"runs", "trace", "breakers", "budgets", "escalations_waiting", "dead_letters"}
T = TypeVar("T")
Session = Callable[[Client], Awaitable[T]]


@dataclass(frozen=True)
class Deployment:
    """A database with real rows, the config naming its operators, and the runs ``firebreak ask`` made."""

    database: Path
    config: Path
    answered: dict[str, Any]
    waiting: dict[str, Any]

    def env(self, token: str | None = ADMIN_TOKEN) -> dict[str, str]:
        env = {**os.environ, "FIREBREAK_DATABASE_URL": f"sqlite:///{self.database}"}
        env.pop("FIREBREAK_OPERATOR_TOKEN", None)
        return env if token is None else {**env, "FIREBREAK_OPERATOR_TOKEN": token}

    def cli(self, *args: str) -> Any:
        """What ``firebreak ARGS --json`` prints, as the admin operator."""
        done = subprocess.run(
            [FIREBREAK, *args, "--config", str(self.config), "--json"],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def _ask(env: dict[str, str], script: Path, tenant: str, question: str) -> dict[str, Any]:
    asked = subprocess.run(
        [FIREBREAK, "ask", "--model", "scripted/demo", "--tenant", tenant, "--json", question],
        env={**env, "FIREBREAK_SCRIPT": str(script)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert asked.returncode in (0, 3), asked.stderr  # 3: waiting for a person
    result: dict[str, Any] = json.loads(asked.stdout)
    return result


def _script(path: Path, *replies: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(reply) + "\n" for reply in replies), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    folder = tmp_path_factory.mktemp("mcp-serve")
    config = folder / "operators.toml"
    admin, acme = (hashlib.sha256(token.encode()).hexdigest() for token in (ADMIN_TOKEN, ACME_TOKEN))
    config.write_text(
        '[operators]\nlocal_role = ""\n'  # nobody reads without a token, even at this machine
        f'[operators.people.root]\nrole = "admin"\ntoken_sha256 = "{admin}"\n'
        f'[operators.people.ann]\nrole = "reviewer"\ntoken_sha256 = "{acme}"\ntenants = ["acme"]\n',
        encoding="utf-8",
    )
    draft = Deployment(folder / "firebreak.db", config, {}, {})
    lookup = _script(
        folder / "answer.jsonl",
        {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 1234}}]},
        {"tool_calls": [{"name": "knowledge_search", "arguments": {"query": "refund"}}]},
        {"text": "Order 1234 is pending; refunds take 5 business days."},
    )
    cancel = _script(
        folder / "cancel.jsonl",
        {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]},
        {"text": "0.4"},  # the self-critique's score: too low to write without a reviewer
    )
    answered = _ask(draft.env(None), lookup, "acme", "Where is order 1234?")
    waiting = _ask(draft.env(None), cancel, "globex", "Cancel order 2")
    assert (answered["status"], waiting["status"]) == ("answered", "waiting")
    return Deployment(draft.database, config, answered, waiting)


def over_stdio(deployment: Deployment, session: Session[T], *, token: str | None = ADMIN_TOKEN) -> T:
    """Start ``firebreak mcp serve`` as the client's child process and run ``session`` against it."""
    server = StdioServerParameters(
        command=FIREBREAK, args=["mcp", "serve", "--config", str(deployment.config)], env=deployment.env(token)
    )

    async def main() -> T:
        async with Client(server) as client:
            return await session(client)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def http_server(deployment: Deployment) -> Iterator[str]:
    """``firebreak mcp serve --http`` on a free loopback port, started with no operator token of its own."""
    port = free_port()
    command = [FIREBREAK, "mcp", "serve", "--http", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--config", str(deployment.config)],
        env=deployment.env(None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 90
        while not _asks_for_a_token(url):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the MCP server did not start listening"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _asks_for_a_token(url: str) -> bool:
    try:
        return httpx2.post(url, json={}).status_code == 401
    except httpx2.TransportError:  # not listening yet
        return False


def over_http(url: str, session: Session[T], *, token: str = ADMIN_TOKEN) -> T:
    """Connect to the HTTP server with ``token`` as the bearer token and run ``session``."""

    async def main() -> T:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            return await session(client)

    return asyncio.run(main())


def content(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def refusal(result: CallToolResult) -> str:
    assert result.is_error and result.structured_content is None
    return " ".join(getattr(part, "text", "") for part in result.content)


def calls(*named: tuple[str, dict[str, Any]]) -> Session[list[CallToolResult]]:
    """A session that calls each named tool in turn and returns the results."""

    async def session(client: Client) -> list[CallToolResult]:
        return [await client.call_tool(name, arguments) for name, arguments in named]

    return session


def every_view(run_id: str) -> Session[list[CallToolResult]]:
    return calls(
        ("runs", {}),
        ("trace", {"run_id": run_id}),
        ("breakers", {}),
        ("budgets", {}),
        ("escalations_waiting", {}),
        ("dead_letters", {}),
    )


# --- What the server offers ----------------------------------------------------------------------------------------


def test_the_server_offers_exactly_the_operator_views_each_marked_read_only(deployment):
    async def session(client: Client) -> Any:
        return (await client.list_tools()).tools

    tools = over_stdio(deployment, session)

    assert {tool.name for tool in tools} == VIEWS
    for tool in tools:
        assert tool.annotations is not None and tool.description
        assert (tool.annotations.read_only_hint, tool.annotations.destructive_hint) == (True, False), tool.name


def test_calling_every_view_changes_nothing_in_the_database(deployment):
    def dump() -> list[str]:
        with sqlite3.connect(deployment.database) as connection:
            return list(connection.iterdump())

    async def session(client: Client) -> tuple[list[str], list[CallToolResult], list[str]]:
        before = dump()  # the server is up: whatever starting it did is done
        results = await every_view(deployment.answered["run_id"])(client)
        return before, results, dump()

    before, results, after = over_stdio(deployment, session)

    assert [result.is_error for result in results] == [False] * len(VIEWS)
    assert len(before) > 100 and after == before


# --- The views, over stdio, as the CLI shows them -----------------------------------------------------------------


def test_runs_lists_the_recorded_runs_as_firebreak_runs_does(deployment):
    [result] = over_stdio(deployment, calls(("runs", {})))

    runs = content(result)["runs"]
    assert {(run["id"], run["status"], run["tenant_id"]) for run in runs} == {
        (deployment.answered["run_id"], "answered", "acme"),
        (deployment.waiting["run_id"], "waiting", "globex"),
    }
    assert runs == deployment.cli("runs")


def test_runs_filters_by_status(deployment):
    [result] = over_stdio(deployment, calls(("runs", {"status": "waiting"})))

    assert [run["id"] for run in content(result)["runs"]] == [deployment.waiting["run_id"]]


def test_trace_is_the_runs_span_tree_with_its_model_and_tool_calls(deployment):
    run_id = deployment.answered["run_id"]
    [result] = over_stdio(deployment, calls(("trace", {"run_id": run_id})))

    trace = content(result)
    names = [span["name"] for span in trace["spans"]]
    assert trace["trace_id"] == deployment.answered["trace_id"] and trace["status"] == "answered"
    assert (names[0], trace["spans"][0]["depth"]) == ("invoke_agent firebreak", 0)
    assert names.count("chat scripted/demo") == 3
    assert {"execute_tool sql_lookup", "execute_tool knowledge_search"} <= set(names)
    assert all(span["depth"] > 0 for span in trace["spans"][1:])
    assert len(trace["tree"].splitlines()) == len(names)
    assert {span["span_id"] for span in trace["spans"]} == {
        span["span_id"] for span in deployment.cli("trace", "show", run_id)["spans"]
    }


def test_trace_of_an_unknown_run_is_a_one_line_error(deployment):
    [result] = over_stdio(deployment, calls(("trace", {"run_id": "no-such-run"})))

    assert refusal(result) == "Error executing tool trace: no run 'no-such-run' in this database"


def test_breakers_show_every_backend_the_runs_used_as_firebreak_breakers_does(deployment):
    [result] = over_stdio(deployment, calls(("breakers", {})))

    breakers = content(result)["breakers"]
    states = {breaker["name"]: breaker["state"] for breaker in breakers}
    assert {"model:scripted/demo", "tool:sql_lookup", "tool:knowledge_search"} <= set(states)
    assert states == {row["name"]: row["state"] for row in deployment.cli("breakers")}
    assert all(breaker["probe_in_s"] is None for breaker in breakers if breaker["state"] == "closed")


def test_budgets_show_a_tenant_days_use_against_its_caps_as_firebreak_budgets_does(deployment):
    [result] = over_stdio(deployment, calls(("budgets", {"scope": "day:acme"})))

    lines = content(result)["budgets"]
    used = {line["resource"]: line for line in lines}
    assert used["tool_calls"]["used"] == 2 and used["tool_calls"]["limit"] == 500
    assert used["tool_calls"]["percent"] == pytest.approx(0.4)
    assert used["tokens"]["used"] > 0
    shown_by_cli = deployment.cli("budgets", "--scope", "day:acme")
    assert [{key: line[key] for key in shown_by_cli[0]} for line in lines] == shown_by_cli


def test_the_run_waiting_for_a_reviewer_is_in_escalations_waiting_and_dead_letters(deployment):
    waiting_run = deployment.waiting["run_id"]
    escalations, letters = over_stdio(deployment, calls(("escalations_waiting", {}), ("dead_letters", {})))

    [escalation] = content(escalations)["escalations"]
    assert (escalation["run_id"], escalation["status"], escalation["tenant_id"]) == (waiting_run, "open", "globex")
    assert escalation["waited_s"] > 0
    items = content(letters)["items"]
    assert [(item["target"], item["action"]) for item in items] == [(waiting_run, "escalation")]
    assert items == deployment.cli("dlq", "list")


# --- Operator auth ---------------------------------------------------------------------------------------------------


def serve_stdio_alone(deployment: Deployment, token: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIREBREAK, "mcp", "serve", "--config", str(deployment.config)],
        env=deployment.env(token),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_stdio_with_a_wrong_operator_token_ends_before_it_serves(deployment):
    done = serve_stdio_alone(deployment, "not-an-operators-token")

    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == (
        "error: reading this needs an operator: FIREBREAK_OPERATOR_TOKEN matches no [operators.people] entry"
    )


def test_stdio_without_a_token_is_refused_when_no_local_role_is_configured(deployment):
    done = serve_stdio_alone(deployment, None)

    assert done.returncode == 1 and done.stdout == ""
    assert "[operators] local_role is empty, so a person at this machine must give a token" in done.stderr


def test_http_refuses_to_start_when_no_operator_has_a_token(deployment):
    done = subprocess.run(
        [FIREBREAK, "mcp", "serve", "--http", "--port", str(free_port())],
        env=deployment.env(None),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1
    assert "serving MCP over HTTP needs an operator with a token" in done.stderr


@pytest.mark.parametrize("header", [{}, {"Authorization": "Bearer not-an-operators-token"}], ids=["none", "wrong"])
def test_an_http_request_without_an_operators_token_is_refused_before_any_tool_runs(http_server, header):
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}

    refused = httpx2.post(http_server, json=initialize, headers={**accept, **header})

    assert refused.status_code == 401
    assert refused.json() == {"error": "invalid_token", "error_description": "Authentication required"}
    assert 'Bearer error="invalid_token"' in refused.headers["www-authenticate"]


def test_the_sdk_client_with_a_wrong_token_cannot_connect(http_server):
    with pytest.raises(BaseExceptionGroup) as failed:  # the SDK's task group carries its error
        over_http(http_server, calls(("runs", {})), token="not-an-operators-token")

    assert failed.group_contains(MCPError, match="Server returned an error response", depth=2)


def test_over_http_an_operators_bearer_token_reads_every_view_as_over_stdio(deployment, http_server):
    run_id = deployment.answered["run_id"]
    over_the_wire = [content(result) for result in over_http(http_server, every_view(run_id))]
    from_a_child = [content(result) for result in over_stdio(deployment, every_view(run_id))]

    def settled(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # How long an escalation has waited grows between the two reads; everything else must be equal.
        for escalation in views[4]["escalations"]:
            escalation.pop("waited_s"), escalation.pop("due_in_s")
        return views

    assert settled(over_the_wire) == settled(from_a_child)


def test_an_operator_limited_to_a_tenant_sees_only_its_rows_and_no_fleet_view(deployment, http_server):
    other_tenants_run = deployment.waiting["run_id"]
    results = over_http(http_server, every_view(other_tenants_run), token=ACME_TOKEN)
    runs, trace, breakers, budgets, escalations, letters = results

    assert [run["id"] for run in content(runs)["runs"]] == [deployment.answered["run_id"]]
    assert refusal(trace) == f"Error executing tool trace: ann may not see run {other_tenants_run}"
    for fleet, name in ((breakers, "breakers"), (budgets, "budgets")):
        assert refusal(fleet) == f"Error executing tool {name}: ann acts only for acme; this view covers every tenant"
    assert content(escalations)["escalations"] == [] and content(letters)["items"] == []
