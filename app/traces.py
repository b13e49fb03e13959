"""Turn stored spans into a tree, for ``firebreak trace show`` and the UI's Traces tab."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memory.tables import SpanRecord

SHOWN_ATTRIBUTES = (
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "firebreak.cost_usd",
    "gen_ai.tool.name",
    "error.type",
    "firebreak.status",
    "firebreak.context.tokens_before",
    "firebreak.context.tokens_after",
    "firebreak.cache.similarity",
    "firebreak.plan.version",
)


@dataclass(frozen=True)
class TraceLine:
    """One span placed in the tree."""

    depth: int
    name: str
    duration_ms: float
    offset_ms: float
    status: str
    details: dict[str, Any]
    span_id: str


def trace_lines(spans: Sequence[SpanRecord]) -> list[TraceLine]:
    """Depth-first, children in start order; spans whose parent is missing become roots."""
    if not spans:
        return []
    known = {span.span_id for span in spans}
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in known else None
        children[parent].append(span)
    origin = min(span.start_ns for span in spans)
    lines: list[TraceLine] = []

    def visit(span: SpanRecord, depth: int) -> None:
        lines.append(
            TraceLine(
                depth=depth,
                name=span.name,
                duration_ms=(span.end_ns - span.start_ns) / 1e6,
                offset_ms=(span.start_ns - origin) / 1e6,
                status=span.status,
                details={key: span.attributes[key] for key in SHOWN_ATTRIBUTES if key in span.attributes},
                span_id=span.span_id,
            )
        )
        for child in sorted(children.get(span.span_id, []), key=lambda s: s.start_ns):
            visit(child, depth + 1)

    for root in sorted(children[None], key=lambda s: s.start_ns):
        visit(root, 0)
    return lines


def format_trace(spans: Sequence[SpanRecord]) -> str:
    """The tree as indented text with durations."""
    rendered = []
    for line in trace_lines(spans):
        details = " ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in line.details.items())
        flag = " ERROR" if line.status == "ERROR" else ""
        rendered.append(f"{'  ' * line.depth}{line.name}  {line.duration_ms:.1f} ms{flag}  {details}".rstrip())
    return "\n".join(rendered)
