"""The operator's read-only views that app.views does not hold yet, as plain data: a run's trace, breakers, budgets
and the escalations waiting.

Each view checks what its viewer may see (app.access, app.views) and reads through the same stores and functions
the CLI and the UI read through (app.dashboards, app.traces), so a face that serves these views elsewhere
(``firebreak mcp serve``) shows what ``firebreak trace show``, ``breakers`` and ``budgets`` show. Nothing here
writes: sweeping overdue escalations, which ``escalations list`` does first, is an action, not a view.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from app.access import require_fleet_reader, require_reader
from app.dashboards import budget_lines
from app.operators import Operator
from app.services import Stores
from app.traces import format_trace, trace_lines
from app.views import seen_run, visible
from memory.tables import Breaker

RECENT_TRANSITIONS = 10


def trace_view(stores: Stores, viewer: Operator, run_id: str) -> dict[str, Any]:
    """A run's spans as a tree (``firebreak trace show``): one line per span, depth-first, and the same as text."""
    run = seen_run(stores, viewer, run_id)
    spans = stores.runs.spans(run_id)
    return {
        "run_id": run_id,
        "trace_id": run.trace_id,
        "status": run.status,
        "spans": [asdict(line) for line in trace_lines(spans)],
        "tree": format_trace(spans),
    }


def breakers_view(
    stores: Stores, viewer: Operator, *, now: float, transitions: int = RECENT_TRANSITIONS
) -> dict[str, Any]:
    """Every circuit breaker with its state and trips, when an open one probes again, and the latest transitions."""
    require_fleet_reader(viewer)

    def probe_in_s(row: Breaker) -> float | None:
        return max(0.0, row.open_until - now) if row.state == "open" else None

    return {
        "breakers": [{**row.model_dump(mode="json"), "probe_in_s": probe_in_s(row)} for row in stores.breakers.all()],
        "transitions": [change.model_dump(mode="json") for change in stores.breakers.transitions(limit=transitions)],
    }


def budgets_view(stores: Stores, viewer: Operator, scope_prefix: str = "") -> list[dict[str, Any]]:
    """Usage against the blast-radius caps of every scope starting with ``scope_prefix`` (``firebreak budgets``)."""
    require_fleet_reader(viewer)
    return [{**asdict(line), "percent": line.percent} for line in budget_lines(stores.blast_radius(), scope_prefix)]


def escalations_waiting_view(stores: Stores, viewer: Operator, *, now: float, limit: int) -> list[dict[str, Any]]:
    """The open escalations ``viewer`` may see, oldest first (the inbox), with how long each has waited."""
    require_reader(viewer)
    return [
        {**row.model_dump(mode="json"), "waited_s": now - row.created_at, "due_in_s": row.due_at - now}
        for row in visible(viewer, stores.escalations.list(status="open", limit=limit))
    ]
