"""Requests as callers send them (issue 16, items 4 and 8), measured on every entry path.

``canary_entry_paths``: with a rollout serving the canary to the user, a run on each entry path (the Python
API, ``firebreak ask``, the queue, a team, a choreography subscriber, the UI chat) that names no model must
be served by the canary, and one that names a model must be pinned to the stable release.

``idempotency_key_resubmit``: a client that sends a request again under its idempotency key (the Python API,
``firebreak ask``, ``submit``) gets the first run back, and its email is sent once; another request under a
used key is refused before anything runs.

Each scenario runs the real Agent, queue, team and UI handler on a SQLite file under ``folder``, with the
scripted model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session, select
from typer.testing import CliRunner

from app.services import build_services, prepare_database
from cli.main import cli
from core.config import Settings, load_settings
from core.errors import IdempotencyKeyConflict
from evals.scenario import Scenario
from examples.support_desk.tables import OutboxEmail
from graph.agent import Agent
from graph.choreography import settle
from graph.team import run_team
from graph.worker import Worker, submit
from memory.queue import QueueStore
from memory.shared_state import EntityStore
from memory.tables import Operation, Run

QUESTION = "When do you open?"
PINNED = "scripted/demo"  # a model the caller names: the run must stay on the stable release
# A rollout of v2 that serves the local user from its first step and never concludes on its own.
ROLLOUT_TOML = """
[routes.chat]
models = ["scripted/demo"]

[releases.v2]
route = "scripted/v2"
system_prompt = "You are version two of Firebreak."

[canary]
steps = [50, 100]
min_runs = [1000]
early_users = ["default/local"]

[cache]
enabled = false

[team]
max_rounds = 1

