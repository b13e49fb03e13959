"""OpenTelemetry metrics: the GenAI semantic-convention metrics and Firebreak's own.

Most figures are read off finished spans in one place, :class:`SpanMetrics`: model calls (tokens, duration),
runs (status, duration), cache lookups, breaker transitions (span events) and canary decisions. Current state
(runs in progress, the dead-letter queue, escalations waiting, breaker states, budgets) is read from the stores
by observable gauges (``app/metrics_gauges.py``), only when a reader collects: never on a run's path.

Like its ``TracerProvider``, Firebreak owns its ``MeterProvider`` and installs no global one. Metrics go over
OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``) is set, and to a
Prometheus scrape endpoint when ``[telemetry] prometheus_port`` is; with neither, nothing is measured.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from sqlalchemy.engine import Engine

from app.limits.ledger import BlastRadius
from app.metrics_gauges import StateGauges
from app.telemetry import INHERITED_ATTRIBUTES
from core.config import TelemetrySettings
from core.status import RunStatus
from memory.cache import LLM_RESPONSE

log = logging.getLogger(__name__)

# The GenAI semantic conventions' advised bucket boundaries for these two histograms.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
RUN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
# What a model-call span says about the call, as the conventions name it on the metrics. ``gen_ai.system`` is
# the name conventions before 1.37 gave ``gen_ai.provider.name``: both, so dashboards of either era work.
MODEL_CALL_ATTRIBUTES = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
)
BREAKER_TRANSITION = "firebreak.breaker.transition"
CANARY_SPAN = "canary "


def _ns_to_s(span: ReadableSpan) -> float | None:
    if span.start_time is None or span.end_time is None:
        return None
    return (span.end_time - span.start_time) / 1e9


def _picked(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: attributes[key] for key in keys if key in attributes}


class SpanMetrics(SpanProcessor):
    """Turns finished spans into metric points: one place, so no component measures what its span says."""

    def __init__(self, meter: Meter) -> None:
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens used per model call, by gen_ai.token.type (input, output)",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="Duration of a model call",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.runs = meter.create_counter(
            "firebreak.runs", unit="{run}", description="Runs that ended or paused (waiting), by firebreak.status"
        )
        self.run_duration = meter.create_histogram(
            "firebreak.run.duration",
            unit="s",
            description="Duration of a run, question to outcome (or pause)",
            explicit_bucket_boundaries_advisory=RUN_BUCKETS,
        )
        self.cache_lookups = meter.create_counter(
            "firebreak.cache.lookups", unit="{lookup}", description="Cache lookups by layer and result (hit, miss)"
        )
        self.cache_saved_tokens = meter.create_counter(
            "firebreak.cache.saved_tokens", unit="{token}", description="Model tokens a cache hit saved"
        )
        self.breaker_transitions = meter.create_counter(
            "firebreak.breaker.transitions", unit="{transition}", description="Circuit breaker state changes"
        )
        self.canary_decisions = meter.create_counter(
            "firebreak.canary.decisions", unit="{decision}", description="Canary controller decisions, by action"
        )

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self._measure(span)
        except Exception:  # a metrics bug must never fail the run whose span just ended
            log.exception("could not turn span %r into metrics", span.name)

    def _measure(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        operation = attributes.get("gen_ai.operation.name")
        if operation == "chat":
            self._model_call(span, attributes)
        elif operation == "invoke_agent" and "firebreak.run_id" in attributes:
            self._run(span, attributes)
        elif span.name.startswith(CANARY_SPAN):
            self._canary(span.name.removeprefix(CANARY_SPAN), attributes)
        if "firebreak.cache.hit" in attributes:
            self._cache_lookup(attributes)
        for event in span.events:
            if event.name == BREAKER_TRANSITION:
                self._breaker_transition(dict(event.attributes or {}), attributes)

    def _model_call(self, span: ReadableSpan, attributes: Mapping[str, Any]) -> None:
        common = _picked(attributes, MODEL_CALL_ATTRIBUTES) | _picked(attributes, INHERITED_ATTRIBUTES)
        if "gen_ai.provider.name" in common:
            common["gen_ai.system"] = common["gen_ai.provider.name"]
        duration = _ns_to_s(span)
        if duration is not None:
            self.operation_duration.record(duration, common | _picked(attributes, ("error.type",)))
        for token_type in ("input", "output"):
            count = attributes.get(f"gen_ai.usage.{token_type}_tokens")
            if isinstance(count, int):
                self.token_usage.record(count, common | {"gen_ai.token.type": token_type})

    def _run(self, span: ReadableSpan, attributes: Mapping[str, Any]) -> None:
        # An error no FirebreakError covers propagates before the status is set: its run row says failed.
        status = attributes.get("firebreak.status", RunStatus.FAILED)
        labels = _picked(attributes, INHERITED_ATTRIBUTES) | {"firebreak.status": str(status)}
        self.runs.add(1, labels)
        duration = _ns_to_s(span)
        if duration is not None:
            self.run_duration.record(duration, labels)

    def _cache_lookup(self, attributes: Mapping[str, Any]) -> None:
        hit = bool(attributes["firebreak.cache.hit"])
        labels = _picked(attributes, INHERITED_ATTRIBUTES) | {
            "firebreak.cache.layer": str(attributes.get("firebreak.cache.layer", LLM_RESPONSE))
        }
        self.cache_lookups.add(1, labels | {"firebreak.cache.result": "hit" if hit else "miss"})
        saved = attributes.get("firebreak.cache.saved_tokens")
        if hit and isinstance(saved, int | float) and saved > 0:
            self.cache_saved_tokens.add(saved, labels)

    def _breaker_transition(self, event: Mapping[str, Any], attributes: Mapping[str, Any]) -> None:
        labels = _picked(attributes, INHERITED_ATTRIBUTES) | {
            "firebreak.backend": str(event.get("firebreak.backend", "")),
            "firebreak.breaker.from": str(event.get("firebreak.breaker.from", "")),
            "firebreak.breaker.to": str(event.get("firebreak.breaker.to", "")),
        }
        self.breaker_transitions.add(1, labels)

    def _canary(self, action: str, attributes: Mapping[str, Any]) -> None:
        labels = {
            "firebreak.canary.action": action,
            "firebreak.release": str(attributes.get("firebreak.canary.release", "")),
            "firebreak.canary.verdict": str(attributes.get("firebreak.canary.verdict", "none")),
        }
        self.canary_decisions.add(1, labels)


@dataclass
class ScrapeEndpoint:
    """A Prometheus ``/metrics`` endpoint over a private registry: only this provider's metrics, no globals."""

    reader: MetricReader
    server: Any  # prometheus_client's WSGI server
    thread: threading.Thread

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_scrape_endpoint(host: str, port: int) -> ScrapeEndpoint | None:
    """Serve ``/metrics`` on ``host:port``; None (and a warning) when the port cannot be bound, since a second
    process on one machine (a CLI command beside a worker) must still run, only without its own endpoint."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.warning("no Prometheus endpoint on %s:%d: %s", host, port, exc)
        return None
    return ScrapeEndpoint(PrometheusMetricReader(registry=registry), server, thread)


def _otlp_reader(interval_s: float) -> MetricReader | None:
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")):
        return None
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=interval_s * 1000)


@dataclass
class Metrics:
    """Firebreak's meter provider, the processor that feeds it from spans, and the scrape endpoint if any."""

    provider: MeterProvider
    meter: Meter
    spans: SpanMetrics
    scrape: ScrapeEndpoint | None = None

    def watch(self, engine: Engine, limits: BlastRadius, clock: Callable[[], float]) -> None:
        """Report the stores' current state (runs in progress, DLQ, escalations, breakers, budgets) as gauges."""
        StateGauges(engine, limits, clock).register(self.meter)

    def shutdown(self) -> None:
        """Export what is left (OTLP), then stop the endpoint."""
        self.provider.shutdown()
        if self.scrape is not None:
            self.scrape.close()


def setup_metrics(resource: Resource, settings: TelemetrySettings) -> Metrics | None:
    """The meter provider with an OTLP reader and/or a Prometheus endpoint; None when neither is configured."""
    readers: list[MetricReader] = []
    otlp = _otlp_reader(settings.metrics_interval_s)
    if otlp is not None:
        readers.append(otlp)
    scrape = None
    if settings.prometheus_port:
        scrape = start_scrape_endpoint(settings.prometheus_host, settings.prometheus_port)
        if scrape is not None:
            readers.append(scrape.reader)
    if not readers:
        return None
    provider = MeterProvider(metric_readers=readers, resource=resource)
    meter = provider.get_meter("firebreak")
    return Metrics(provider=provider, meter=meter, spans=SpanMetrics(meter), scrape=scrape)
