"""What operators act on: who they are (tokens, the audit log) and the runs that need them (the dead letters)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.access import operator_of, reader_of
from cli.options import ConfigOption, JsonOption, echo_json, settings_of
from core.config import Settings
from core.errors import FirebreakError

if TYPE_CHECKING:  # imported where used: the CLI starts without the service stack
    from app.operators import Operator

dlq_cli = typer.Typer(no_args_is_help=True, help="Inspect and requeue dead-lettered runs.")
operators_cli = typer.Typer(no_args_is_help=True, help="Who may act on runs: add an operator, read the audit log.")


@dlq_cli.command("list")
def dlq_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every run (from any entry path) and event handling that did not end with a clean answer, with what to
    do: requeue it, the escalation it waits on, or why nothing is to be done (= runs --unclean)."""
    settings = settings_of(config)
    print_attention(settings, reader_of(settings), None, as_json)


def print_attention(
    settings: Settings, operator: Operator, tenant: str | None, as_json: bool, limit: int = 100
) -> None:
    """Print what needs an operator (of ``tenant``, or every tenant they see) and what to do about each."""
    import time

    from app.services import open_stores
    from app.views import attention_of

    items = attention_of(open_stores(settings), operator, tenant, now=time.time(), limit=limit)
    if as_json:
        echo_json([item.as_dict() for item in items])
        return
    if not items:
        typer.echo("every run ended with a clean answer; the dead-letter queue is empty")
    for item in items:
        letter = f" (dead letter {item.letter_id})" if item.letter_id is not None else ""
        typer.echo(
            f"{item.target:<36}  {item.status:<16} {item.entry:<18} {item.action}: {item.detail}{letter}"
            f"  {' '.join(item.reason.split())[:100]!r}"
        )


@dlq_cli.command("show")
def dlq_show(letter_id: int, config: ConfigOption = None) -> None:
    """Everything attached to one dead letter: reason, checkpoint, state, tool outputs, decisions."""
    from app.services import open_stores
    from app.views import seen_dead_letter

    settings = settings_of(config)
    stores = open_stores(settings)
    echo_json(seen_dead_letter(stores, reader_of(settings), letter_id).model_dump())


@dlq_cli.command("requeue")
def dlq_requeue(
    target: Annotated[
        str | None, typer.Argument(help="A run id, or event:<dead letter id> (as `firebreak dlq list` shows).")
    ] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Requeue everything `dlq list` says to requeue.")] = False,
    config: ConfigOption = None,
) -> None:
    """Send a run back to the queue (a dead one, or one that failed in the chat, `ask` or the API: a worker
    resumes it from its checkpoint, same run id), or give a dead-lettered event fresh attempts."""
    import time

    from app.services import open_stores
    from app.views import requeue_of

    settings = settings_of(config)
    operator = operator_of(settings)
    if all_runs == (target is not None):
        raise FirebreakError("give a run id (or event:<id>) or --all, not both")
    moved, tried = requeue_of(open_stores(settings), operator, target, now=time.time())
    typer.echo(f"requeued {moved} of {tried}")


@operators_cli.command("add")
def operators_add(
    name: Annotated[str, typer.Argument(help="The operator's name, as the audit log and the UI login show it.")],
    role: Annotated[str, typer.Option("--role", help="reviewer, operator or admin.")] = "reviewer",
    tenants: Annotated[list[str] | None, typer.Option("--tenant", help="Limit to this tenant (repeatable).")] = None,
) -> None:
    """Make a token for a new operator; print it once, and the [operators.people] table to add to the config."""
    from app.operators import TOKEN_VARIABLE, new_operator

    token, entry = new_operator(name, role, tenants or ())
    typer.echo(f"token for {name} (shown once; give it to them, they pass it as {TOKEN_VARIABLE} or the UI password):")
    typer.echo(f"  {token}\n\nadd to firebreak.toml:\n")
    typer.echo(entry)


@operators_cli.command("audit")
def operators_audit(
    operator: Annotated[str | None, typer.Option("--operator", help="Only this operator's actions.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The audit log, newest first: every operator action, allowed or refused (an admin reads everyone's,
    others their own)."""
    from datetime import UTC, datetime

    from app.operators import visible_actions
    from app.services import open_stores

    settings = settings_of(config)
    rows = visible_actions(open_stores(settings).audit, reader_of(settings), of=operator, limit=limit)
    if as_json:
        echo_json([row.model_dump() for row in rows])
        return
    if not rows:
        typer.echo("no operator actions recorded")
    for row in rows:
        when = datetime.fromtimestamp(row.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(
            f"{when} {row.operator:<20} {row.role or '-':<9} {row.via:<3} {row.action:<17} "
            f"{row.target[:24]:<24} {row.outcome[:80]}"
        )
