"""An operator's console on one deployment: what the ``firebreak`` commands read and do, as methods.

Each method calls the same app-level function as its command, as the same operator: the owner of ``token`` (else
of ``FIREBREAK_OPERATOR_TOKEN``), else the person at this machine with ``[operators] local_role``. So every
check, refusal and audit row is the command's own.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.config import Settings, load_settings

if TYPE_CHECKING:  # imported where used: `import firebreak` stays cheap
    from app.canary.controller import Canary
    from app.dashboards import BudgetLine, OpsReport
    from app.operators import Attention, Operator
    from app.services import Services, Stores
    from graph.agent import Agent, RunResult
    from memory.tables import (
        Breaker,
        BreakerTransition,
        CacheEntry,
        ContextCheckpoint,
        DeadLetter,
        EntityEvent,
        Escalation,
        OperatorAction,
        QueuedRun,
        Run,
        SpanRecord,
    )


@dataclass(frozen=True)
class Trace:
    """A run and its spans (``firebreak trace show``); ``text`` is the tree the command prints."""

    run: Run
    spans: list[SpanRecord]

    @property
    def text(self) -> str:
        from app.traces import format_trace

        return format_trace(self.spans)


class Console:
    """The ``firebreak`` commands on one database, as one operator. Use as a context manager, or ``close()``."""

    def __init__(self, settings: Settings | None = None, *, token: str | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self._token = token
        self._stores: Stores | None = None
        self._services: Services | None = None

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database connections this console opened."""
        if self._services is not None:
            self._services.close()
        elif self._stores is not None:
            self._stores.engine.dispose()
        self._stores = self._services = None

    @property
    def operator(self) -> Operator:
        """Who acts, decided as the CLI decides it (``app.operators.cli_operator``)."""
        from app.operators import TOKEN_VARIABLE, cli_operator

        environ = os.environ if self._token is None else {TOKEN_VARIABLE: self._token}
        return cli_operator(self.settings.operators, environ, via="api")

    @property
    def stores(self) -> Stores:
        if self._stores is None:
            from app.services import open_stores

            self._stores = open_stores(self.settings)
        return self._stores

    def _canary(self) -> Canary:
        if self._services is None:
            from app.services import build_services

            self._services = build_services(self.settings)
            if self._stores is not None:
                self._stores.engine.dispose()
            self._stores = self._services.stores
        return self._services.canary

    # --- runs: `firebreak runs`, `trace show|replay`, `plan show`, `context show` ------------------------------

    def runs(
        self,
        *,
        status: str | None = None,
        route: str | None = None,
        release: str | None = None,
        tenant: str | None = None,
        limit: int = 20,
    ) -> list[Run]:
        """The newest runs, filtered (``firebreak runs``)."""
        from app.views import runs_of

        which = {"status": status, "route": route, "release": release, "tenant": tenant}
        return runs_of(self.stores, self.operator, **which, limit=limit)

    def unclean(self, *, tenant: str | None = None, limit: int = 100) -> list[Attention]:
        """Every run and event handling that did not end cleanly, with what to do (``dlq list``, ``runs --unclean``)."""
        from app.views import attention_of

        return attention_of(self.stores, self.operator, tenant, now=time.time(), limit=limit)

    def trace(self, run_id: str) -> Trace:
        """A run's spans (``firebreak trace show``)."""
        from app.views import seen_run

        run = seen_run(self.stores, self.operator, run_id)
        return Trace(run, list(self.stores.runs.spans(run_id)))

    def replay(self, run_id: str) -> list[EntityEvent]:
        """The shared-entity changes of a run or its team run, in order (``firebreak trace replay``)."""
        from app.views import seen_run

        run = seen_run(self.stores, self.operator, run_id)
        return self.stores.entities.changes_in(run.correlation_id or run.id)

    def plan(self, run_id: str) -> dict[str, Any]:
        """A run's plan versions and the tool calls it executed (``firebreak plan show``)."""
        from app.planning.report import plan_report
        from app.views import seen_run

        seen_run(self.stores, self.operator, run_id)
        return {"run_id": run_id, **plan_report(self.stores.plans.versions(run_id), self.stores.runs.events(run_id))}

    def context(self, thread_id: str) -> list[ContextCheckpoint]:
        """A thread's context checkpoints, oldest first (``firebreak context show``)."""
        return list(self.stores.context.for_thread(thread_id))

    # --- guard rails: `firebreak ops`, `breakers`, `budgets` -----------------------------------------------------

    def ops(self, window_s: float | None = None) -> OpsReport:
        """The Ops figures per route and release, and every panel (``firebreak ops``)."""
        from app.access import require_fleet_reader
        from app.dashboards import DEFAULT_WINDOW_S, ops_report

        require_fleet_reader(self.operator)
        stores = self.stores
        return ops_report(stores.engine, stores.blast_radius(), window_s=window_s or DEFAULT_WINDOW_S)

    def breakers(self) -> list[Breaker]:
        """Every circuit breaker: state, trips, when an open one probes (``firebreak breakers``)."""
        from app.access import require_fleet_reader

        require_fleet_reader(self.operator)
        return list(self.stores.breakers.all())

    def breaker_transitions(self, limit: int = 10) -> list[BreakerTransition]:
        """The breakers' latest state changes, newest first (the end of ``firebreak breakers``)."""
        from app.access import require_fleet_reader

        require_fleet_reader(self.operator)
        return list(self.stores.breakers.transitions(limit=limit))

    def budgets(self, scope: str = "") -> list[BudgetLine]:
        """Usage against the blast-radius caps, per scope prefix (``firebreak budgets``)."""
        from app.access import require_fleet_reader
        from app.dashboards import budget_lines

        require_fleet_reader(self.operator)
        return budget_lines(self.stores.blast_radius(), scope)

    # --- dead letters: `firebreak dlq show|requeue` --------------------------------------------------------------

    def dead_letter(self, letter_id: int) -> DeadLetter:
        """One dead letter with everything attached (``firebreak dlq show``)."""
        from app.views import seen_dead_letter

        return seen_dead_letter(self.stores, self.operator, letter_id)

    def requeue(self, target: str) -> bool:
        """Requeue a run id or ``event:<dead letter id>``, audited (``firebreak dlq requeue TARGET``)."""
        from app.views import requeue_of

        moved, _ = requeue_of(self.stores, self.operator, target, now=time.time())
        return moved == 1

    def requeue_all(self) -> tuple[int, int]:
        """Requeue everything the view says to requeue; (requeued, tried) (``firebreak dlq requeue --all``)."""
        from app.views import requeue_of

        return requeue_of(self.stores, self.operator, None, now=time.time())

    # --- escalations: `firebreak escalations list|show|answer`, `labels export` ----------------------------------

    async def escalations(self, agent: Agent, status: str = "open") -> list[Escalation]:
        """Escalations (``all`` for every status), after passing up or expiring overdue ones
        (``firebreak escalations list``)."""
        from app.access import require_reader
        from app.views import visible

        operator = require_reader(self.operator)
        await agent.sweep()
        return visible(operator, agent.services.escalations.list(status=None if status == "all" else status))

    def escalation(self, escalation_id: str) -> Escalation:
        """One escalation in full, by id or a unique prefix (``firebreak escalations show``)."""
        from app.views import seen_escalation

        return seen_escalation(self.stores, self.operator, escalation_id)

    async def answer(
        self, agent: Agent, escalation_id: str, answer: str, *, note: str | None = None
    ) -> RunResult | None:
        """Answer an escalation as this operator, audited; the run it alone held resumes on ``agent`` and its
        result returns (``firebreak escalations answer``)."""
        from graph.answers import answer_as

        escalation = agent.services.escalations.find(escalation_id)
        result = await answer_as(agent, self.operator, escalation, answer, note=note)
        return None if result is None else agent.settle_script(result)

    def labels(self) -> list[str]:
        """Every human answer as one JSON line (``firebreak labels export``)."""
        from app.views import labels_of

        return labels_of(self.stores, self.operator)

    # --- the cache: `firebreak cache stats|list|invalidate` ------------------------------------------------------

    def cache_stats(self) -> list[dict[str, Any]]:
        """Live entries and hits per layer, tenant and route (``firebreak cache stats``)."""
        from app.views import cache_stats_of

        return cache_stats_of(self.stores, self.operator, now=time.time())

    def cache_entries(self, *, tenant: str | None = None, limit: int = 20) -> list[CacheEntry]:
        """The most recently used cached answers (``firebreak cache list``)."""
        from app.views import cache_entries_of

        return cache_entries_of(self.stores, self.operator, tenant=tenant, limit=limit, now=time.time())

    def invalidate_cache(self, **selectors: Any) -> int:
        """Remove the entries matching every selector (tenant_id, route, layer, entry_id, key); none at all
        empties the cache. Audited; returns how many went (``firebreak cache invalidate``)."""
        from app.operators import invalidate_as

        return invalidate_as(self.stores.cache, self.operator, now=time.time(), **selectors)

    # --- canary: `firebreak canary status|start|promote|rollback` ------------------------------------------------

    def canary_status(self) -> dict[str, Any]:
        """The stable release and the active (or latest) rollout (``firebreak canary status --json``)."""
        from app.access import require_fleet_reader
        from app.canary.report import rollout_report

        require_fleet_reader(self.operator)
        return rollout_report(self._canary())

    def canary_start(self, release: str) -> dict[str, Any]:
        """Start rolling ``release`` out, audited; the rollout after (``firebreak canary start``)."""
        from app.canary.actions import start_as
        from app.canary.report import rollout_report

        canary = self._canary()
        start_as(canary, self.stores.audit, self.operator, release)
        return rollout_report(canary)

    def canary_promote(self, *, full: bool = False) -> dict[str, Any]:
        """Advance the active rollout a step (or to 100%), audited (``firebreak canary promote``)."""
        from app.canary.actions import promote_as
        from app.canary.report import rollout_report

        canary = self._canary()
        promote_as(canary, self.stores.audit, self.operator, full=full)
        return rollout_report(canary)

    def canary_rollback(self, reason: str = "rolled back by hand") -> dict[str, Any]:
        """Send all new traffic back to the control, audited (``firebreak canary rollback``)."""
        from app.canary.actions import rollback_as
        from app.canary.report import rollout_report

        canary = self._canary()
        rollback_as(canary, self.stores.audit, self.operator, reason=reason)
        return rollout_report(canary)

    # --- operators and the queue: `firebreak operators audit`, `submit`, `worker` --------------------------------

    def audit(self, *, of: str | None = None, limit: int = 50) -> list[OperatorAction]:
        """The audit log, newest first: an admin reads everyone's, others their own (``operators audit``)."""
        from app.access import require_reader
        from app.operators import visible_actions

        return visible_actions(self.stores.audit, require_reader(self.operator), of=of, limit=limit)

    def submit(
        self,
        question: str,
        *,
        thread_id: str | None = None,
        tenant_id: str | None = None,
        user_id: str | None = None,
        route: str | None = None,
        idempotency_key: str | None = None,
    ) -> QueuedRun:
        """Queue a question for a worker; its id is the run id (``firebreak submit``)."""
        from graph.worker import submit

        return submit(
            self.stores.queue,
            self.settings,
            question,
            thread_id=thread_id,
            tenant_id=tenant_id,
            user_id=user_id,
            route=route,
            idempotency_key=idempotency_key,
        )

    async def work(self, agent: Agent, *, stop: asyncio.Event | None = None) -> int:
        """Process queued runs on ``agent``: until none is due (returns how many), or until the asyncio.Event
        ``stop`` is set (``firebreak worker [--until-idle]``)."""
        from graph.worker import Worker

        worker = Worker(agent, self.stores.queue)
        if stop is None:
            return await worker.run_until_idle()
        await worker.run_forever(stop)
        return 0
