"""OTLP export against a real receiver: oteltest's OTLP/HTTP sink on 127.0.0.1, fed by one scripted run.

The run looks an order up and answers, so its trace holds the agent, two model calls and a tool call. The
sink keeps every export request as it came over the wire; nothing on Firebreak's side is replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import NOISY_MACHINE, run
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from oteltest.sink import HttpSink
from oteltest.sink.handler import AccumulatingHandler

from core.config import Settings, deep_merge, load_settings
from graph.agent import Agent, RunResult

ROUTE = "scripted/demo"
RELEASE = "base"  # the release that serves a run when no rollout is running
INPUT_PRICE, OUTPUT_PRICE = 0.000002, 0.00001
SCRIPT = (
    '{"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 1}}],'
    ' "usage": {"input_tokens": 120, "output_tokens": 15}}\n'
    '{"text": "Order 1 has shipped.", "usage": {"input_tokens": 180, "output_tokens": 8}}\n'
)


class LoopbackSink(HttpSink):
    """oteltest's OTLP/HTTP sink, listening on 127.0.0.1 at a free port from the start.

    ``HttpSink`` binds every interface at a port chosen in advance, in its server thread; binding here
    instead means no other process can take the port and no export can come before the sink listens.
    """

    def __init__(self) -> None:
        super().__init__(AccumulatingHandler(), logging.getLogger(__name__), port=0)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.handlers[self.path](body, dict(self.headers.items()))
                self.send_response(200)
                self.end_headers()

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]

    def run_server(self) -> None:
        assert self.httpd is not None
        self.httpd.serve_forever()


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass(frozen=True)
class Export:
    """One run, and every span the receiver got."""

    result: RunResult
    spans: list[ReceivedSpan]

    def named(self, prefix: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.name.startswith(prefix)]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind)


def _attributes(pairs: list[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _received(handler: AccumulatingHandler) -> list[ReceivedSpan]:
    return [
        ReceivedSpan(
            name=span.name,
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            parent_id=span.parent_span_id.hex() or None,
            attributes=_attributes(span.attributes),
            resource=_attributes(resource_spans.resource.attributes),
        )
        for request in handler.telemetry.get_trace_requests()
        for resource_spans in request.pbreq.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Export]:
    """One run exported to a sink through the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    folder: Path = tmp_path_factory.mktemp("otlp")
    (folder / "script.jsonl").write_text(SCRIPT, encoding="utf-8")
    prices = {"input_cost_per_token": INPUT_PRICE, "output_cost_per_token": OUTPUT_PRICE, "context_window": 8192}
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'firebreak.db'}",
        **deep_merge(NOISY_MACHINE, {"script": str(folder / "script.jsonl"), "models": {ROUTE: prices}}),
    )
    sink = LoopbackSink()
    sink.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{sink.port}")
            result = run(_ask(settings))
        yield Export(result, _received(sink.listener))
    finally:
        sink.stop()


async def _ask(settings: Settings) -> RunResult:
    async with Agent.open(settings) as agent:
        return agent.settle_script(await agent.ask("Where is order 1?", route=ROUTE))


def test_the_run_arrives_as_one_trace_of_agent_model_and_tool_spans(export: Export) -> None:
    assert export.result.status == "answered"
    names = [span.name for span in export.spans]
    assert names.count("invoke_agent firebreak") == 1
    assert names.count(f"chat {ROUTE}") == 2
    assert names.count("execute_tool sql_lookup") == 1
    assert {span.trace_id for span in export.spans} == {export.result.trace_id}


def test_every_span_descends_from_the_runs_invoke_agent_span(export: Export) -> None:
    (agent,) = export.named("invoke_agent")
    parents = {span.span_id: span.parent_id for span in export.spans}

    def ancestors(span_id: str) -> list[str]:
        parent = parents[span_id]
        return [] if parent is None else [parent, *ancestors(parent)]

    assert agent.parent_id is None
    for span in export.spans:
        if span is not agent:
            assert agent.span_id in ancestors(span.span_id), span.name


def test_model_spans_carry_the_scripted_token_counts(export: Export) -> None:
    usage = [
        (span.attributes["gen_ai.usage.input_tokens"], span.attributes["gen_ai.usage.output_tokens"])
        for span in export.named("chat ")
    ]
    assert sorted(usage) == [(120, 15), (180, 8)]


def test_model_spans_carry_their_cost_at_the_configured_prices(export: Export) -> None:
    costs = sorted(span.attributes["firebreak.cost_usd"] for span in export.named("chat "))
    assert costs == pytest.approx([120 * INPUT_PRICE + 15 * OUTPUT_PRICE, 180 * INPUT_PRICE + 8 * OUTPUT_PRICE])
    assert sum(costs) == pytest.approx(export.result.usage.cost_usd)


def test_the_agent_span_names_the_conversation(export: Export) -> None:
    (agent,) = export.named("invoke_agent")
    assert agent.attributes["gen_ai.conversation.id"] == export.result.thread_id


def test_every_span_carries_the_release_and_the_route(export: Export) -> None:
    for span in export.spans:
        release = (span.attributes.get("service.version"), span.attributes.get("firebreak.release"))
        assert release == (RELEASE, RELEASE), span.name
        assert span.attributes.get("firebreak.route") == ROUTE, span.name


def test_the_resource_names_the_service(export: Export) -> None:
    assert {span.resource["service.name"] for span in export.spans} == {"firebreak"}
