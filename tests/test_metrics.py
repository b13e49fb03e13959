"""OpenTelemetry metrics against real receivers, fed by scripted runs of the agent.

Over OTLP: oteltest's OTLP/HTTP sink on 127.0.0.1 (the trace tests' receiver) gets the GenAI histograms and the
runs counter of one run, exported as users switch it on (``OTEL_EXPORTER_OTLP_ENDPOINT``). Over Prometheus: the
``[telemetry] prometheus_port`` endpoint is scraped over HTTP while the agent is open, after runs that answer,
hit the cache, wait for a person, open a breaker and end in the dead-letter queue, and a canary start; the text
is parsed with prometheus_client's parser. The Grafana dashboard is checked against that scrape.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import NOISY_MACHINE, run
from opentelemetry import metrics as otel_metrics
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from test_otlp_export import LoopbackSink

from app.limits.ledger import Scope
from app.metrics import DURATION_BUCKETS, TOKEN_BUCKETS
from app.metrics_gauges import StateGauges
from app.services import build_services, open_stores
from core.config import Settings, deep_merge, load_settings
from graph.agent import Agent, RunResult
from graph.worker import Worker, submit
from memory.queue import QueueStore

ROUTE = "scripted/demo"
DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "dashboards" / "firebreak.json"
LOOKUP_42 = {
    "tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 42}}],
    "usage": {"input_tokens": 120, "output_tokens": 15},
}
ANSWER_42 = {"text": "Order 42 is a USB-C dock.", "usage": {"input_tokens": 180, "output_tokens": 8}}
# A rules script (every line repeats): order 7's backend is down; any other question is looked up and answered.
RULES = [
    {"repeat": True, "expect": "order 7", "error": "server"},
    {"repeat": True, "after": "user", **LOOKUP_42},
    {"repeat": True, "after": "tool", **ANSWER_42},
]
# The model's breaker opens at its first failure, and a queued run dies at its first failed attempt.
FRAGILE = {
    "breakers": {"overrides": {f"model:{ROUTE}": {"minimum_calls": 1, "failure_threshold": 1}}},
    "retries": {"attempts": 1},
    "queue": {"retry_base_delay_s": 0.0},
}


def _settings(folder: Path, script: list[dict[str, Any]], **overrides: Any) -> Settings:
    path = folder / "script.jsonl"
    path.write_text("".join(json.dumps(reply) + "\n" for reply in script), encoding="utf-8")
    return load_settings(
        database_url=f"sqlite:///{folder / 'firebreak.db'}",
        **deep_merge(NOISY_MACHINE, {"script": str(path), **overrides}),
    )


# -- OTLP ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    metric: str
    unit: str
    attributes: dict[str, Any]
    value: float  # a sum's value, a histogram's sum
    count: int  # a histogram's count (1 for a sum)
    bounds: tuple[float, ...]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    assert kind is not None
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def _points(metric: Metric) -> list[Point]:
    kind = metric.WhichOneof("data")
    if kind == "histogram":
        return [
            Point(metric.name, metric.unit, _attributes(p.attributes), p.sum, p.count, tuple(p.explicit_bounds))
            for p in metric.histogram.data_points
        ]
    points = metric.sum.data_points if kind == "sum" else metric.gauge.data_points
    return [
        Point(metric.name, metric.unit, _attributes(p.attributes), getattr(p, p.WhichOneof("value")), 1, ())
        for p in points
    ]


@dataclass(frozen=True)
class Received:
    result: RunResult
    points: list[Point]  # the newest export of each series: every instrument is cumulative
    resources: list[dict[str, Any]]

    def named(self, name: str) -> list[Point]:
        return [point for point in self.points if point.metric == name]


@pytest.fixture(scope="module")
def otlp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Received]:
    """One run (a tool call and an answer) with metrics exported through ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    settings = _settings(tmp_path_factory.mktemp("otlp-metrics"), [LOOKUP_42, ANSWER_42], cache={"enabled": False})
    sink = LoopbackSink()
    sink.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{sink.port}")
            result = run(_ask_once(settings))  # closing the agent exports what is left
        series: dict[tuple[str, str], Point] = {}
        resources = []
        for request in sink.listener.telemetry.get_metric_requests():
            for resource_metrics in request.pbreq.resource_metrics:
                resources.append(_attributes(resource_metrics.resource.attributes))
                for scope in resource_metrics.scope_metrics:
                    for point in (p for metric in scope.metrics for p in _points(metric)):
                        series[(point.metric, json.dumps(point.attributes, sort_keys=True))] = point
        yield Received(result, list(series.values()), resources)
    finally:
        sink.stop()


