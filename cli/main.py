"""The ``firebreak`` command line.

Errors end with a one-line message and a non-zero exit code, never a
traceback (set ``FIREBREAK_DEBUG=1`` to see one).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import click
import typer

from core.config import Settings, load_settings
from core.errors import FirebreakError

if TYPE_CHECKING:  # imported where used: the CLI starts without the database and model stacks
    from memory.runs import RunStore
    from memory.tables import Run

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Firebreak: an agent that must not burn down prod.")
trace_cli = typer.Typer(no_args_is_help=True, help="Inspect traces.")
db_cli = typer.Typer(no_args_is_help=True, help="Manage the database schema.")
eval_cli = typer.Typer(no_args_is_help=True, help="Run evaluation suites.")
dlq_cli = typer.Typer(no_args_is_help=True, help="Inspect and requeue dead-lettered runs.")
escalations_cli = typer.Typer(no_args_is_help=True, help="The reviewer's inbox: list, show and answer escalations.")
labels_cli = typer.Typer(no_args_is_help=True, help="Human answers as labeled data.")
cache_cli = typer.Typer(no_args_is_help=True, help="Inspect and invalidate the semantic cache.")
context_cli = typer.Typer(no_args_is_help=True, help="A thread's context checkpoints (summaries of older turns).")
plan_cli = typer.Typer(no_args_is_help=True, help="Plans of planned runs: versions, and planned vs executed.")
canary_cli = typer.Typer(no_args_is_help=True, help="Roll a release out to a growing share of users, or back.")
operators_cli = typer.Typer(no_args_is_help=True, help="Who may act on runs: add an operator, read the audit log.")
cli.add_typer(trace_cli, name="trace")
cli.add_typer(db_cli, name="db")
cli.add_typer(eval_cli, name="eval")
cli.add_typer(dlq_cli, name="dlq")
cli.add_typer(escalations_cli, name="escalations")
cli.add_typer(labels_cli, name="labels")
cli.add_typer(cache_cli, name="cache")
cli.add_typer(context_cli, name="context")
cli.add_typer(plan_cli, name="plan")
cli.add_typer(canary_cli, name="canary")
cli.add_typer(operators_cli, name="operators")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="A TOML file merged over firebreak.toml.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Send a retry with the same key: the same request gets the first run and its result, never a "
        "second run; another request under the key is refused (keys last [idempotency] request_key_ttl_s).",
    ),
]
T = TypeVar("T")


def _settings(config: Path | None) -> Settings:
    return load_settings(config)


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@cli.command()
def ask(
    text: Annotated[str, typer.Argument(help="The question.")],
    thread: Annotated[str | None, typer.Option("--thread", help="Continue this conversation.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    user: Annotated[str | None, typer.Option("--user")] = None,
    model: Annotated[str | None, typer.Option("--model", help="A route name or a model such as scripted/demo.")] = None,
    plan: Annotated[
        bool | None, typer.Option("--plan/--no-plan", help="Plan first (default: [planner] enabled).")
    ] = None,
    idempotency_key: KeyOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the agent one question; the answer streams as it is produced."""
    from graph.agent import Agent, RunResult, Token

    settings = _settings(config)

    async def main() -> RunResult:
        async with Agent.open(settings) as agent:
            result, streamed = None, ""
            async for item in agent.stream(
                text,
                thread_id=thread,
                tenant_id=tenant,
                user_id=user,
                route=model,
                plan=plan,
                idempotency_key=idempotency_key,
            ):
                if isinstance(item, Token):
                    streamed += item.text
                    if not as_json:
                        typer.echo(item.text, nl=False)
                else:
                    result = item
            assert result is not None
            if not as_json and result.answer:
                typer.echo(_unstreamed(result.answer, streamed), nl=False)
            return agent.settle_script(result)

    result = asyncio.run(main())
    _report(result, as_json)


def _unstreamed(answer: str, streamed: str) -> str:
    """What of the answer the stream did not show: all of it for a cached or stopped run, a hedge's note."""
    if answer.startswith(streamed):
        return answer[len(streamed) :]
    return f"\n{answer}"


