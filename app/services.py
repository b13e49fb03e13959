"""Composition root: the one place that opens the database and wires the stores and services (no LangGraph code).

Faces ask here for what they need: ``open_stores`` for the stores alone (no model, no embedder: cheap enough for a
read-only command), ``build_services`` for everything a run needs, ``migrate_database`` to bring the schema up.
"""

from __future__ import annotations

import asyncio
import functools
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from sqlalchemy.engine import Engine

from app.alerts import raise_alert
from app.cache.semantic import SemanticCache
from app.cache.tool_results import ToolResultCache
from app.canary.controller import AlertHook, Canary
from app.containment.gate import Estimator, build_estimator
from app.embeddings import Embedder
from app.faults import FaultPlan
from app.gateway import Gateway
from app.limits.ledger import BlastRadius
from app.resilience.breaker import BreakerPolicy, CircuitBreakers, Transition
from app.resilience.retry import Guard, RetryPolicy
from app.telemetry import Telemetry, setup_telemetry
from app.tools.registry import ToolRegistry
from app.tools.runner import ToolBudgets, ToolRuntime
from core.config import EmbeddingRuntime, Settings
from core.errors import StoreUnavailable
from memory.audit import AuditLog
from memory.breakers import BreakerStore
from memory.cache import CacheStore
from memory.canary import CanaryStore
from memory.context import ContextStore
from memory.engine import make_engine
from memory.escalations import EscalationStore
from memory.gate import GateStore
from memory.idempotency import OperationLog
from memory.ledger import LedgerStore
from memory.migrate import is_current, tool_modules, upgrade
from memory.plans import PlanStore
from memory.queue import QueueStore
from memory.runs import RunStore
from memory.shared_state import EntityStore
from memory.threads import ThreadLeases

VERSION = "0.1.0"  # Firebreak's own version: the resource's service.version (a run's spans name its release)
_MIGRATING = threading.Lock()


@dataclass(frozen=True)
class Stores:
    """The database and every store over it: what a face reads and acts on without running the agent."""

    settings: Settings
    engine: Engine
    runs: RunStore
    queue: QueueStore
    ledger: LedgerStore
    breakers: BreakerStore
    escalations: EscalationStore
    gate: GateStore
    cache: CacheStore
    context: ContextStore
    plans: PlanStore
    canary: CanaryStore
    audit: AuditLog
    entities: EntityStore
    threads: ThreadLeases
    operations: OperationLog

    def blast_radius(self, clock: Callable[[], float] = time.time) -> BlastRadius:
        """The blast-radius ledger with the configured caps and rate limits."""
        return BlastRadius(self.ledger, self.settings.limits, rates=self.settings.rate_limits, clock=clock)


@dataclass
class Services:
    """The long-lived parts one process shares between runs."""

    stores: Stores
    telemetry: Telemetry
    gateway: Gateway
    breakers: CircuitBreakers
    limits: BlastRadius
    tools: ToolRegistry  # what a person's run may call ([tools] modules)
    team_tools: ToolRegistry  # what a team member may call: those and [team] tool_modules (the tickets)
    budgets: ToolBudgets
    tool_runtime: ToolRuntime
    estimator: Estimator
    cache: SemanticCache
    canary: Canary
    alert: AlertHook  # records an alert row, logs it, and posts it to ``[queue] alert_webhook`` if one is set
    clock: Callable[[], float] = time.time

    # The settings and the stores a run uses on every step, one hop closer: the ones in ``stores``, never copies.
    @property
    def settings(self) -> Settings:
        return self.stores.settings

    @property
    def engine(self) -> Engine:
        return self.stores.engine

    @property
    def runs(self) -> RunStore:
        return self.stores.runs

    @property
    def escalations(self) -> EscalationStore:
        return self.stores.escalations

    @property
    def gate(self) -> GateStore:
        return self.stores.gate

    @property
    def context(self) -> ContextStore:
        return self.stores.context

    @property
    def plans(self) -> PlanStore:
        return self.stores.plans

    @property
    def threads(self) -> ThreadLeases:
        return self.stores.threads

    def close(self) -> None:
        self.telemetry.shutdown()
        self.engine.dispose()


def breaker_watcher(alert: AlertHook) -> Callable[[Transition], None]:
    """Every breaker transition is an event on the span of the call that caused it; an opening is an alert."""

    def on_transition(transition: Transition) -> None:
        trace.get_current_span().add_event(
            "firebreak.breaker.transition",
            {
                "firebreak.backend": transition.name,
                "firebreak.breaker.from": transition.from_state,
                "firebreak.breaker.to": transition.to_state,
                "firebreak.breaker.reason": transition.reason,
            },
        )
        if transition.to_state == "open":
            alert(
                "breaker_open",
                f"circuit breaker {transition.name} opened: {transition.reason}",
                {"backend": transition.name, "from": transition.from_state, "reason": transition.reason},
            )

    return on_transition


