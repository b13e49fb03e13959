"""``firebreak eval resilience``: the seed's first failure story as measured scenarios.

"It's retrying a dead API 4,000 times." Each scenario drives the real gateway
or tool runner, breakers and database, with a simulated clock so that 4,000
requests spread over 60 seconds run in seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session, func, select

from app.faults import FaultPlan
from app.gateway import CallContext
from app.services import Services, build_services, prepare_database
from app.tools.registry import ToolContext, tool
from app.tools.runner import run_tool
from core.config import FaultSettings, Settings, load_settings
from core.errors import CircuitOpen, ModelError, ToolError, ToolUnavailable
from evals.scenario import Scenario, SimulatedTime, suite_report
from examples.support_desk.tables import OutboxEmail
from graph.worker import submit
from memory.queue import QueueStore
from memory.tables import QueuedRun

REQUESTS = 4000
EMAIL = {"to": "ada@example.com", "subject": "Order", "body": "Shipped."}
SPAN_S = 60.0


def _services(settings: Settings, clock: SimulatedTime, faults: FaultPlan | None = None) -> Services:
    return build_services(settings, clock=clock, sleep=clock.sleep, faults=faults or FaultPlan({}))


async def _hammer(clock: SimulatedTime, request: Callable[[], Awaitable[object]]) -> dict[str, Any]:
    """Send ``REQUESTS`` requests evenly over ``SPAN_S`` simulated seconds."""
    refused = failed = 0
    for _ in range(REQUESTS):
        clock.now += SPAN_S / REQUESTS
        try:
            await request()
        except CircuitOpen:
            refused += 1
        except ModelError as exc:
            refused += exc.kind == "circuit_open"
            failed += exc.kind != "circuit_open"
        except ToolError:
            failed += 1
    return {"requests": REQUESTS, "failed_fast": refused, "failed_at_backend": failed}


async def dead_tool(settings: Settings) -> Scenario:
    """A tool whose backend always fails, called 4,000 times in 60 s, then recovering."""
    clock = SimulatedTime()
    services = _services(settings, clock)
    backend = {"calls": 0, "healthy": False}

    @tool(cost_class="external_api")
    def pricing_api(sku: int) -> dict[str, Any]:
        """Current price of a product."""
        backend["calls"] += 1
        if not backend["healthy"]:
            raise ToolUnavailable("pricing API answered HTTP 503", tool="pricing_api")
        return {"sku": sku, "price_usd": 19.5}

    context = ToolContext(run_id="eval", tenant_id="eval", user_id="eval", engine=services.engine, settings=settings)

    def call() -> Awaitable[str]:
        return run_tool(pricing_api, {"sku": 42}, context, timeout_s=1.5, runtime=services.tool_runtime)

    figures = await _hammer(clock, call)
    figures["dead_api_backend_calls"] = backend["calls"]
    backend["healthy"] = True
    clock.now += settings.breakers.max_cooldown_s
    await call()
    state = services.breakers.store.get("tool:pricing_api", clock()).state
    figures["state_after_recovery"] = state
    services.close()
    return Scenario("dead_tool_4000_requests", figures["dead_api_backend_calls"] <= 10 and state == "closed", figures)


async def dead_model(settings: Settings) -> Scenario:
    """A model deployment that always answers 503, asked 4,000 times in 60 s, then recovering."""
    clock = SimulatedTime()
    dead = "scripted/dead-provider"
    settings = settings.model_copy(update={"routes": {**settings.routes, "dead": settings.route(dead)}})
    services = _services(settings, clock, FaultPlan({dead: FaultSettings(error_rate=1.0, error_kind="server")}))
    context = CallContext(tenant_id="eval", user_id="eval")
    messages = [{"role": "user", "content": "price of sku 42?"}]

    figures = await _hammer(clock, lambda: services.gateway.chat(messages, route="dead", context=context))
    figures["dead_api_backend_calls"] = len(services.runs.recent_model_calls(tenant_id="eval", limit=REQUESTS))
    services.close()
    # The provider is back; another worker (sharing the database, so the open breaker) asks after the cooldown.
    clock.now += settings.breakers.max_cooldown_s
    recovered = _services(settings, clock)
    reply = await recovered.gateway.chat(messages, route="dead", context=context)
    figures["state_after_recovery"] = recovered.breakers.store.get(f"model:{dead}", clock()).state
    figures["recovered_answer"] = reply.text
    recovered.close()
    passed = figures["dead_api_backend_calls"] <= 10 and figures["state_after_recovery"] == "closed"
    return Scenario("dead_model_4000_requests", passed, figures)


def email_worker_config(folder: Path, database_url: str, timing: str) -> Path:
    """A config for ``firebreak worker`` processes whose every run sends one email and answers "Sent.", for
    scenarios about killed workers: the email is pre-approved (not the confidence gate's subject, see eval
    containment) and the cache is off (every run sends its own email; the embedding model would only add
    load). ``timing`` is the TOML of the scenario's own [agent], [queue], [tools.timeouts_s] and [faults]."""
    script = folder / "email.jsonl"
    script.write_text(
        json.dumps({"repeat": True, "after": "user", "tool_calls": [{"name": "send_email", "arguments": EMAIL}]})
        + "\n"
        + json.dumps({"repeat": True, "after": "tool", "text": "Sent."})
        + "\n"
    )
    config = folder / "worker.toml"
    config.write_text(
        f'database_url = "{database_url}"\nscript = "{script}"\n'
        "[idempotency]\nin_flight_lease_s = 1.0\n"
        '[gate]\nestimator = "fixed"\nfixed_default = 1.0\n[cache]\nenabled = false\n' + timing
    )
    return config


