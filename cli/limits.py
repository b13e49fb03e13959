"""The guard rails' figures: the ops report, circuit breakers and budgets against their caps."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.access import fleet_reader_of
from cli.options import ConfigOption, JsonOption, echo_json, settings_of

commands = typer.Typer()


@commands.command()
def ops(
    window_s: Annotated[
        float | None, typer.Option("--window-s", min=1, help="How far back to look, in seconds (default: 24 h).")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Runs per route and per release (errors, latency p50/p95, cost, tokens, cache hits), dead letters,
    breaker states, the budgets closest to their caps and the escalations waiting: the Ops tab's figures."""
    from dataclasses import asdict

    from app.dashboards import DEFAULT_WINDOW_S, ops_report
    from app.services import open_stores

    settings = settings_of(config)
    fleet_reader_of(settings)
    stores = open_stores(settings)
    report = ops_report(stores.engine, stores.blast_radius(), window_s=window_s or DEFAULT_WINDOW_S)
    if as_json:
        budgets = [{**asdict(line), "percent": line.percent} for line in report.budgets]
        echo_json({**asdict(report), "budgets": budgets})
        return
    typer.echo("\n".join(_ops_lines(report)))


def _ops_lines(report: Any) -> list[str]:
    """The ops report as text: a table per route and per release, then one line per panel."""
    from ui.html import duration_text, format_cost, percent_text

    def seconds(value: float | None) -> str:
        return "—" if value is None else duration_text(value)

    def figures_line(row: Any) -> str:
        tokens, cached = f"{row.input_tokens}/{row.output_tokens}", f"{row.cached} ({percent_text(row.cache_hit_rate)})"
        return (
            f"{row.group:<32} {row.runs:>6} {row.errors:>6} {percent_text(row.error_rate):>7} "
            f"{seconds(row.latency_p50_s):>7} {seconds(row.latency_p95_s):>7} {format_cost(row.cost_usd):>11} "
            f"{tokens:>15} {cached:>11}"
        )

    lines = [f"{report.since:%Y-%m-%d %H:%M:%S} to {report.until:%Y-%m-%d %H:%M:%S} UTC"]
    for title, rows in (("route", report.by_route), ("release", report.by_release)):
        lines.append(
            f"\n{title:<32} {'runs':>6} {'errors':>6} {'rate':>7} {'p50':>7} {'p95':>7} {'cost':>11} "
            f"{'tokens in/out':>15} {'cache hits':>11}"
        )
        lines += [figures_line(row) for row in rows] or ["(no runs in this window)"]
    states = ", ".join(f"{state} {count}" for state, count in sorted(report.breakers.items())) or "none used yet"
    not_closed = f" · not closed: {', '.join(report.breakers_not_closed)}" if report.breakers_not_closed else ""
    waiting = report.escalations
    oldest = f" · oldest waits {seconds(waiting.oldest_wait_s)}" if waiting.open else ""
    lines += [
        f"\ndead letters: {sum(count.dead_letters for count in report.dead_letters)}",
        f"breakers: {states}{not_closed}",
        f"escalations waiting: {waiting.open}{oldest}",
    ]
    lines += [
        f"budget {line.scope} {line.resource}: {line.percent or 0.0:.1f}% of {line.limit or 0.0:g}"
        for line in report.budgets
    ]
    return lines


@commands.command()
def breakers(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List every circuit breaker: state, trips, and when an open one will probe again."""
    import time

    from app.services import open_stores

    settings = settings_of(config)
    fleet_reader_of(settings)
    store = open_stores(settings).breakers
    rows, now = store.all(), time.time()
    if as_json:
        echo_json([row.model_dump() for row in rows])
        return
    if not rows:
        typer.echo("no breaker has been used yet")
    for row in rows:
        wait = f"probe in {row.open_until - now:.0f}s" if row.state == "open" and row.open_until > now else ""
        typer.echo(f"{row.name:<48} {row.state:<10} trips={row.trips:<3} {wait}".rstrip())
    for change in store.transitions(limit=10):
        typer.echo(f"  {change.name}: {change.from_state} → {change.to_state} ({change.reason})")


@commands.command()
def budgets(
    scope: Annotated[str, typer.Option("--scope", help="Prefix such as day:acme or session:t-1.")] = "",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Usage against the blast-radius caps, per scope (request, session, tenant day)."""
    from dataclasses import asdict

    from app.dashboards import budget_lines
    from app.services import open_stores

    settings = settings_of(config)
    fleet_reader_of(settings)
    report = [asdict(line) for line in budget_lines(open_stores(settings).blast_radius(), scope)]
    if as_json:
        echo_json(report)
        return
    if not report:
        typer.echo("nothing has been spent yet")
    for line in report:
        typer.echo(
            f"{line['scope']:<60} {line['resource']:<13} {line['used']:>10g} used "
            f"{line['reserved']:>8g} held / {'no cap' if line['limit'] is None else format(line['limit'], 'g')}"
        )
