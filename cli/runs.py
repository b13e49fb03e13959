"""Reading runs after the fact: the run list, a run's trace and shared-state changes, its plan, a thread's context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.access import reader_of
from cli.operators import print_attention
from cli.options import ConfigOption, JsonOption, echo_json, settings_of

if TYPE_CHECKING:  # imported where used: the CLI starts without the database stack
    from app.services import Stores
    from memory.tables import Run

commands = typer.Typer()
trace_cli = typer.Typer(no_args_is_help=True, help="Inspect traces.")
context_cli = typer.Typer(no_args_is_help=True, help="A thread's context checkpoints (summaries of older turns).")
plan_cli = typer.Typer(no_args_is_help=True, help="Plans of planned runs: versions, and planned vs executed.")


def stored_run(config: Path | None, run_id: str) -> tuple[Stores, Run]:
    """The stores of the configured database and the run ``run_id`` if the operator may see it."""
    from app.services import open_stores
    from app.views import seen_run

    settings = settings_of(config)
    operator = reader_of(settings)
    stores = open_stores(settings)
    return stores, seen_run(stores, operator, run_id)


@commands.command("runs")
def runs_list(
    status: Annotated[str | None, typer.Option("--status", help="answered, failed, waiting, …")] = None,
    route: Annotated[str | None, typer.Option("--route")] = None,
    release: Annotated[str | None, typer.Option("--release")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
    unclean: Annotated[
        bool,
        typer.Option("--unclean", help="Only runs that did not end with a clean answer, with what to do (= dlq list)."),
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The newest runs, filtered by status, route, release and tenant."""
    from app.services import open_stores
    from app.views import runs_of

    settings = settings_of(config)
    operator = reader_of(settings)
    if unclean:
        print_attention(settings, operator, tenant, as_json, limit=limit)
        return
    which = {"status": status, "route": route, "release": release, "tenant": tenant}
    rows = runs_of(open_stores(settings), operator, **which, limit=limit)
    if as_json:
        echo_json([row.model_dump() for row in rows])
        return
    if not rows:
        typer.echo("no run matches")
    for row in rows:
        typer.echo(
            f"{row.id}  {row.status:<16} {row.route:<24} {row.release:<10} {row.tenant_id:<12} "
            f"{row.created_at:%Y-%m-%d %H:%M:%S}  {row.question[:60]!r}"
        )


@trace_cli.command("show")
def trace_show(run_id: str, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show a run's spans as a tree with durations."""
    from app.traces import format_trace

    stores, run = stored_run(config, run_id)
    spans = stores.runs.spans(run_id)
    if as_json:
        echo_json({"run_id": run_id, "trace_id": run.trace_id, "spans": [span.model_dump() for span in spans]})
        return
    typer.echo(f"run {run_id} · {run.status} · trace {run.trace_id}")
    typer.echo(format_trace(spans) or "(no spans recorded)")


@trace_cli.command("replay")
def trace_replay(run_id: str, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The shared entities a run (or the team run it belongs to) changed: every version in order, who made it,
    what changed and the state after."""
    stores, run = stored_run(config, run_id)
    correlation = run.correlation_id or run.id
    events = stores.entities.changes_in(correlation)
    if as_json:
        echo_json({"run_id": run_id, "correlation_id": correlation, "changes": [e.model_dump() for e in events]})
        return
    if not events:
        typer.echo(f"run {run_id} changed no shared entity")
    for event in events:
        patch = ", ".join(f"{field}={value!r}" for field, value in event.patch.items())
        typer.echo(f"{event.kind} {event.key} v{event.version} · {event.type} by {event.actor} · {patch}")
        typer.echo(f"  now: {json.dumps(event.after, sort_keys=True, default=str)}")


@plan_cli.command("show")
def plan_show(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """A run's plan versions (why each replaced the one before) and the tool calls it executed."""
    from app.planning.report import plan_report, report_lines

    stores, _ = stored_run(config, run_id)
    report = {"run_id": run_id, **plan_report(stores.plans.versions(run_id), stores.runs.events(run_id))}
    if as_json:
        echo_json(report)
        return
    typer.echo("\n".join(report_lines(report)))


@context_cli.command("show")
def context_show(
    thread: Annotated[str, typer.Argument(help="The thread id.")],
    raw: Annotated[bool, typer.Option("--raw", help="Also print the messages each checkpoint replaced.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every context checkpoint of a thread, oldest first: tokens before and after, summary, facts."""
    from app.services import open_stores

    rows = open_stores(settings_of(config)).context.for_thread(thread)
    if as_json:
        echo_json([row.model_dump(exclude=set() if raw else {"raw"}) for row in rows])
        return
    if not rows:
        typer.echo(f"thread {thread} has no context checkpoints")
    for row in rows:
        facts = "; ".join(f"{name}: {', '.join(values)}" for name, values in sorted(row.facts.items()))
        typer.echo(
            f"#{row.id} run {row.run_id[:8]} · {row.messages_replaced} messages replaced · "
            f"{row.tokens_before} → {row.tokens_after} tokens · by {row.summarized_by}\n  {row.summary}"
            + (f"\n  facts: {facts}" if facts else "")
        )
        if raw:
            for message in row.raw:
                typer.echo(f"    {message['role']}: {message.get('content') or ''}")
