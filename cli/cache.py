"""The semantic cache: what it holds, per layer, tenant and route, and invalidating it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.access import operator_of, reader_of
from cli.options import ConfigOption, JsonOption, echo_json, settings_of
from core.errors import FirebreakError

if TYPE_CHECKING:  # imported where used: the CLI starts without the database stack
    from app.operators import Operator
    from memory.cache import CacheStore

cache_cli = typer.Typer(no_args_is_help=True, help="Inspect and invalidate the semantic cache.")


def _cache_store(config: Path | None) -> tuple[Operator, CacheStore]:
    """The operator and the cache store of the configured database."""
    from app.services import open_stores

    settings = settings_of(config)
    return operator_of(settings), open_stores(settings).cache


@cache_cli.command("stats")
def cache_stats(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Live entries and hits per layer, tenant and route."""
    import time

    from app.services import open_stores
    from app.views import cache_stats_of

    settings = settings_of(config)
    rows = cache_stats_of(open_stores(settings), reader_of(settings), now=time.time())
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("the cache is empty")
    for row in rows:
        typer.echo(
            f"{row['layer']:<13} tenant={row['tenant_id'] or '-':<16} route={row['route'] or '-':<28} "
            f"entries={row['entries']:<7} hits={row['hits']}"
        )


@cache_cli.command("list")
def cache_list(
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The most recently used cached answers, newest first."""
    import time

    from app.services import open_stores
    from app.views import cache_entries_of

    settings = settings_of(config)
    entries = cache_entries_of(open_stores(settings), reader_of(settings), tenant=tenant, limit=limit, now=time.time())
    if as_json:
        echo_json([entry.model_dump(exclude={"vector", "scope"}) for entry in entries])
        return
    for entry in entries:
        typer.echo(f"#{entry.id:<6} {entry.tenant_id:<16} {entry.route:<28} hits={entry.hits:<4} {entry.text[:60]!r}")


@cache_cli.command("invalidate")
def cache_invalidate(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's entries.")] = None,
    route: Annotated[str | None, typer.Option("--route", help="Only this route's answers.")] = None,
    layer: Annotated[str | None, typer.Option("--layer", help="llm_response, read_tool or embedding.")] = None,
    entry: Annotated[int | None, typer.Option("--entry", help="One entry, by the id `cache list` shows.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="One exact-layer key (a digest).")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every entry of every tenant.")] = False,
    config: ConfigOption = None,
) -> None:
    """Remove cached entries matching every selector given; --all (alone) empties the cache."""
    import time

    from app.operators import invalidate_as
    from memory.cache import LAYERS

    selectors = {"tenant_id": tenant, "route": route, "layer": layer, "entry_id": entry, "key": key}
    chosen = {name: value for name, value in selectors.items() if value is not None}
    if bool(chosen) == everything:
        raise FirebreakError("name what to invalidate (--tenant, --route, --layer, --entry, --key) or pass --all alone")
    if layer is not None and layer not in LAYERS:
        raise FirebreakError(f"unknown layer {layer!r}: use one of {', '.join(LAYERS)}")
    operator, store = _cache_store(config)
    removed = invalidate_as(store, operator, now=time.time(), **chosen)
    typer.echo(f"removed {removed} cache entr{'y' if removed == 1 else 'ies'}")