async def _ask_once(settings: Settings) -> RunResult:
    async with Agent.open(settings) as agent:
        return agent.settle_script(await agent.ask("Where is order 42?", route=ROUTE))


def test_token_usage_arrives_per_token_type_with_the_model_and_the_release(otlp: Received) -> None:
    assert otlp.result.status == "answered"
    usage = {point.attributes["gen_ai.token.type"]: point for point in otlp.named("gen_ai.client.token.usage")}
    assert {kind: (point.count, point.value) for kind, point in usage.items()} == {
        "input": (2, 300),
        "output": (2, 23),
    }
    for point in usage.values():
        assert point.unit == "{token}"
        assert point.attributes["gen_ai.operation.name"] == "chat"
        assert point.attributes["gen_ai.request.model"] == ROUTE
        assert point.attributes["gen_ai.provider.name"] == point.attributes["gen_ai.system"] == "scripted"
        assert (point.attributes["firebreak.release"], point.attributes["firebreak.route"]) == ("base", ROUTE)


def test_the_genai_histograms_use_the_conventions_bucket_boundaries(otlp: Received) -> None:
    assert {point.bounds for point in otlp.named("gen_ai.client.token.usage")} == {TOKEN_BUCKETS}
    assert {point.bounds for point in otlp.named("gen_ai.client.operation.duration")} == {DURATION_BUCKETS}


def test_operation_duration_arrives_in_seconds_once_per_model_call(otlp: Received) -> None:
    (duration,) = otlp.named("gen_ai.client.operation.duration")
    assert duration.unit == "s"
    assert duration.count == 2
    assert 0 < duration.value < 30
    assert "error.type" not in duration.attributes


def test_the_run_arrives_counted_by_status_release_and_route(otlp: Received) -> None:
    (runs,) = otlp.named("firebreak.runs")
    assert runs.value == 1
    assert runs.attributes["firebreak.status"] == "answered"
    assert (runs.attributes["service.version"], runs.attributes["firebreak.route"]) == ("base", ROUTE)


def test_the_metrics_resource_names_the_service(otlp: Received) -> None:
    assert {resource["service.name"] for resource in otlp.resources} == {"firebreak"}


