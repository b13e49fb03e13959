"""OpenTelemetry tracing with the GenAI semantic conventions.

Spans go to a local ``spans`` table (the UI's and CLI's trace view) and, when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, to any OTLP receiver. Firebreak owns
its ``TracerProvider`` instead of installing a global one, so an application
that embeds it keeps control of its own tracing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from memory.tables import SpanRecord

REDACTIONS = (
    (re.compile(r"\b(sk|pk|rk)[-_][A-Za-z0-9_-]{12,}\b"), "[redacted-key]"),
    (re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"), "[redacted-email]"),
    (re.compile(r"\b(?:\d[ -]?){13,19}\b"), "[redacted-card]"),
)


# Set on a run's ``invoke_agent`` span and copied to every span below it, so a trace backend can filter any
# span (a tool call, a model call) by the agent version and route that served it.
INHERITED_ATTRIBUTES = ("service.version", "firebreak.release", "firebreak.release.digest", "firebreak.route")


def redact(text: str) -> str:
    """Mask API keys, email addresses and card-like numbers before text reaches a span or log."""
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


class DatabaseSpanExporter(SpanExporter):
    """Writes finished spans to the ``spans`` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = []
        for span in spans:
            context = span.get_span_context()
            if context is None:
                continue
            attributes = dict(span.attributes or {})
            rows.append(
                SpanRecord(
                    span_id=_hex(context.span_id, 16),
                    trace_id=_hex(context.trace_id, 32),
                    parent_span_id=_hex(span.parent.span_id, 16) if span.parent else None,
                    run_id=attributes.get("firebreak.run_id"),  # type: ignore[arg-type]
                    name=span.name,
                    start_ns=span.start_time or 0,
                    end_ns=span.end_time or 0,
                    status=span.status.status_code.name,
                    attributes=_jsonable(attributes),
                    events=[
                        {
                            "name": event.name,
                            "time_ns": event.timestamp,
                            "attributes": _jsonable(dict(event.attributes or {})),
                        }
                        for event in span.events
                    ],
                )
            )
        try:
            with Session(self._engine) as session:
                session.add_all(rows)
                session.commit()
        except Exception:  # a tracing outage must never fail the run it observes
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class InheritAttributes(SpanProcessor):
    """Copies :data:`INHERITED_ATTRIBUTES` from a span's parent onto it when it starts."""

    def on_start(self, span: SdkSpan, parent_context: otel_context.Context | None = None) -> None:
        parent = trace.get_current_span(parent_context)
        inherited = getattr(parent, "attributes", None) or {}
        own = span.attributes or {}
        span.set_attributes(
            {key: inherited[key] for key in INHERITED_ATTRIBUTES if key in inherited and key not in own}
        )


def _jsonable(attributes: dict[str, Any]) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in attributes.items()}


@dataclass
class Telemetry:
    """The tracer every Firebreak component uses, plus flush control."""

    provider: TracerProvider
    tracer: Tracer
    record_content: bool
    local: SpanProcessor  # into the spans table

    def flush(self) -> None:
        """Write finished spans to the spans table now. OTLP export goes on in its own thread: a slow or
        unreachable receiver must never hold a run (or the event loop it runs on) up."""
        self.local.force_flush()

    def shutdown(self) -> None:
        self.provider.shutdown()

    def content(self, span: Span, key: str, value: Any) -> None:
        """Record prompt/answer/tool content on ``span`` only when enabled, redacted."""
        if self.record_content:
            text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
            span.set_attribute(key, redact(text))


def setup_telemetry(engine: Engine, *, service_name: str, version: str, record_content: bool) -> Telemetry:
    """Build the tracer provider: local span table always, OTLP when the standard env var is set."""
    resource = Resource.create({"service.name": service_name, "service.version": version})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(InheritAttributes())
    local = BatchSpanProcessor(DatabaseSpanExporter(engine), schedule_delay_millis=200)
    provider.add_span_processor(local)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Telemetry(
        provider=provider, tracer=provider.get_tracer("firebreak"), record_content=record_content, local=local
    )


def mark_error(span: Span, exc: BaseException) -> None:
    """Set the span's status and ``error.type`` per the semantic conventions."""
    span.set_status(Status(StatusCode.ERROR, redact(str(exc))[:500]))
    span.set_attribute("error.type", getattr(exc, "kind", None) or type(exc).__name__)
