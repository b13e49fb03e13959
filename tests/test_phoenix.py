"""Firebreak's traces in Arize Phoenix: a real ``phoenix serve`` on 127.0.0.1, fed over OTLP/HTTP by one
scripted run and queried back through Phoenix's client and its GraphQL API (what its UI shows).

Phoenix converts the GenAI conventions itself (``invoke_agent`` → AGENT, ``chat`` → LLM, ``execute_tool`` →
TOOL, ``gen_ai.usage.*`` → ``llm.token_count.*``). It prices LLM spans from its own table of model prices, not
from a span attribute, so the test first registers Firebreak's price for the scripted model there, as a user
does under Settings → Models. Phoenix runs from its own virtualenv (``make phoenix``, decision 0030).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from conftest import NOISY_MACHINE, run, stop, unavailable
from phoenix.client import Client

from core.config import Settings, deep_merge, load_settings
from graph.agent import Agent, RunResult
from memory.tables import SpanRecord

pytestmark = [pytest.mark.slow, pytest.mark.integration]

PHOENIX = Path(os.environ.get("FIREBREAK_TEST_PHOENIX", Path.home() / ".cache/firebreak/phoenix/bin/phoenix"))
PROJECT = "default"  # Phoenix's project for spans whose resource names none
ROUTE = "scripted/demo"
INPUT_PRICE, OUTPUT_PRICE = 0.000002, 0.00001
SCRIPT = (
    '{"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 1}}],'
    ' "usage": {"input_tokens": 120, "output_tokens": 15}}\n'
    '{"text": "Order 1 has shipped.", "usage": {"input_tokens": 180, "output_tokens": 8}}\n'
)
# Phoenix re-reads its price table every 5 s and prices a span once, when it arrives (GenerativeModelStore).
PRICE_TABLE_RELOAD_S = 5.0
CREATE_PRICE = """
mutation ($input: CreateModelMutationInput!) { createModel(input: $input) { model { id } } }
"""
TRACE_COST = """
query ($project: String!, $trace: ID!) {
  getProjectByName(name: $project) {
    trace(traceId: $trace) { costSummary { prompt { cost } completion { cost } total { cost } } }
  }
}
"""
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _eventually(what: str, read: Callable[[], T | None], timeout_s: float = 60.0) -> T:
    """Poll ``read`` until it returns something other than None; Phoenix ingests and prices spans in batches."""
    deadline = time.monotonic() + timeout_s
    while (value := read()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"Phoenix did not show {what} within {timeout_s:g} s")
        time.sleep(0.5)
    return value


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """``phoenix serve`` on free loopback ports, its database in a temporary folder, offline."""
    if not os.access(PHOENIX, os.X_OK):
        unavailable(f"Arize Phoenix ({PHOENIX})", "run `make phoenix` once, or set FIREBREAK_TEST_PHOENIX")
    folder = tmp_path_factory.mktemp("phoenix")
    port = _free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "PHOENIX_"))}
    environment |= {
        "PHOENIX_WORKING_DIR": str(folder),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(_free_port()),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
        "PHOENIX_ENABLE_MCP_SERVER": "false",
    }
    log_path = folder / "phoenix.log"
    with log_path.open("wb") as log, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        server = subprocess.Popen([PHOENIX, "serve"], env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            _eventually("itself healthy", lambda: _healthy(http, server, log_path), timeout_s=180)
            yield http
        finally:
            stop(server, grace_s=30)


def _healthy(http: httpx.Client, server: subprocess.Popen[bytes], log_path: Path) -> bool | None:
    if server.poll() is not None:
        tail = log_path.read_text(errors="replace")[-3000:]
        pytest.fail(f"phoenix serve exited with {server.returncode}:\n{tail}")
    try:
        return http.get("/healthz").is_success or None
    except httpx.TransportError:
        return None


def _graphql(http: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    response = http.post("/graphql", json={"query": query, "variables": variables})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]


@dataclass(frozen=True)
class Traced:
    """One run, its spans as Firebreak recorded them, and as Phoenix's client returns them."""

    result: RunResult
    recorded: list[SpanRecord]
    spans: list[dict[str, Any]]

    def named(self, prefix: str) -> list[dict[str, Any]]:
        return [span for span in self.spans if span["name"].startswith(prefix)]


