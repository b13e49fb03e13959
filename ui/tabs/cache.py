"""The Cache tab: live entries and hits per layer, tenant and route, the most recently used answers, and
invalidation of one entry or one tenant's entries."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.operators import invalidate_as
from core.errors import OperatorRefused
from memory.tables import CacheEntry
from ui.html import QUEUE_CSS, REASON_PREFIX_CHARS, date_time, table, td, text_td, tr
from ui.page import Page

CACHE_TAB = "cache"
RECENT_ENTRIES = 50


def _cache_stats_row(stats: Mapping[str, Any]) -> str:
    return tr(
        "cache-stats-row",
        {"layer": stats["layer"]},
        [
            text_td(stats["layer"]),
            text_td(stats["tenant_id"] or "—"),
            text_td(stats["route"] or "—", "mono"),
            td(stats["entries"], "number"),
            td(stats["hits"], "number"),
        ],
    )


def cache_stats_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """Live cache entries and their hits per layer, tenant and route (``CacheStore.stats``)."""
    return table(
        "cache-stats",
        ("Layer", "Tenant", "Route", "Entries", "Hits"),
        [_cache_stats_row(stats) for stats in rows],
        "The cache is empty.",
    )


def _cache_entry_row(entry: CacheEntry) -> str:
    return tr(
        "cache-entry-row",
        {"id": entry.id},
        [
            td(entry.id, "number"),
            text_td(entry.tenant_id),
            text_td(entry.route, "mono"),
            td(entry.hits, "number"),
            text_td(entry.text, limit=REASON_PREFIX_CHARS),
            td(date_time(entry.last_used_at)),
        ],
    )


def cache_entries_html(entries: Sequence[CacheEntry]) -> str:
    """The most recently used cached answers, in the order given (newest first)."""
    return table(
        "cache-entries",
        ("Entry", "Tenant", "Route", "Hits", "Question", "Last used"),
        [_cache_entry_row(entry) for entry in entries],
        "No cached answers.",
    )


@dataclass(frozen=True)
class CacheHandlers:
    """The Cache tab's events: the views show the operator's tenants; invalidation is an audited action."""

    page: Page

    async def cache_views(self, request: gr.Request) -> tuple[str, str]:
        """Entries and hits per layer, tenant and route, and the most recently used answers (of the operator's
        tenants)."""
        operator = self.page.reader(request)
        store = (await self.page.services()).cache.store
        now = time.time()
        stats = [stats for stats in store.stats(now=now) if operator.sees(stats["tenant_id"])]
        entries = [entry for entry in store.recent(limit=RECENT_ENTRIES, now=now) if operator.sees(entry.tenant_id)]
        return cache_stats_html(stats), cache_entries_html(entries)

    async def invalidate_cache(self, tenant: str, entry: str, request: gr.Request) -> tuple[str, ...]:
        """Drop one entry (by id) or every entry of one tenant; both empty refuses rather than wiping everything."""
        tenant, entry = tenant.strip(), entry.strip().lstrip("#")
        if not tenant and not entry:
            message = "Name a tenant or an entry id to invalidate (`firebreak cache invalidate --all` empties it)."
        elif entry and not entry.isdigit():
            message = f"Entry id {entry!r} is not a number."
        else:
            store = (await self.page.services()).cache.store
            selectors = {"tenant_id": tenant or None, "entry_id": int(entry) if entry else None}
            chosen = {name: value for name, value in selectors.items() if value is not None}
            try:
                removed = invalidate_as(store, self.page.operator(request), now=time.time(), **chosen)
                message = f"Removed {removed} cache entr{'y' if removed == 1 else 'ies'}."
            except OperatorRefused as exc:
                message = f"Not invalidated: {exc}"
        return (message, *(await self.cache_views(request)))


def cache_tab(page: Page) -> None:
    """Lay out the Cache tab and wire its events."""
    handlers = CacheHandlers(page)
    with gr.Tab("Cache", id=CACHE_TAB, elem_id="cache-tab") as tab:
        refresh_btn = gr.Button("Refresh", elem_id="refresh-cache")
        gr.Markdown("### Entries by layer, tenant and route")
        stats_view = gr.HTML(cache_stats_html([]), css_template=QUEUE_CSS, elem_id="cache-stats-view")
        gr.Markdown("### Recently used answers")
        entries_view = gr.HTML(cache_entries_html([]), css_template=QUEUE_CSS, elem_id="cache-entries-view")
        with gr.Row():
            tenant = gr.Textbox(label="Tenant", elem_id="cache-tenant", scale=2)
            entry = gr.Textbox(label="Entry id", elem_id="cache-entry", scale=1)
            invalidate_btn = gr.Button("Invalidate", variant="stop", elem_id="cache-invalidate", scale=1)
        result = gr.Markdown(elem_id="cache-invalidate-result")
    outputs = [stats_view, entries_view]
    refresh_btn.click(handlers.cache_views, None, outputs)
    tab.select(handlers.cache_views, None, outputs)
    invalidate_btn.click(handlers.invalidate_cache, [tenant, entry], [result, *outputs])
