"""Talking to the agent: ask, the chat UI, the team, the choreography, the queue and its worker."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.options import ConfigOption, JsonOption, KeyOption, ModelOption, echo_json, settings_of
from core.errors import FirebreakError
from core.status import SUCCEEDED, RunStatus

if TYPE_CHECKING:  # imported where used: the CLI starts without the model stacks
    from graph.agent import RunResult

commands = typer.Typer()


@commands.command()
def ask(
    text: Annotated[str, typer.Argument(help="The question.")],
    thread: Annotated[str | None, typer.Option("--thread", help="Continue this conversation.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    user: Annotated[str | None, typer.Option("--user")] = None,
    model: ModelOption = None,
    plan: Annotated[
        bool | None, typer.Option("--plan/--no-plan", help="Plan first (default: [planner] enabled).")
    ] = None,
    idempotency_key: KeyOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the agent one question; the answer streams as it is produced."""
    from graph.agent import Agent, Token

    settings = settings_of(config)

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
                typer.echo(unstreamed(result.answer, streamed), nl=False)
            return agent.settle_script(result)

    report_run(asyncio.run(main()), as_json)


def unstreamed(answer: str, streamed: str) -> str:
    """What of the answer the stream did not show: all of it for a cached or stopped run, a hedge's note."""
    if answer.startswith(streamed):
        return answer[len(streamed) :]
    return f"\n{answer}"


def report_run(result: Any, as_json: bool) -> None:
    """Print a run's outcome. Exit 0 when answered (by the agent or a person) or back in the queue after an
    answer, 3 when it waits for one, else 1."""
    if as_json:
        echo_json(result.as_dict())
    elif result.status == RunStatus.WAITING:
        for item in result.escalations:
            who = "you" if item["audience"] == "user" else "a reviewer"
            options = f" [{' / '.join(item['options'])}]" if item["options"] else ""
            typer.echo(f"\nwaiting for {who}: {item['question']}{options}", err=True)
            typer.echo(f"answer: firebreak escalations answer {item['id'][:8]} <answer>", err=True)
    elif result.status == RunStatus.QUEUED:
        typer.echo(f"run {result.run_id} is back in the queue: a worker resumes it", err=True)
    elif result.status in SUCCEEDED:
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
    if result.status == RunStatus.WAITING:
        raise typer.Exit(3)
    if result.status not in SUCCEEDED and result.status != RunStatus.QUEUED:
        raise typer.Exit(1)


@commands.command()
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

    launch(settings_of(config), route=model)


@commands.command()
def team(
    request: Annotated[str | None, typer.Argument(help="What the team should do with the ticket.")] = None,
    ticket: Annotated[str | None, typer.Option("--ticket", help="The shared ticket the agents work on.")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Go on with this team run (its correlation id) where it stopped.")
    ] = None,
    model: ModelOption = None,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the research → writer → reviewer team on a ticket; then `firebreak trace replay` any of its runs.
    Exit 0 when approved, 3 when a member waits for a reviewer (answer, then `--resume`), 1 otherwise (a member's
    run that ended without an answer stops the team)."""
    from graph.agent import Agent
    from graph.team import resume_team, run_team

    if resume is None and (request is None or ticket is None):
        raise FirebreakError("name the request and --ticket, or --resume CORRELATION_ID to go on with a team run")
    if resume is not None and (request is not None or ticket is not None):
        raise FirebreakError("--resume goes on with the team run's own request and ticket: name neither")

    async def main() -> Any:
        async with Agent.open(settings_of(config)) as agent:
            if resume is not None:
                return await resume_team(agent, resume, tenant_id=tenant)
            assert request is not None and ticket is not None
            return await run_team(agent, request, ticket=ticket, route=model, tenant_id=tenant)

    result = asyncio.run(main())
    if as_json:
        echo_json(result.as_dict())
    else:
        typer.echo("\n".join(_team_lines(result)))
    if result.status == "waiting":  # the team's own status (finished | waiting | stopped), not a run's
        raise typer.Exit(3)
    if result.verdict != "approved":
        raise typer.Exit(1)


def _team_lines(result: Any) -> list[str]:
    """A team run as text: each member's run, what waits for a reviewer, and how to go on or the verdict."""
    lines = [
        f"{member['role']:>9} · run {member['run_id']} · {member['status']} · {member['answer'] or ''}"
        for member in result.runs
    ]
    for item in result.waiting_for:
        options = f" [{' / '.join(item['options'])}]" if item["options"] else ""
        lines.append(f"waiting for a reviewer: {item['id'][:8]} ({item['role']}) {item['question']}{options}")
        lines.append(f"answer: firebreak escalations answer {item['id'][:8]} <answer>")
    if result.status == "waiting":
        lines.append(f"then: firebreak team --resume {result.correlation_id}")
    elif result.status == "stopped":
        member = result.stopped_by
        stopped = f"stopped: the {member['role']} run {member['run_id']} ended {member['status']}"
        lines.append(f"{stopped} ({result.why_stopped()})")
        if member["resumable"]:
            lines.append(f"to try it again: firebreak team --resume {result.correlation_id}")
    else:
        lines.append(f"verdict: {result.verdict} after {result.rounds} round(s) · correlation {result.correlation_id}")
    return lines


@commands.command()
def subscribe(
    role: Annotated[str, typer.Argument(help="research, writer or reviewer; 'all' for every role in this process.")],
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Stop once there is nothing to handle.")] = False,
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    model: ModelOption = None,
    config: ConfigOption = None,
) -> None:
    """Run an agent of the choreography: it reacts to the ticket changes it subscribes to (Ctrl-C stops it)."""
    from graph.agent import Agent
    from graph.choreography import settle
    from graph.choreography import subscribe as follow

    settings = settings_of(config)
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


@commands.command()
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
    from app.services import open_stores
    from graph.worker import submit as submit_run

    settings = settings_of(config)
    job = submit_run(
        open_stores(settings).queue,
        settings,
        text,
        thread_id=thread,
        tenant_id=tenant,
        user_id=user,
        route=model,
        idempotency_key=idempotency_key,
    )
    if as_json:
        echo_json({"run_id": job.id, "thread_id": job.thread_id, "status": job.status})
    else:
        typer.echo(job.id)


@commands.command()
def worker(
    config: ConfigOption = None,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Stop when no run is due.")] = False,
) -> None:
    """Process queued runs: leases, retries with backoff, dead-letter after the last attempt."""
    import signal

    from app.services import open_stores
    from graph.agent import Agent
    from graph.worker import Worker

    settings = settings_of(config)
    store = open_stores(settings).queue

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