def _report(result: Any, as_json: bool) -> None:
    """Print a run's outcome. Exit 0 when answered (by the agent or a person) or back in the queue after an
    answer, 3 when it waits for one, else 1."""
    if as_json:
        _echo_json(result.as_dict())
    elif result.status == "waiting":
        for item in result.escalations:
            who = "you" if item["audience"] == "user" else "a reviewer"
            options = f" [{' / '.join(item['options'])}]" if item["options"] else ""
            typer.echo(f"\nwaiting for {who}: {item['question']}{options}", err=True)
            typer.echo(f"answer: firebreak escalations answer {item['id'][:8]} <answer>", err=True)
    elif result.status == "queued":
        typer.echo(f"run {result.run_id} is back in the queue: a worker resumes it", err=True)
    elif result.status in ("answered", "handed_off"):
        usage = result.usage
        if result.cache:
            from app.cache.semantic import hit_note

            typer.echo(f"\n\n{hit_note(result.cache)}", err=True, nl=False)
        typer.echo(
            f"\n\nrun {result.run_id} · {usage.input_tokens} in / {usage.output_tokens} out tokens"
            f" · ${usage.cost_usd:.6f} · thread {result.thread_id}\ntrace: firebreak trace show {result.run_id}",
            err=True,
        )
    else:
        typer.echo(
            f"error: run {result.run_id} {result.status}: {result.error or result.answer or 'no answer'}", err=True
        )
    if result.status == "waiting":
        raise typer.Exit(3)
    if result.status not in ("answered", "handed_off", "queued"):
        raise typer.Exit(1)


@cli.command()
def ui(
    config: ConfigOption = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Pin the chat and team runs to this route (and the stable release); default: the release "
            "serving each user, as on every entry path.",
        ),
    ] = None,
) -> None:
    """Open the chat UI (Gradio) on the configured host and port."""
    from ui.app import launch

    launch(_settings(config), route=model)