@pytest.fixture(scope="module")
def traced(phoenix: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> Traced:
    _graphql(
        phoenix,
        CREATE_PRICE,
        input={
            "name": ROUTE,
            "namePattern": f"^{ROUTE}$",
            "costs": [
                {"tokenType": "input", "kind": "PROMPT", "costPerMillionTokens": INPUT_PRICE * 1e6},
                {"tokenType": "output", "kind": "COMPLETION", "costPerMillionTokens": OUTPUT_PRICE * 1e6},
            ],
        },
    )
    time.sleep(PRICE_TABLE_RELOAD_S + 1)
    folder = tmp_path_factory.mktemp("run")
    (folder / "script.jsonl").write_text(SCRIPT, encoding="utf-8")
    prices = {"input_cost_per_token": INPUT_PRICE, "output_cost_per_token": OUTPUT_PRICE, "context_window": 8192}
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'firebreak.db'}",
        **deep_merge(NOISY_MACHINE, {"script": str(folder / "script.jsonl"), "models": {ROUTE: prices}}),
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", str(phoenix.base_url).rstrip("/"))
        result, recorded = run(_ask(settings))
    assert result.status == "answered" and result.trace_id is not None
    client = Client(http_client=phoenix)

    def arrived() -> list[Any] | None:
        spans = client.spans.get_spans(project_identifier=PROJECT, trace_ids=[result.trace_id])
        return spans if len(spans) == len(recorded) else None

    spans = _eventually("every span of the run", arrived)
    return Traced(result, recorded, [dict(span) for span in spans])


async def _ask(settings: Settings) -> tuple[RunResult, list[SpanRecord]]:
    async with Agent.open(settings) as agent:
        result = agent.settle_script(await agent.ask("Where is order 1?", route=ROUTE))
        return result, agent.services.runs.spans(result.run_id)


def test_phoenix_sees_the_agent_as_agent_model_calls_as_llm_and_tool_calls_as_tool(traced: Traced) -> None:
    kinds = {(span["name"], span["span_kind"]) for span in traced.spans if not span["name"].startswith("node ")}
    assert kinds == {("invoke_agent firebreak", "AGENT"), (f"chat {ROUTE}", "LLM"), ("execute_tool sql_lookup", "TOOL")}


def test_phoenix_shows_the_trace_tree_firebreak_recorded(traced: Traced) -> None:
    shown = {span["context"]["span_id"]: span["parent_id"] for span in traced.spans}
    assert shown == {span.span_id: span.parent_span_id for span in traced.recorded}


def test_phoenix_counts_each_model_calls_tokens(traced: Traced) -> None:
    counts = [
        (
            span["attributes"]["llm.token_count.prompt"],
            span["attributes"]["llm.token_count.completion"],
            span["attributes"]["llm.token_count.total"],
        )
        for span in traced.named("chat ")
    ]
    assert sorted(counts) == [(120, 15, 135), (180, 8, 188)]


def test_phoenix_totals_the_runs_tokens_on_its_trace(traced: Traced, phoenix: httpx.Client) -> None:
    (trace,) = [
        trace
        for trace in Client(http_client=phoenix).traces.get_traces(project_identifier=PROJECT)
        if trace["trace_id"] == traced.result.trace_id
    ]
    usage = traced.result.usage
    assert (trace["token_count_prompt"], trace["token_count_completion"]) == (usage.input_tokens, usage.output_tokens)


def test_phoenix_prices_the_run_as_firebreak_does(traced: Traced, phoenix: httpx.Client) -> None:
    def cost() -> dict[str, Any] | None:
        trace = _graphql(phoenix, TRACE_COST, project=PROJECT, trace=traced.result.trace_id)["getProjectByName"]
        summary: dict[str, Any] = trace["trace"]["costSummary"]
        return summary if summary["total"]["cost"] is not None else None

    summary = _eventually("the run's cost", cost)
    usage = traced.result.usage
    assert summary["prompt"]["cost"] == pytest.approx(usage.input_tokens * INPUT_PRICE)
    assert summary["completion"]["cost"] == pytest.approx(usage.output_tokens * OUTPUT_PRICE)
    assert summary["total"]["cost"] == pytest.approx(usage.cost_usd)


def test_phoenix_keeps_firebreaks_own_cost_on_each_model_span(traced: Traced) -> None:
    shown = sorted(span["attributes"]["firebreak.cost_usd"] for span in traced.named("chat "))
    recorded = [span.attributes["firebreak.cost_usd"] for span in traced.recorded if span.name.startswith("chat ")]
    assert shown == pytest.approx(sorted(recorded))


def test_phoenix_files_the_run_under_its_conversation_as_a_session(traced: Traced) -> None:
    (agent,) = traced.named("invoke_agent")
    assert agent["attributes"]["session.id"] == traced.result.thread_id