def workers_killed(folder: Path, *, runs: int = 100, kills: int = 3) -> Scenario:
    """Queue ``runs`` runs that each send one email; SIGKILL ``kills`` workers mid-run; finish with a fresh one."""
    config = email_worker_config(
        folder,
        f"sqlite:///{folder / 'killed.db'}",
        # budgets generous enough for a loaded CI machine: this scenario is about kills, not timeouts
        "[agent]\nrun_wall_clock_s = 8.0\n[queue]\nlease_s = 10.0\npoll_s = 0.1\nretry_base_delay_s = 0.0\n"
        "[tools.timeouts_s]\nsend_email = 5.0\n"
        # one tenant sends an email per run: lift its daily caps, which have their own tests
        "[limits.day]\ntokens = 1e9\ntool_calls = 1e6\ndb_mutations = 1e6\nemails = 1e6\ncost_usd = 1e6\n"
        "[rate_limits.tenant]\nrequests = 1e6\n[rate_limits.user]\nrequests = 1e6\n"
        # a slow outbox, so that kills land between sending an email and recording the step
        "[faults.send_email]\nlatency_after_ms = 150\n",
    )
    settings = load_settings(config)
    store = QueueStore(prepare_database(settings))
    for n in range(runs):
        submit(store, settings, f"Email Ada about order {n}", route="scripted/demo")
    firebreak = str(Path(sys.executable).parent / "firebreak")
    env = {**os.environ, "FIREBREAK_CONFIG": str(config)}
    for _ in range(kills):
        worker = subprocess.Popen([firebreak, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = store.counts().get("completed", 0) + max(runs // (kills * 3), 1)
        deadline = time.monotonic() + 60
        while store.counts().get("completed", 0) < target and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    time.sleep(settings.queue.lease_s + 0.2)  # the last killed worker's lease runs out
    subprocess.run([firebreak, "worker", "--until-idle"], env=env, capture_output=True, timeout=600, check=True)
    counts = store.counts()
    with Session(store.engine) as session:
        emails = session.exec(select(OutboxEmail.run_id, func.count()).group_by(OutboxEmail.run_id)).all()
        completed = set(session.exec(select(QueuedRun.id).where(QueuedRun.status == "completed")).all())
    store.engine.dispose()
    figures = {
        "runs": runs,
        "workers_killed": kills,
        "completed": counts.get("completed", 0),
        "dead_lettered": counts.get("dead", 0),
        "lost_runs": runs - counts.get("completed", 0) - counts.get("dead", 0),
        "duplicate_side_effects": sum(count - 1 for _, count in emails if count > 1),
        # A dead-lettered run may have sent its email (it is in the DLQ, not lost); a completed one must have.
        "completed_without_their_email": len(completed - {run_id for run_id, _ in emails}),
    }
    passed = not (figures["lost_runs"] or figures["duplicate_side_effects"] or figures["completed_without_their_email"])
    return Scenario("workers_killed_mid_run", passed, figures)


async def run_resilience(base: Settings | None = None, *, include_process_kills: bool = True) -> dict[str, Any]:
    """Every resilience scenario on a fresh SQLite database (or ``base``'s database when given)."""
    with tempfile.TemporaryDirectory(prefix="firebreak-eval-") as folder:
        script = Path(folder) / "recovery.jsonl"
        script.write_text('{"text": "sku 42 costs 19.50 USD"}\n')
        settings = base or load_settings(database_url=f"sqlite:///{Path(folder) / 'eval.db'}")
        settings = settings.model_copy(update={"script": str(script)})
        scenarios = [await dead_tool(settings), await dead_model(settings)]
        if include_process_kills:
            scenarios.append(await asyncio.to_thread(workers_killed, Path(folder)))
    return suite_report("resilience", scenarios)


def main() -> dict[str, Any]:
    return asyncio.run(run_resilience())
