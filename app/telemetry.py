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

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
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


def _jsonable(attributes: dict[str, Any]) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in attributes.items()}


@dataclass
class Telemetry:
    """The tracer every Firebreak component uses, plus flush control."""

    provider: TracerProvider
    tracer: Tracer
    record_content: bool

    def flush(self) -> None:
        self.provider.force_flush()

    def shutdown(self) -> None:
        self.provider.shutdown()

    def content(self, span: Span, key: str, value: Any) -> None:
        """Record prompt/answer/tool content on ``span`` only when enabled, redacted."""
        if self.record_content:
            text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
            span.set_attribute(key, redact(text))


def setup_telemetry(engine: Engine, *, service_name: str, release: str, record_content: bool) -> Telemetry:
    """Build the tracer provider: local span table always, OTLP when the standard env var is set."""
    resource = Resource.create({"service.name": service_name, "service.version": release, "firebreak.release": release})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(DatabaseSpanExporter(engine), schedule_delay_millis=200))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Telemetry(provider=provider, tracer=provider.get_tracer("firebreak"), record_content=record_content)


def mark_error(span: Span, exc: BaseException) -> None:
    """Set the span's status and ``error.type`` per the semantic conventions."""
    span.set_status(Status(StatusCode.ERROR, redact(str(exc))[:500]))
    span.set_attribute("error.type", getattr(exc, "kind", None) or type(exc).__name__)