def alerter(engine: Engine, settings: Settings, clock: Callable[[], float]) -> AlertHook:
    """The alert hook every service raises alerts through."""

    def alert(kind: str, message: str, payload: dict[str, Any]) -> None:
        raise_alert(QueueStore(engine), kind, message, payload, webhook=settings.queue.alert_webhook, clock=clock)

    return alert


def prepare_database(settings: Settings) -> Engine:
    """Connect, then migrate (``auto_migrate``) or refuse to run on an old schema."""
    engine = make_engine(settings.database_url)
    if is_current(engine, tool_modules(settings)):
        return engine
    if settings.auto_migrate:
        with _MIGRATING:  # Alembic's command API keeps module globals: one migration per process at a time
            upgrade(engine, tool_modules(settings))
    else:
        raise StoreUnavailable("the database schema is not current: run `firebreak db upgrade`")
    return engine


def migrate_database(settings: Settings) -> str | None:
    """Apply pending migrations to the configured database, whatever ``auto_migrate`` says; the revision now."""
    engine = make_engine(settings.database_url)
    try:
        with _MIGRATING:
            return upgrade(engine, tool_modules(settings))
    finally:
        engine.dispose()


def open_stores(settings: Settings) -> Stores:
    """Connect (see ``prepare_database``) and build every store over the one engine."""
    engine = prepare_database(settings)
    return Stores(
        settings=settings,
        engine=engine,
        runs=RunStore(engine),
        queue=QueueStore(engine),
        ledger=LedgerStore(engine),
        breakers=BreakerStore(engine),
        escalations=EscalationStore(engine),
        gate=GateStore(engine),
        cache=CacheStore(engine, settings.cache.max_entries),
        context=ContextStore(engine),
        plans=PlanStore(engine),
        canary=CanaryStore(engine),
        audit=AuditLog(engine),
        entities=EntityStore(engine),
        threads=ThreadLeases(engine),
        operations=OperationLog(
            engine, ttl_s=settings.idempotency.ttl_s, in_flight_lease_s=settings.idempotency.in_flight_lease_s
        ),
    )


def build_services(
    settings: Settings,
    *,
    tools: ToolRegistry | None = None,
    faults: FaultPlan | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Services:
    """Wire every service from ``settings``; tools, faults, the wall clock and sleeping may be injected."""
    stores = open_stores(settings)
    engine = stores.engine
    telemetry = setup_telemetry(
        engine,
        service_name=settings.telemetry.service_name,
        version=VERSION,
        record_content=settings.telemetry.record_content,
        metrics=settings.telemetry,
    )
    fault_plan = faults or FaultPlan(settings.faults)
    alert = alerter(engine, settings, clock)
    breakers = CircuitBreakers(
        stores.breakers,
        # Built once per backend: the breaker asks for its policy on every acquire and record.
        functools.cache(lambda backend: BreakerPolicy(**settings.breakers.for_backend(backend).model_dump())),
        clock=clock,
        on_transition=breaker_watcher(alert),
    )
    guard = Guard(breakers, RetryPolicy(**settings.retries.model_dump()), rng=random.Random(), sleep=sleep)
    limits = stores.blast_radius(clock)
    if telemetry.metrics is not None:
        telemetry.metrics.watch(engine, limits, clock)
    gateway = Gateway(settings, telemetry, stores.runs.record_model_call, guard, limits, fault_plan)
    external = settings.tools.external  # policies of the LangChain tools found in the modules
    registry = tools if tools is not None else ToolRegistry.from_modules(settings.tools.modules, external)
    return Services(
        stores=stores,
        telemetry=telemetry,
        gateway=gateway,
        limits=limits,
        breakers=breakers,
        tools=registry,
        team_tools=ToolRegistry([*registry, *ToolRegistry.from_modules(settings.team.tool_modules, external)]),
        budgets=ToolBudgets(settings.tools.class_timeouts_s, settings.tools.timeouts_s),
        tool_runtime=ToolRuntime(
            guard=guard,
            faults=fault_plan,
            limits=limits,
            operations=stores.operations,
            max_result_chars=settings.tools.max_result_chars,
            results=ToolResultCache(stores.cache, settings.cache.ttl_s.read_tool, clock)
            if settings.cache.enabled
            else None,
            clock=clock,
        ),
        estimator=build_estimator(settings.gate, gateway),
        cache=SemanticCache(stores.cache, settings.cache, _embedder(settings.cache.embedding_runtime), clock),
        canary=Canary(stores.canary, settings, tracer=telemetry.tracer, alert=alert, clock=clock),
        alert=alert,
        clock=clock,
    )


def _embedder(runtime: EmbeddingRuntime) -> Callable[[], Embedder]:
    """The embedder's factory: the model loads on the first lookup only."""

    def load() -> Embedder:
        from app.embeddings import default_embedder

        return default_embedder(runtime)

    return load