@cli.command()
def team(
    request: Annotated[str | None, typer.Argument(help="What the team should do with the ticket.")] = None,
    ticket: Annotated[str | None, typer.Option("--ticket", help="The shared ticket the agents work on.")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Go on with this team run (its correlation id) where it stopped.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="A route name or a model such as scripted/demo.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the research → writer → reviewer team on a ticket; then `firebreak trace replay` any of its runs.
    Exit 0 when approved, 3 when a member waits for a reviewer (answer, then `--resume`), 1 otherwise."""
    from graph.agent import Agent
    from graph.team import resume_team, run_team

    if resume is None and (request is None or ticket is None):
        raise FirebreakError("name the request and --ticket, or --resume CORRELATION_ID to go on with a team run")
    if resume is not None and (request is not None or ticket is not None):
        raise FirebreakError("--resume goes on with the team run's own request and ticket: name neither")

    async def main() -> Any:
        async with Agent.open(_settings(config)) as agent:
            if resume is not None:
                return await resume_team(agent, resume, tenant_id=tenant)
            assert request is not None and ticket is not None
            return await run_team(agent, request, ticket=ticket, route=model, tenant_id=tenant)

    result = asyncio.run(main())
    if as_json:
        _echo_json(result.as_dict())
    else:
        for member in result.runs:
            typer.echo(f"{member['role']:>9} · run {member['run_id']} · {member['status']} · {member['answer'] or ''}")
        for item in result.waiting_for:
            options = f" [{' / '.join(item['options'])}]" if item["options"] else ""
            typer.echo(f"waiting for a reviewer: {item['id'][:8]} ({item['role']}) {item['question']}{options}")
            typer.echo(f"answer: firebreak escalations answer {item['id'][:8]} <answer>")
        if result.status == "waiting":
            typer.echo(f"then: firebreak team --resume {result.correlation_id}")
        else:
            typer.echo(
                f"verdict: {result.verdict} after {result.rounds} round(s) · correlation {result.correlation_id}"
            )
    if result.status == "waiting":
        raise typer.Exit(3)
    if result.verdict != "approved":
        raise typer.Exit(1)


@cli.command()
def subscribe(
    role: Annotated[str, typer.Argument(help="research, writer or reviewer; 'all' for every role in this process.")],
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Stop once there is nothing to handle.")] = False,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    model: Annotated[str | None, typer.Option("--model", help="A route name or a model such as scripted/demo.")] = None,
    config: ConfigOption = None,
) -> None:
    """Run an agent of the choreography: it reacts to the ticket changes it subscribes to (Ctrl-C stops it)."""
    from graph.agent import Agent
    from graph.choreography import settle
    from graph.choreography import subscribe as follow

    settings = _settings(config)
    tenant_id, _ = settings.identity.resolve(tenant, None)

    async def main() -> dict[str, int]:
        async with Agent.open(settings) as agent:
            if role == "all" and until_idle:
                return await settle(agent, tenant_id=tenant_id, route=model)
            if role == "all":
                raise FirebreakError("run every role in one process only with --until-idle; else one role each")
            return {role: await follow(agent, role, tenant_id=tenant_id, until_idle=until_idle, route=model)}

    for name, count in asyncio.run(main()).items():
        typer.echo(f"{name}: {count} event(s) handled")


def _stored_run(config: Path | None, run_id: str) -> tuple[RunStore, Run]:
    """The run store of the configured database and the run ``run_id`` if the operator may see it."""
    from app.services import prepare_database
    from memory.runs import RunStore

    settings = _settings(config)
    operator = _reader(settings)
    runs = RunStore(prepare_database(settings))
    run = runs.get(run_id)
    if run is None:
        raise FirebreakError(f"no run {run_id!r} in this database")
    _seen(operator, run.tenant_id, f"run {run_id}")
    return runs, run


@trace_cli.command("show")
def trace_show(run_id: str, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show a run's spans as a tree with durations."""
    from app.traces import format_trace

    runs, run = _stored_run(config, run_id)
    spans = runs.spans(run_id)
    if as_json:
        _echo_json({"run_id": run_id, "trace_id": run.trace_id, "spans": [span.model_dump() for span in spans]})
        return
    typer.echo(f"run {run_id} · {run.status} · trace {run.trace_id}")
    typer.echo(format_trace(spans) or "(no spans recorded)")


@trace_cli.command("replay")
def trace_replay(run_id: str, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The shared entities a run (or the team run it belongs to) changed: every version in order, who made it,
    what changed and the state after."""
    from memory.shared_state import EntityStore

    runs, run = _stored_run(config, run_id)
    correlation = run.correlation_id or run.id
    events = EntityStore(runs.engine).changes_in(correlation)
    if as_json:
        _echo_json({"run_id": run_id, "correlation_id": correlation, "changes": [e.model_dump() for e in events]})
        return
    if not events:
        typer.echo(f"run {run_id} changed no shared entity")
    for event in events:
        patch = ", ".join(f"{field}={value!r}" for field, value in event.patch.items())
        typer.echo(f"{event.kind} {event.key} v{event.version} · {event.type} by {event.actor} · {patch}")
        typer.echo(f"  now: {json.dumps(event.after, sort_keys=True, default=str)}")


def _ledger(config: Path | None) -> Any:
    """The blast-radius ledger of the configured database, with the configured caps."""
    from app.limits.ledger import BlastRadius
    from app.services import prepare_database
    from memory.ledger import LedgerStore

    settings = _settings(config)
    return BlastRadius(LedgerStore(prepare_database(settings)), settings.limits, rates=settings.rate_limits)


@cli.command("runs")
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
    from app.dashboards import RunFilter, find_runs
    from app.services import prepare_database

    settings = _settings(config)
    operator = _reader(settings)
    if unclean:
        _print_attention(settings, operator, tenant, as_json, limit=limit)
        return
    which = RunFilter(status, route, release, _only_tenant(operator, tenant))
    rows = [row for row in find_runs(prepare_database(settings), which, limit=limit) if operator.sees(row.tenant_id)]
    if as_json:
        _echo_json([row.model_dump() for row in rows])
        return
    if not rows:
        typer.echo("no run matches")
    for row in rows:
        typer.echo(
            f"{row.id}  {row.status:<16} {row.route:<24} {row.release:<10} {row.tenant_id:<12} "
            f"{row.created_at:%Y-%m-%d %H:%M:%S}  {row.question[:60]!r}"
        )


@cli.command()
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

    ledger = _ledger(config)
    report = ops_report(ledger.store.engine, ledger, window_s=window_s or DEFAULT_WINDOW_S)
    if as_json:
        budgets = [{**asdict(line), "percent": line.percent} for line in report.budgets]
        _echo_json({**asdict(report), "budgets": budgets})
        return
    typer.echo("\n".join(_ops_lines(report)))


def _ops_lines(report: Any) -> list[str]:
    """The ops report as text: a table per route and per release, then one line per panel."""
    from ui.render import duration_text, format_cost, percent_text

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


@cli.command()
def breakers(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List every circuit breaker: state, trips, and when an open one will probe again."""
    import time

    from app.services import prepare_database
    from memory.breakers import BreakerStore

    store = BreakerStore(prepare_database(_settings(config)))
    rows, now = store.all(), time.time()
    if as_json:
        _echo_json([row.model_dump() for row in rows])
        return
    if not rows:
        typer.echo("no breaker has been used yet")
    for row in rows:
        wait = f"probe in {row.open_until - now:.0f}s" if row.state == "open" and row.open_until > now else ""
        typer.echo(f"{row.name:<48} {row.state:<10} trips={row.trips:<3} {wait}".rstrip())
    for change in store.transitions(limit=10):
        typer.echo(f"  {change.name}: {change.from_state} → {change.to_state} ({change.reason})")


def _queue(config: Path | None) -> tuple[Settings, Any]:
    from app.services import prepare_database
    from memory.queue import QueueStore

    settings = _settings(config)
    return settings, QueueStore(prepare_database(settings))


@cli.command()
def submit(
    text: Annotated[str, typer.Argument(help="The question.")],
    thread: Annotated[str | None, typer.Option("--thread")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    user: Annotated[str | None, typer.Option("--user")] = None,
    model: Annotated[str | None, typer.Option("--model")] = None,
    idempotency_key: KeyOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue a question for `firebreak worker`; prints its run id."""
    from graph.worker import submit as submit_run

    settings, store = _queue(config)
    job = submit_run(
        store,
        settings,
        text,
        thread_id=thread,
        tenant_id=tenant,
        user_id=user,
        route=model,
        idempotency_key=idempotency_key,
    )
    if as_json:
        _echo_json({"run_id": job.id, "thread_id": job.thread_id, "status": job.status})
    else:
        typer.echo(job.id)


@cli.command()
def worker(
    config: ConfigOption = None,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Stop when no run is due.")] = False,
) -> None:
    """Process queued runs: leases, retries with backoff, dead-letter after the last attempt."""
    import signal

    from graph.agent import Agent
    from graph.worker import Worker

    settings, store = _queue(config)

    async def main() -> None:
        async with Agent.open(settings) as agent:
            work = Worker(agent, store)
            typer.echo(f"worker {work.name} started", err=True)
            if until_idle:
                typer.echo(f"processed {await work.run_until_idle()} runs", err=True)
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await work.run_forever(stop)

    asyncio.run(main())


@dlq_cli.command("list")
def dlq_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every run (from any entry path) and event handling that did not end with a clean answer, with what to
    do: requeue it, the escalation it waits on, or why nothing is to be done (= runs --unclean)."""
    settings = _settings(config)
    _print_attention(settings, _reader(settings), None, as_json)


def _print_attention(settings: Settings, operator: Any, tenant: str | None, as_json: bool, limit: int = 100) -> None:
    import time

    from app.operators import needs_attention
    from app.services import prepare_database

    if tenant is not None:
        _seen(operator, tenant, f"tenant {tenant!r}")
    items = needs_attention(prepare_database(settings), operator, now=time.time(), limit=limit)
    items = [item for item in items if tenant in (None, item.tenant_id)]
    if as_json:
        _echo_json([item.as_dict() for item in items])
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
    settings, store = _queue(config)
    operator = _reader(settings)
    letter = store.dead_letter(letter_id)
    if letter is None:
        raise FirebreakError(f"no dead letter {letter_id}")
    _seen(operator, letter.tenant_id, f"dead letter {letter_id}")
    _echo_json(letter.model_dump())


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

    from app.operators import find_attention, needs_attention, requeue_as
    from app.services import prepare_database

    settings = _settings(config)
    operator = _operator(settings)
    if all_runs == (target is not None):
        raise FirebreakError("give a run id (or event:<id>) or --all, not both")
    engine, now = prepare_database(settings), time.time()
    # --all means everything to requeue that this operator may see; one named target is refused (and recorded)
    # if it is another tenant's.
    targets = (
        [find_attention(engine, _everyone(operator), target, now=now)]
        if target is not None
        else [item for item in needs_attention(engine, operator, now=now) if item.action == "requeue"]
    )
    store = _queue(config)[1]
    moved = sum(
        requeue_as(store, operator, item, now=now, max_attempts=settings.queue.max_attempts) for item in targets
    )
    typer.echo(f"requeued {moved} of {len(targets)}")


def _everyone(operator: Any) -> Any:
    """``operator`` able to see every tenant, to find a target: acting on it then checks their tenants."""
    from dataclasses import replace

    return replace(operator, tenants=())


@cli.command()
def budgets(
    scope: Annotated[str, typer.Option("--scope", help="Prefix such as day:acme or session:t-1.")] = "",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Usage against the blast-radius caps, per scope (request, session, tenant day)."""
    from dataclasses import asdict

    from app.dashboards import budget_lines

    report = [asdict(line) for line in budget_lines(_ledger(config), scope)]
    if as_json:
        _echo_json(report)
        return
    if not report:
        typer.echo("nothing has been spent yet")
    for line in report:
        typer.echo(
            f"{line['scope']:<60} {line['resource']:<13} {line['used']:>10g} used "
            f"{line['reserved']:>8g} held / {'no cap' if line['limit'] is None else format(line['limit'], 'g')}"
        )


def _with_agent(config: Path | None, work: Callable[[Any], Any]) -> Any:
    """Open the agent (so answers can resume runs), run ``work(agent)``, close it."""
    from graph.agent import Agent

    async def main() -> Any:
        async with Agent.open(_settings(config)) as agent:
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

    operator = _reader(_settings(config))

    async def work(agent: Any) -> Any:
        await agent.sweep()
        return agent.services.escalations.list(status=None if status == "all" else status)

    rows = [row for row in _with_agent(config, work) if operator.sees(row.tenant_id)]
    if as_json:
        _echo_json([row.model_dump() for row in rows])
        return
    if not rows:
        typer.echo(f"no {status} escalations" if status != "all" else "no escalations")
    for row in rows:
        typer.echo(_escalation_line(row))


@escalations_cli.command("show")
def escalations_show(escalation_id: str, config: ConfigOption = None) -> None:
    """One escalation in full: why, the question, its options and its context (summary, history, action)."""
    from app.services import prepare_database
    from memory.escalations import EscalationStore

    settings = _settings(config)
    operator = _reader(settings)
    row = EscalationStore(prepare_database(settings)).find(escalation_id)
    _seen(operator, row.tenant_id, f"escalation {escalation_id}")
    _echo_json(row.model_dump())


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

    operator = _operator(_settings(config))

    async def work(agent: Any) -> Any:
        escalation = agent.services.escalations.find(escalation_id)
        result = await answer_as(agent, operator, escalation, answer, note=note)
        return None if result is None else agent.settle_script(result)

    result = _with_agent(config, work)
    if result is None:
        if as_json:
            _echo_json({"answered": escalation_id, "run": None})
        else:
            typer.echo(f"answered {escalation_id}; its run waits for other answers or goes on by itself")
        return
    if not as_json and result.answer:
        typer.echo(result.answer)
    if not as_json:
        _team_hint(config, result.run_id)
    _report(result, as_json)


def _team_hint(config: Path | None, run_id: str) -> None:
    """A team member's run finished its own part; the team run goes on only when someone resumes it."""
    from app.services import prepare_database
    from graph.team import in_team_run
    from memory.runs import RunStore

    settings = _settings(config)
    run = RunStore(prepare_database(settings)).get(run_id)
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
    from app.containment.labels import export_jsonl
    from app.services import prepare_database
    from memory.escalations import EscalationStore

    if fmt != "jsonl":
        raise FirebreakError(f"unknown format {fmt!r}: use jsonl")
    settings = _settings(config)
    operator = _reader(settings)
    answered = EscalationStore(prepare_database(settings)).answered()
    lines = export_jsonl([row for row in answered if operator.sees(row.tenant_id)])
    if output is None:
        for line in lines:
            typer.echo(line)
    else:
        output.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        typer.echo(f"wrote {len(lines)} label(s) to {output}", err=True)


def _cache_store(config: Path | None, *, read: bool) -> tuple[Any, Any]:
    """The operator (who must be someone to ``read``) and the cache store of the configured database."""
    from app.services import prepare_database
    from memory.cache import CacheStore

    settings = _settings(config)
    return (_reader if read else _operator)(settings), CacheStore(
        prepare_database(settings), settings.cache.max_entries
    )


@cache_cli.command("stats")
def cache_stats(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Live entries and hits per layer, tenant and route."""
    import time

    operator, store = _cache_store(config, read=True)
    rows = [row for row in store.stats(now=time.time()) if operator.sees(row["tenant_id"])]
    if as_json:
        _echo_json(rows)
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

    operator, store = _cache_store(config, read=True)
    which = _only_tenant(operator, tenant)
    entries = [
        entry for entry in store.recent(limit=limit, tenant_id=which, now=time.time()) if operator.sees(entry.tenant_id)
    ]
    if as_json:
        _echo_json([entry.model_dump(exclude={"vector", "scope"}) for entry in entries])
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
    operator, store = _cache_store(config, read=False)
    removed = invalidate_as(store, operator, now=time.time(), **chosen)
    typer.echo(f"removed {removed} cache entr{'y' if removed == 1 else 'ies'}")


@context_cli.command("show")
def context_show(
    thread: Annotated[str, typer.Argument(help="The thread id.")],
    raw: Annotated[bool, typer.Option("--raw", help="Also print the messages each checkpoint replaced.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every context checkpoint of a thread, oldest first: tokens before and after, summary, facts."""
    from app.services import prepare_database
    from memory.context import ContextStore

    rows = ContextStore(prepare_database(_settings(config))).for_thread(thread)
    if as_json:
        _echo_json([row.model_dump(exclude=set() if raw else {"raw"}) for row in rows])
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


@plan_cli.command("show")
def plan_show(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """A run's plan versions (why each replaced the one before) and the tool calls it executed."""
    from app.planning.report import plan_report, report_lines
    from memory.plans import PlanStore

    runs, _ = _stored_run(config, run_id)
    report = {"run_id": run_id, **plan_report(PlanStore(runs.engine).versions(run_id), runs.events(run_id))}
    if as_json:
        _echo_json(report)
        return
    typer.echo("\n".join(report_lines(report)))


def _canary(config: Path | None) -> Any:
    from app.services import build_services

    return build_services(_settings(config))


def _canary_act(config: Path | None, action: str, as_json: bool, act: Callable[[Any, str], Any], **what: Any) -> None:
    """Do ``act(canary, operator name)`` as the audited canary ``action``, then print the rollout."""
    from app.operators import acting
    from memory.audit import AuditLog

    services = _canary(config)
    operator = _operator(services.settings)
    with acting(AuditLog(services.engine), operator, action, **what):
        act(services.canary, operator.name)
    _print_rollout(services.canary, as_json)


def _operator(settings: Settings) -> Any:
    """Who runs this command (see [operators]): the owner of FIREBREAK_OPERATOR_TOKEN, else the local person."""
    from app.operators import cli_operator

    return cli_operator(settings.operators, os.environ)


def _reader(settings: Settings) -> Any:
    """The operator, who must be someone to read runs, traces, escalations, dead letters or the cache."""
    from core.errors import OperatorRefused

    operator = _operator(settings)
    refusal = operator.read_refusal()
    if refusal is not None:
        raise OperatorRefused(refusal)
    return operator


def _seen(operator: Any, tenant_id: str | None, what: str) -> None:
    """Refuse to show ``what`` of a tenant the operator may not see; it reads as if it did not exist."""
    from core.errors import OperatorRefused

    if not operator.sees(tenant_id):
        raise OperatorRefused(f"{operator.name} may not see {what}")


def _only_tenant(operator: Any, tenant: str | None) -> str | None:
    """The tenant a listing is narrowed to: the one asked for (if seen), else an operator's only tenant."""
    if tenant is not None:
        _seen(operator, tenant, f"tenant {tenant!r}")
        return tenant
    return operator.tenants[0] if len(operator.tenants) == 1 else None


def _print_rollout(canary: Any, as_json: bool) -> None:
    from app.canary.report import report_lines, rollout_report

    report = rollout_report(canary)
    if as_json:
        _echo_json(report)
    else:
        typer.echo("\n".join(report_lines(report)))


@canary_cli.command("start")
def canary_start(
    release: Annotated[str, typer.Argument(help="A release of [releases] (its name is its version).")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start rolling RELEASE out against the stable release, at the first step of [canary] steps."""
    _canary_act(config, "canary.start", as_json, lambda canary, by: canary.start(release, by=by), target=release)


@canary_cli.command("status")
def canary_status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The stable release and the active (or latest) rollout: both arms, this step's analysis, decisions."""
    services = _canary(config)
    _reader(services.settings)
    _print_rollout(services.canary, as_json)


@canary_cli.command("promote")
def canary_promote(
    full: Annotated[bool, typer.Option("--full", help="Skip the remaining steps: 100% now.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Advance the active rollout one step (or all the way with --full), whatever its analysis says."""
    _canary_act(
        config,
        "canary.promote",
        as_json,
        lambda canary, by: canary.promote(by=by, full=full),
        target="active rollout",
        detail="to 100%" if full else "one step",
    )


@canary_cli.command("rollback")
def canary_rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why, for the record and the alert.")] = "rolled back by hand",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send all new traffic back to the control at once; recorded and alerted."""
    _canary_act(
        config,
        "canary.rollback",
        as_json,
        lambda canary, by: canary.rollback(by=by, reason=reason),
        target="active rollout",
        detail=reason,
    )


@operators_cli.command("add")
def operators_add(
    name: Annotated[str, typer.Argument(help="The operator's name, as the audit log and the UI login show it.")],
    role: Annotated[str, typer.Option("--role", help="reviewer, operator or admin.")] = "reviewer",
    tenants: Annotated[list[str] | None, typer.Option("--tenant", help="Limit to this tenant (repeatable).")] = None,
) -> None:
    """Make a token for a new operator; print it once, and the [operators.people] table to add to the config."""
    from app.operators import RANKS, TOKEN_VARIABLE, hash_token, new_token

    if role not in RANKS:
        raise FirebreakError(f"unknown role {role!r}: use one of {', '.join(RANKS)}")
    token = new_token()
    typer.echo(f"token for {name} (shown once; give it to them, they pass it as {TOKEN_VARIABLE} or the UI password):")
    typer.echo(f"  {token}\n\nadd to firebreak.toml:\n")
    typer.echo(
        f'[operators.people.{json.dumps(name)}]\nrole = {json.dumps(role)}\ntoken_sha256 = "{hash_token(token)}"'
    )
    if tenants:
        typer.echo(f"tenants = {json.dumps(tenants)}")


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
    from app.services import prepare_database
    from memory.audit import AuditLog

    settings = _settings(config)
    rows = visible_actions(AuditLog(prepare_database(settings)), _reader(settings), of=operator, limit=limit)
    if as_json:
        _echo_json([row.model_dump() for row in rows])
        return
    if not rows:
        typer.echo("no operator actions recorded")
    for row in rows:
        when = datetime.fromtimestamp(row.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(
            f"{when} {row.operator:<20} {row.role or '-':<9} {row.via:<3} {row.action:<17} "
            f"{row.target[:24]:<24} {row.outcome[:80]}"
        )


@eval_cli.command("gate")
def eval_gate(
    route: Annotated[str | None, typer.Option("--route", help="Only this route's decisions.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Calibration of the confidence gate from its stored scores and outcomes: how often each band was right."""
    from app.services import prepare_database
    from evals.gate import calibration
    from memory.gate import GateStore

    settings = _settings(config)
    # Bands are recorded with each decision; the thresholds shown are the route's, or the defaults.
    thresholds = settings.gate.for_route(route) if route else settings.gate
    report = calibration(GateStore(prepare_database(settings)).all(route=route), thresholds)
    if as_json:
        _echo_json(report)
        return
    for band in report["bands"]:
        accuracy = "—" if band["accuracy"] is None else f"{band['accuracy']:.0%}"
        typer.echo(
            f"{band['band']:<8} {band['range']:<12} decisions={band['decisions']:<5} "
            f"with outcome={band['with_outcome']:<5} right={band['right']:<5} accuracy={accuracy}"
        )
    typer.echo(report["advice"])


def _echo_cache_part(name: str, part: dict[str, Any]) -> None:
    default = part["default"]
    verdict = "meets the targets" if part["meets_targets"] else "MISSES the targets"
    typer.echo(
        f"{name}: {part['pairs']} pairs  precision {default['precision']:.3f}  recall {default['recall']:.3f}  "
        f"tp={default['tp']} fp={default['fp']} fn={default['fn']} tn={default['tn']} unsure={default['unsure']}  "
        f"{verdict}"
    )
    stages = (f"{row['stage']} {row['precision']:.3f}/{row['recall']:.3f}" for row in part["stages"])
    typer.echo("  stages (precision/recall): " + "  ".join(stages))
    for kind, count in default["false_hits_by_kind"].items():
        if count:
            typer.echo(f"  false hits ({kind}): {count}")
    if part["cross_tenant"]["hits"]:
        typer.echo(f"  cross-tenant hits: {part['cross_tenant']['hits']}")


@eval_cli.command("cache")
def eval_cache(
    dataset: Annotated[
        Path | None,
        typer.Option("--dataset", help="Your own pairs: JSONL with cached, query, same (and optional kind, tenant)."),
    ] = None,
    route: Annotated[str | None, typer.Option("--route", help="Use this route's thresholds.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Precision and recall of the semantic cache through the real cache: dev split, frozen test split, public sets."""
    from evals.cache_pairs import DatasetError
    from evals.cache_suite import main as run_cache_eval

    try:
        report = run_cache_eval(_settings(config), dataset, route=route)
    except (DatasetError, FileNotFoundError) as exc:
        raise FirebreakError(str(exc)) from None
    if as_json:
        _echo_json(report)
    else:
        targets = report["targets"]
        typer.echo(f"route {report['route']}; targets: precision {targets['precision']:g} recall {targets['recall']:g}")
        parts = (
            {report["dataset"]: report}
            if dataset is not None
            else {"dev": report["dev"], "test (frozen)": report["test"]}
            | {f"public {name}": part for name, part in report["public"].items()}
        )
        for name, part in parts.items():
            _echo_cache_part(name, part)
        if dataset is None:
            calibration = report["calibration"]
            shipped, fitted = calibration["shipped"], calibration["fitted_on_dev"]
            typer.echo(f"verifier calibration: shipped {shipped}, fitted on dev {fitted}")
            if not report["test"]["frozen"]:
                typer.echo(f"the test split changed (SHA-256 {report['test']['sha256'][:12]}…): it is no longer frozen")
    if not report["passed"]:
        raise typer.Exit(1)


@eval_cli.command("containment")
def eval_containment(as_json: JsonOption = False) -> None:
    """The seed's $200 and production-mutation stories, measured: spend caps, overshoot, unapproved writes."""
    from evals.containment import main as run_containment

    _print_eval(run_containment(), as_json)


@eval_cli.command("state")
def eval_state(as_json: JsonOption = False) -> None:
    """Context over 200 turns, the seed's replanning example, three agents on one ticket: measured."""
    from evals.state import main as run_state

    _print_eval(run_state(), as_json)


@eval_cli.command("operations")
def eval_operations(as_json: JsonOption = False) -> None:
    """Canary rollouts over simulated traffic: a worse release rolled back, a cheaper one promoted."""
    from evals.operations import main as run_operations

    _print_eval(run_operations(), as_json)


@eval_cli.command("security")
def eval_security(as_json: JsonOption = False) -> None:
    """Every guard on every entry path, attacked: cross-user cache, streamed leaks, injected writes, ..."""
    from evals.security import main as run_security

    _print_eval(run_security(), as_json)


@eval_cli.command("resilience")
def eval_resilience(as_json: JsonOption = False) -> None:
    """The seed's dead-API story, measured: how many calls reach a dead backend (target: at most 10)."""
    from evals.resilience import main as run_resilience

    _print_eval(run_resilience(), as_json)


@eval_cli.command("quality")
def eval_quality(
    model: Annotated[
        str | None,
        typer.Option("--model", help="A route (e.g. chat, the local model) or a model; default: the scripted model."),
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="Your own cases: a TOML file like evals/data/quality.toml.")
    ] = None,
    min_score: Annotated[
        float | None,
        typer.Option(
            "--min-score", min=0.0, max=1.0, help="Fail below this score; default: the route's committed baseline."
        ),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Task cases (tools, multi-step, refusals, escalations) through the real agent: each expectation scored."""
    from evals.quality import CaseError
    from evals.quality import main as run_quality

    try:
        report = run_quality(config, route=model, dataset=dataset, min_score=min_score)
    except (CaseError, FileNotFoundError) as exc:
        raise FirebreakError(str(exc)) from None
    if not as_json:
        kinds = ", ".join(f"{kind} {share:.0%}" for kind, share in report["score_by_kind"].items())
        skipped = f"; skipped (no script): {', '.join(report['skipped'])}" if report["skipped"] else ""
        typer.echo(f"{report['model']}: score {report['score']:.0%} of cases ({kinds}){skipped}")
    typer.echo(report["verdict"], err=as_json or not report["passed"])
    _print_eval(report, as_json)


@eval_cli.command("all")
def eval_all(
    suites: Annotated[
        list[str] | None, typer.Option("--suite", help="Only this suite (repeatable); default: every suite.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Report folder; default: evals/reports.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every suite in one run: writes latest.json, latest.md and plots (PNG) to evals/reports."""
    from evals.all import REPORTS, UnknownSuite, as_one_suite
    from evals.all import main as run_all

    folder = out or REPORTS
    try:
        summary = run_all(suites, folder)
    except UnknownSuite as exc:
        raise FirebreakError(str(exc)) from None
    typer.echo(f"report: {folder / 'latest.md'}", err=True)
    _print_eval(summary if as_json else as_one_suite(summary), as_json)


def _print_eval(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _echo_json(report)
    else:
        for scenario in report["scenarios"]:
            figures = ", ".join(f"{k}={v}" for k, v in scenario.items() if k not in ("name", "passed"))
            typer.echo(f"{'pass' if scenario['passed'] else 'FAIL'}  {scenario['name']}: {figures}")
    if not report["passed"]:
        raise typer.Exit(1)


@db_cli.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply pending migrations to the configured database."""
    from memory.engine import make_engine
    from memory.migrate import upgrade

    settings = _settings(config)
    revision = upgrade(make_engine(settings.database_url))
    typer.echo(f"database at revision {revision}")


@cli.command()
def setup(config: ConfigOption = None) -> None:
    """Prepare everything a first run needs: the embedded model file and the database."""
    from app.gateway.model_files import assemble_model
    from memory.engine import make_engine
    from memory.migrate import upgrade

    settings = _settings(config)
    path = assemble_model(settings.local_model.cache_path)
    typer.echo(f"model ready: {path}")
    typer.echo(f"database at revision {upgrade(make_engine(settings.database_url))}")


@cli.command()
def doctor(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Check every configured store and model; exit 1 if any is unusable."""
    from app.doctor import run_checks

    checks = asyncio.run(run_checks(_settings(config)))
    if as_json:
        _echo_json([check.__dict__ for check in checks])
    else:
        for check in checks:
            typer.echo(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<40} {check.detail}")
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


def _guarded(command: Callable[[], T]) -> T:
    try:
        return command()
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FirebreakError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if os.environ.get("FIREBREAK_DEBUG"):
            raise
        # Only the first line: a database error's next lines are its SQL and parameters (prompts, user data).
        said = (str(exc).strip().splitlines() or ["no message"])[0]
        typer.echo(f"error: unexpected {type(exc).__name__}: {said} (set FIREBREAK_DEBUG=1 for details)", err=True)
        sys.exit(2)


def main() -> None:
    """Console-script entry point."""
    code = _guarded(lambda: cli(standalone_mode=False))
    sys.exit(code if isinstance(code, int) else 0)