[triggers]
rephrase_count = 1000000
"""
ENTRY_PATHS = ("python_api", "cli_ask", "queue", "team", "subscribe", "ui")

EMAIL = {"to": "ada@example.com", "subject": "Order 42", "body": "Order 42 has shipped."}
EMAIL_REQUEST = "Email Ada that order 42 shipped."
SEND_SCRIPT = (
    {"tool_calls": [{"name": "send_email", "arguments": EMAIL}]},
    {"text": "I emailed Ada that order 42 shipped."},
)


def rollout(folder: Path, database_url: str | None = None) -> tuple[Settings, Path]:
    """Settings (and their config file, for the CLI) with rollout ``v2`` started on ``database_url`` (a SQLite
    file in ``folder`` by default); every reply is scripted."""
    config = folder / "rollout.toml"
    config.write_text(ROLLOUT_TOML, encoding="utf-8")
    script = folder / "answers.jsonl"
    script.write_text(json.dumps({"repeat": True, "text": "We open at nine."}) + "\n", encoding="utf-8")
    url = database_url or f"sqlite:///{folder / 'canary.db'}"
    settings = load_settings(config, database_url=url, script=str(script))
    services = build_services(settings)
    services.canary.start("v2", by="eval")
    services.close()
    return settings, config


def _with_agent(settings: Settings, work: Callable[[Agent], Any]) -> None:
    async def main() -> None:
        async with Agent.open(settings) as agent:
            await work(agent)

    asyncio.run(main())


def _python_api(settings: Settings, config: Path, route: str | None) -> None:
    async def work(agent: Agent) -> None:
        await agent.ask(QUESTION, route=route)

    _with_agent(settings, work)


def _cli_ask(settings: Settings, config: Path, route: str | None) -> None:
    model = ["--model", route] if route else []
    env = {"FIREBREAK_DATABASE_URL": settings.database_url, "FIREBREAK_SCRIPT": settings.script}
    done = CliRunner().invoke(cli, ["ask", "--config", str(config), "--json", *model, QUESTION], env=env)
    if done.exit_code != 0:
        raise RuntimeError(f"firebreak ask exited {done.exit_code}: {done.output}")


def _queue(settings: Settings, config: Path, route: str | None) -> None:
    store = QueueStore(prepare_database(settings))
    submit(store, settings, QUESTION, route=route)

    async def work(agent: Agent) -> None:
        await Worker(agent, store).run_until_idle()

    _with_agent(settings, work)


def _team(settings: Settings, config: Path, route: str | None) -> None:
    async def work(agent: Agent) -> None:
        await run_team(agent, "Tell the customer when we open.", ticket=f"T-{route or 'any'}", route=route)

    _with_agent(settings, work)


def _subscribe(settings: Settings, config: Path, route: str | None) -> None:
    async def work(agent: Agent) -> None:
        subject = {"subject": "When do you open?"}
        EntityStore(agent.services.engine).create("default", "ticket", f"S-{route or 'any'}", subject, actor="intake")
        await settle(agent, tenant_id="default", route=route)

    _with_agent(settings, work)


def _ui(settings: Settings, config: Path, route: str | None) -> None:
    from ui.app import AgentSlot, build_ui

    slot = AgentSlot(settings)
    demo = build_ui(settings, route=route, agent=slot)
    send: Any = next(block.fn for block in demo.fns.values() if block.name == "send")

    async def chat() -> None:
        try:
            async for _ in send(QUESTION, [], "", False, None):  # the local person's request, as on loopback
                pass
        finally:
            await slot.close()

    asyncio.run(chat())


DRIVERS: dict[str, Callable[[Settings, Path, str | None], None]] = {
    "python_api": _python_api,
    "cli_ask": _cli_ask,
    "queue": _queue,
    "team": _team,
    "subscribe": _subscribe,
    "ui": _ui,
}


def runs_started(settings: Settings, path: str, config: Path, route: str | None) -> list[Run]:
    """Send the question through entry ``path`` (naming ``route``, or not); the runs it started."""
    engine = prepare_database(settings)

    def ids() -> set[str]:
        with Session(engine) as session:
            return set(session.exec(select(Run.id)).all())

    before = ids()
    DRIVERS[path](settings, config, route)
    with Session(engine) as session:
        return list(session.exec(select(Run).where(Run.id.in_(ids() - before))).all())  # type: ignore[attr-defined]


def served_by_canary(runs: list[Run]) -> bool:
    return bool(runs) and all((run.release, run.arm) == ("v2", "canary") for run in runs)


def pinned_to_stable(runs: list[Run]) -> bool:
    return bool(runs) and all((run.release, run.arm, run.route) == ("base", None, PINNED) for run in runs)


def canary_entry_paths(folder: Path) -> Scenario:
    settings, config = rollout(folder)
    in_rollout, pinned_stable = [], []
    for path in ENTRY_PATHS:
        if served_by_canary(runs_started(settings, path, config, None)):
            in_rollout.append(path)
        if pinned_to_stable(runs_started(settings, path, config, PINNED)):
            pinned_stable.append(path)
    return Scenario(
        "canary_entry_paths",
        set(in_rollout) == set(ENTRY_PATHS) and set(pinned_stable) == set(ENTRY_PATHS),
        {"entry_paths": list(ENTRY_PATHS), "entry_paths_in_rollout": in_rollout, "pinned_paths_stable": pinned_stable},
    )


def _script(folder: Path, name: str, replies: tuple[dict[str, Any], ...]) -> str:
    path = folder / name
    path.write_text("".join(json.dumps(reply) + "\n" for reply in replies), encoding="utf-8")
    return str(path)


def idempotency_key_resubmit(folder: Path) -> Scenario:
    url = f"sqlite:///{folder / 'requests.db'}"

    def settings_with(script: tuple[dict[str, Any], ...], name: str) -> Settings:
        # A fixed gate score: the email goes out without asking anyone, so only the key can stop a second one.
        return load_settings(database_url=url, script=_script(folder, name, script), gate={"estimator": "fixed"})

    api, worker = settings_with(SEND_SCRIPT, "api.jsonl"), settings_with(SEND_SCRIPT, "worker.jsonl")
    same_runs, conflicts_tried, conflicts_detected = 0, 0, 0

    async def python_api(agent: Agent) -> None:
        nonlocal same_runs, conflicts_tried, conflicts_detected
        first = await agent.ask(EMAIL_REQUEST, route=PINNED, idempotency_key="k-api")
        again = await agent.ask(EMAIL_REQUEST, route=PINNED, idempotency_key="k-api")
        same_runs += first.run_id == again.run_id and first.answer == again.answer
        conflicts_tried += 1
        try:
            await agent.ask("Email Ada that order 43 shipped.", route=PINNED, idempotency_key="k-api")
        except IdempotencyKeyConflict:
            conflicts_detected += 1

    _with_agent(api, python_api)

    # The CLI twice: the second process must not run anything, so it gets a script with no replies.
    cli_runs = []
    for name, script in (("cli.jsonl", SEND_SCRIPT), ("cli-again.jsonl", ())):
        env = {"FIREBREAK_DATABASE_URL": url, "FIREBREAK_SCRIPT": _script(folder, name, script)}
        args = ["ask", "--json", "--model", PINNED, "--idempotency-key", "k-cli", EMAIL_REQUEST]
        done = CliRunner().invoke(cli, args, env={**env, "FIREBREAK_GATE__ESTIMATOR": "fixed"})
        cli_runs.append(json.loads(done.stdout)["run_id"] if done.exit_code == 0 else None)
    same_runs += cli_runs[0] is not None and cli_runs[0] == cli_runs[1]

    store = QueueStore(prepare_database(worker))
    queued = [submit(store, worker, EMAIL_REQUEST, route=PINNED, idempotency_key="k-queue") for _ in range(2)]
    same_runs += queued[0].id == queued[1].id
    conflicts_tried += 1
    try:
        submit(store, worker, "Email Ada that order 44 shipped.", route=PINNED, idempotency_key="k-queue")
    except IdempotencyKeyConflict:
        conflicts_detected += 1

    async def work(agent: Agent) -> None:
        await Worker(agent, store).run_until_idle()

    _with_agent(worker, work)

    requests = 3  # one Python API, one CLI and one queued request, each sent twice
    with Session(prepare_database(worker)) as session:
        emails = len(session.exec(select(OutboxEmail)).all())
        operations = len(session.exec(select(Operation).where(Operation.tool == "send_email")).all())
        runs = len(session.exec(select(Run)).all())
    duplicates = sum(max(count - requests, 0) for count in (emails, operations, runs))
    return Scenario(
        "idempotency_key_resubmit",
        same_runs == requests == emails and duplicates == 0 and conflicts_detected == conflicts_tried,
        {
            "resubmits": requests,
            "same_run_returned": same_runs,
            "emails_sent": emails,
            "duplicate_side_effects": duplicates,
            "conflicts_tried": conflicts_tried,
            "conflicts_detected": conflicts_detected,
        },
    )


def scenarios(folder: Path) -> list[Scenario]:
    (folder / "canary").mkdir(exist_ok=True)
    (folder / "keys").mkdir(exist_ok=True)
    return [canary_entry_paths(folder / "canary"), idempotency_key_resubmit(folder / "keys")]
