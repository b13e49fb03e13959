"""The reviewer's inbox: escalations to list, read, answer and sweep, and the answers as labeled data."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.access import operator_of, reader_of
from cli.chat import report_run
from cli.options import ConfigOption, JsonOption, echo_json, settings_of
from core.errors import FirebreakError

escalations_cli = typer.Typer(no_args_is_help=True, help="The reviewer's inbox: list, show and answer escalations.")
labels_cli = typer.Typer(no_args_is_help=True, help="Human answers as labeled data.")


def _with_agent(config: Path | None, work: Callable[[Any], Any]) -> Any:
    """Open the agent (so answers can resume runs), run ``work(agent)``, close it."""
    from graph.agent import Agent

    async def main() -> Any:
        async with Agent.open(settings_of(config)) as agent:
            result = work(agent)
            return await result if asyncio.iscoroutine(result) else result

    return asyncio.run(main())


def _escalation_line(row: Any) -> str:
    import time

    due = row.due_at - time.time()
    wait = f"due in {due / 60:.0f} min" if due > 0 else f"overdue {-due / 60:.0f} min"
    level = f" level {row.level}" if row.level else ""
    return (
        f"{row.id[:8]}  {row.type:<18} {row.trigger:<20} {row.status:<8}{level} run {row.run_id[:8]}  "
        f"{wait if row.status == 'open' else row.answer!r}\n          {row.question[:140]}"
    )


@escalations_cli.command("list")
def escalations_list(
    status: Annotated[str, typer.Option("--status", help="open, answered, expired or all.")] = "open",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Escalations, oldest open first. Overdue ones are passed up or expired first, by their policy."""

    from app.views import visible

    operator = reader_of(settings_of(config))

    async def work(agent: Any) -> Any:
        await agent.sweep()
        return agent.services.escalations.list(status=None if status == "all" else status)

    rows = visible(operator, _with_agent(config, work))
    if as_json:
        echo_json([row.model_dump() for row in rows])
        return
    if not rows:
        typer.echo(f"no {status} escalations" if status != "all" else "no escalations")
    for row in rows:
        typer.echo(_escalation_line(row))


@escalations_cli.command("show")
def escalations_show(escalation_id: str, config: ConfigOption = None) -> None:
    """One escalation in full: why, the question, its options and its context (summary, history, action)."""
    from app.services import open_stores
    from app.views import seen_escalation

    settings = settings_of(config)
    operator = reader_of(settings)
    echo_json(seen_escalation(open_stores(settings), operator, escalation_id).model_dump())


@escalations_cli.command("answer")
def escalations_answer(
    escalation_id: Annotated[str, typer.Argument(help="The id, or its first characters.")],
    answer: Annotated[str, typer.Argument(help="One of its options (approve, reject, yes, no, raise, stop) or text.")],
    note: Annotated[str | None, typer.Option("--note", help="Why; kept with the label.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer an escalation as the operator running this (see [operators]). If its run was waiting only for
    this, the run resumes here and its outcome prints."""
    from graph.answers import answer_as

    operator = operator_of(settings_of(config))

    async def work(agent: Any) -> Any:
        escalation = agent.services.escalations.find(escalation_id)
        result = await answer_as(agent, operator, escalation, answer, note=note)
        return None if result is None else agent.settle_script(result)

    result = _with_agent(config, work)
    if result is None:
        if as_json:
            echo_json({"answered": escalation_id, "run": None})
        else:
            typer.echo(f"answered {escalation_id}; its run waits for other answers or goes on by itself")
        return
    if not as_json and result.answer:
        typer.echo(result.answer)
    if not as_json:
        _team_hint(config, result.run_id)
    report_run(result, as_json)


def _team_hint(config: Path | None, run_id: str) -> None:
    """A team member's run finished its own part; the team run goes on only when someone resumes it."""
    from app.services import open_stores
    from graph.team import in_team_run

    settings = settings_of(config)
    run = open_stores(settings).runs.get(run_id)
    if run is not None and in_team_run(run.id, run.agent, run.correlation_id, settings.team.max_rounds):
        typer.echo(f"its team goes on with: firebreak team --resume {run.correlation_id}", err=True)


@escalations_cli.command("sweep")
def escalations_sweep(config: ConfigOption = None) -> None:
    """Pass up or expire every overdue escalation now (list does this too)."""
    handled = _with_agent(config, lambda agent: agent.sweep())
    for row, action in handled:
        typer.echo(f"{row.id[:8]} {action}")
    typer.echo(f"{len(handled)} overdue escalation(s) handled")


@labels_cli.command("export")
def labels_export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl is the only format.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    config: ConfigOption = None,
) -> None:
    """Every human answer as one JSON line: what was asked, with what context, and the answer."""
    from app.services import open_stores
    from app.views import labels_of

    if fmt != "jsonl":
        raise FirebreakError(f"unknown format {fmt!r}: use jsonl")
    settings = settings_of(config)
    lines = labels_of(open_stores(settings), reader_of(settings))
    if output is None:
        for line in lines:
            typer.echo(line)
    else:
        output.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        typer.echo(f"wrote {len(lines)} label(s) to {output}", err=True)