# -- Prometheus ------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Scrape:
    results: list[RunResult]
    text: str
    samples: list[Sample]

    def values(self, name: str, **labels: str) -> list[float]:
        """The values of the samples named ``name`` whose labels include ``labels``."""
        return [s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Scrape:
    """Runs that answer, hit the cache, wait for a person and die in the DLQ (opening the model's breaker), and a
    canary start; then one scrape of the Prometheus endpoint, while the agent is still open."""
    port = _free_port()
    settings = _settings(
        tmp_path_factory.mktemp("prometheus"),
        RULES,
        telemetry={"prometheus_port": port},
        releases={"v2": {"route": "scripted/v2"}},
        **FRAGILE,
    )
    return run(_busy_day(settings, f"http://127.0.0.1:{port}/metrics"))


async def _busy_day(settings: Settings, url: str) -> Scrape:
    async with Agent.open(settings) as agent:
        results = [
            await agent.ask("Where is order 42?", route=ROUTE),
            await agent.ask("where is order 42", route=ROUTE),  # a new thread: answered from the cache
            await agent.ask("Can I talk to a human please?", route=ROUTE),
        ]
        agent.services.canary.start("v2", by="test")
        store = QueueStore(agent.services.engine)
        submit(store, settings, "Where is order 7?", route=ROUTE)
        await Worker(agent, store).run_until_idle()
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    return Scrape(results, text, samples)


def test_the_scrape_counts_runs_by_status_with_their_release(scraped: Scrape) -> None:
    assert [result.status for result in scraped.results] == ["answered", "answered", "waiting"]
    base = {"firebreak_release": "base", "firebreak_route": ROUTE}
    assert scraped.values("firebreak_runs_total", firebreak_status="answered", **base) == [2]
    assert scraped.values("firebreak_runs_total", firebreak_status="waiting", **base) == [1]
    assert sum(scraped.values("firebreak_runs_total", firebreak_status="failed")) >= 1
    assert scraped.values("firebreak_runs_active", firebreak_status="waiting", **base) == [1]


def test_the_scrape_has_token_usage_and_duration_per_model_and_release(scraped: Scrape) -> None:
    model = {"gen_ai_request_model": ROUTE, "firebreak_release": "base"}
    assert scraped.values("gen_ai_client_token_usage_sum", gen_ai_token_type="input", **model) == [300]
    assert scraped.values("gen_ai_client_token_usage_count", gen_ai_token_type="output", **model) == [2]
    assert scraped.values("gen_ai_client_operation_duration_seconds_count", error_type="", **model) == [2]
    assert sum(scraped.values("gen_ai_client_operation_duration_seconds_count", error_type="server")) >= 1


def test_a_cache_hit_is_counted_with_the_tokens_it_saved(scraped: Scrape) -> None:
    assert scraped.results[1].cache is not None
    answers = {"firebreak_cache_layer": "llm_response"}
    assert scraped.values("firebreak_cache_lookups_total", firebreak_cache_result="hit", **answers) == [1]
    assert scraped.values("firebreak_cache_saved_tokens_total", **answers) == [300 + 23]


def test_a_breaker_opening_is_a_transition_and_its_state_is_open(scraped: Scrape) -> None:
    backend = {"firebreak_backend": f"model:{ROUTE}"}
    assert scraped.values("firebreak_breaker_transitions_total", firebreak_breaker_to="open", **backend) == [1]
    assert scraped.values("firebreak_breaker_state", firebreak_breaker_state="open", **backend) == [1]
    assert scraped.values("firebreak_breaker_state", firebreak_breaker_state="closed", **backend) == [0]


def test_the_dead_letter_and_the_waiting_escalation_are_gauges_with_their_release(scraped: Scrape) -> None:
    assert scraped.values("firebreak_dlq_depth", firebreak_route=ROUTE) == [1]
    assert sum(scraped.values("firebreak_escalations_waiting", firebreak_release="base")) == 1
    (age,) = scraped.values("firebreak_escalations_oldest_age_seconds", firebreak_release="base")
    assert 0 <= age < 300


def test_budget_use_is_reported_against_todays_caps(scraped: Scrape) -> None:
    tokens = {"firebreak_tenant_id": "default", "firebreak_budget_resource": "tokens"}
    (used,) = scraped.values("firebreak_budget_usage", **tokens)
    assert used >= 300 + 23
    assert scraped.values("firebreak_budget_limit", **tokens) == [500_000]


def test_a_canary_start_is_a_decision_for_its_release(scraped: Scrape) -> None:
    assert scraped.values(
        "firebreak_canary_decisions_total", firebreak_canary_action="start", firebreak_release="v2"
    ) == [1]


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _queries(dashboard: dict[str, Any]) -> list[str]:
    targets = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    variables = [
        variable["query"]["query"] for variable in dashboard["templating"]["list"] if variable["type"] == "query"
    ]
    return targets + variables


# Label matchers, grouping clauses and template variables name labels, not metrics.
LABEL_CONTEXTS = re.compile(
    r"\{[^}]*\}|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\$\w+|\"[^\"]*\""
)
METRIC_NAME = re.compile(r"\b(?:gen_ai|firebreak)_[a-z_]+\b")


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query reads (Firebreak's and the GenAI ones)."""
    stripped = LABEL_CONTEXTS.sub(" ", query)
    stripped = re.sub(r"label_values\(\s*(\w+)\s*,\s*\w+\s*\)", r"\1", stripped)
    return set(METRIC_NAME.findall(stripped))


def test_metric_names_are_read_from_queries_without_their_labels() -> None:
    query = 'sum by (firebreak_release) (rate(firebreak_runs_total{firebreak_route=~"$route"}[5m])) or vector(0)'
    assert metric_names(query) == {"firebreak_runs_total"}
    assert metric_names("label_values(firebreak_runs_total, firebreak_release)") == {"firebreak_runs_total"}


def test_the_dashboard_queries_name_only_metrics_the_scrape_has(scraped: Scrape) -> None:
    named = set().union(*(metric_names(query) for query in _queries(_dashboard())))
    emitted = {sample.name for sample in scraped.samples}
    assert len(named) >= 15  # the check looked at the whole dashboard
    assert named - emitted == set()


def test_the_dashboard_is_a_grafana_dashboard_of_prometheus_panels() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "firebreak" and dashboard["schemaVersion"] >= 36
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(target["expr"] for target in panel["targets"]), panel["title"]
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()


# -- Ownership ---------------------------------------------------------------------------------------------------


def test_firebreak_installs_no_global_meter_provider(scraped: Scrape) -> None:
    assert scraped.samples  # a provider of Firebreak's was in use
    assert not isinstance(otel_metrics.get_meter_provider(), MeterProvider)


def test_without_an_otlp_endpoint_or_a_port_nothing_is_measured(tmp_path: Path) -> None:
    services = build_services(_settings(tmp_path, []))
    try:
        assert services.telemetry.metrics is None
    finally:
        services.close()


def test_a_port_already_taken_leaves_the_services_running_without_an_endpoint(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = _settings(tmp_path, [], telemetry={"prometheus_port": taken.getsockname()[1]})
        services = build_services(settings)
        try:
            assert services.telemetry.metrics is None
        finally:
            services.close()


# -- Gauges on both backends ---------------------------------------------------------------------------------


def _at(moment: float) -> Callable[[], float]:
    return lambda: moment


def _token_budgets(reader: InMemoryMetricReader) -> dict[tuple[str, str], float]:
    """(gauge, tenant) -> value of the token budget gauges, from one collection."""
    data: Any = reader.get_metrics_data()
    return {
        (metric.name, point.attributes["firebreak.tenant_id"]): point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        if metric.name.startswith("firebreak.budget.") and point.attributes["firebreak.budget.resource"] == "tokens"
    }


def test_budget_gauges_report_todays_use_per_tenant_and_no_other_day(database_url: str, make_settings: Any) -> None:
    stores = open_stores(make_settings(database_url))
    today = time.time()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        for when, tenant, tokens in ((today - 86_400, "acme", 900), (today, "acme", 40), (today, "globex", 7)):
            limits = stores.blast_radius(clock=_at(when))
            limits.settle(limits.reserve(Scope(None, None, tenant), {"tokens": 100}), {"tokens": tokens})
        gauges = StateGauges(stores.engine, stores.blast_radius(clock=_at(today)), _at(today))
        gauges.register(provider.get_meter("test"))
        points = _token_budgets(reader)
    finally:
        provider.shutdown()
        stores.engine.dispose()
    day_cap = stores.settings.limits.day.tokens
    assert points == {
        ("firebreak.budget.usage", "acme"): 40,
        ("firebreak.budget.usage", "globex"): 7,
        ("firebreak.budget.limit", "acme"): day_cap,
        ("firebreak.budget.limit", "globex"): day_cap,
    }
