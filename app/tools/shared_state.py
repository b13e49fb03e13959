"""Tools over shared entities (seed pattern 12): agents read a ticket, and change it only at the version
they read. A lost race is an error carrying the ticket as it is now, so the model decides again on it
instead of overwriting the winner's change. Each read and write puts the snapshot on its span."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any

from opentelemetry import trace
from pydantic import Field

from app.tools.registry import ToolContext, tool
from core.errors import StaleEntity
from memory.shared_state import Entity, EntityStore

TicketKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="The ticket, e.g. T-1")]
SNAPSHOT_CHARS = 4000


def _store(ctx: ToolContext) -> EntityStore:
    return EntityStore(ctx.engine, max_changes=ctx.settings.shared_state.max_changes)


def _view(entity: Entity) -> dict[str, Any]:
    """What the model sees, and what the span records: the replay of a multi-agent run reads these."""
    view = {"key": entity.key, "version": entity.version, "data": entity.data, "updated_by": entity.updated_by}
    trace.get_current_span().set_attributes(
        {
            "firebreak.entity.kind": entity.kind,
            "firebreak.entity.key": entity.key,
            "firebreak.entity.version": entity.version,
            "firebreak.entity.snapshot": json.dumps(entity.data, sort_keys=True, default=str)[:SNAPSHOT_CHARS],
        }
    )
    return view


@tool(kind="read", cost_class="db")
def ticket_read(key: TicketKey, ctx: ToolContext) -> dict[str, Any]:
    """Read a support ticket: its fields and the version to pass to ticket_update."""
    entity = _store(ctx).get(ctx.tenant_id, "ticket", key)
    if entity is None:
        raise LookupError(f"ticket {key} does not exist; ticket_update with version 0 creates it")
    return _view(entity)


@tool(kind="write", cost_class="db")
def ticket_update(
    key: TicketKey,
    version: Annotated[int, Field(ge=0, description="The version you read (0 creates the ticket)")],
    changes: Annotated[dict[str, Any], Field(min_length=1, description="The fields to set")],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Change fields of a ticket, only if it is still at the version you read; otherwise read it again."""
    store, who = _store(ctx), f"{ctx.agent} (run {ctx.run_id[:8]})"
    if version == 0:
        return _view(store.create(ctx.tenant_id, "ticket", key, changes, actor=who, correlation_id=ctx.correlation_id))
    current = store.get(ctx.tenant_id, "ticket", key)
    if current is None:
        raise LookupError(f"ticket {key} does not exist; use version 0 to create it")
    # The write is based on the version the agent read: the store's compare-and-swap refuses it when the
    # ticket has moved on since, and hands back the ticket as it is now.
    read = replace(current, version=version)
    try:
        return _view(store.update(read, changes, actor=who, correlation_id=ctx.correlation_id))
    except StaleEntity as lost:
        _view(lost.current)
        raise
