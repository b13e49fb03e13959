"""SQLModel tables: the durable record of every run.

Large things live here and are referenced from graph state by id. Schema
changes go through Alembic migrations in ``memory/migrations``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, Table, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a table model, for single-statement writes on hot paths."""
    return model.__table__  # type: ignore[attr-defined,no-any-return]


class Run(SQLModel, table=True):
    """One agent invocation: a question in, an answer (or an error) out."""

    __tablename__ = "runs"

    id: str = Field(primary_key=True, max_length=36)
    thread_id: str = Field(index=True, max_length=128)
    tenant_id: str = Field(index=True, max_length=128)
    user_id: str = Field(max_length=128)
    route: str = Field(max_length=256)
    agent: str = Field(default="firebreak", max_length=64)  # its role in a team (research, writer, …)
    correlation_id: str | None = Field(default=None, index=True, max_length=64)  # the team run it belongs to
    release: str = Field(default="base", index=True, max_length=64)  # the agent version that served it
    arm: str | None = Field(default=None, max_length=16)  # control | canary, when a rollout was running
    rollout_id: int | None = Field(default=None, index=True)
    rollout_step: int | None = None  # the ramp step it was assigned at: a step's analysis window
    status: str = Field(index=True, max_length=32)
    question: str = Field(sa_column=Column(Text, nullable=False))
    answer: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))
    trace_id: str | None = Field(default=None, max_length=32)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None


class RunEvent(SQLModel, table=True):
    """One step of a run's decision history: a decision, a tool result, the answer."""

    __tablename__ = "run_events"
    __table_args__ = (Index("ix_run_events_run_seq", "run_id", "seq", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", max_length=36)
    seq: int
    node: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ModelCall(SQLModel, table=True):
    """The audit row of one model call: who asked, which deployment answered, what it cost."""

    __tablename__ = "model_calls"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str | None = Field(default=None, index=True, max_length=36)
    tenant_id: str = Field(max_length=128)
    task_class: str = Field(default="answer", max_length=32)  # answer | self_critique | verify ([routing])
    route: str = Field(max_length=256)
    model: str = Field(max_length=256)
    fallback_position: int = 0  # 0: the route's primary model answered; n: its n-th fallback
    status: str = Field(max_length=32)
    error_kind: str | None = Field(default=None, max_length=32)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    created_at: datetime = Field(default_factory=utcnow, index=True)


class SpanRecord(SQLModel, table=True):
    """A finished OpenTelemetry span, kept locally so the UI and CLI can show traces."""

    __tablename__ = "spans"

    span_id: str = Field(primary_key=True, max_length=16)
    trace_id: str = Field(index=True, max_length=32)
    parent_span_id: str | None = Field(default=None, max_length=16)
    run_id: str | None = Field(default=None, index=True, max_length=36)
    name: str = Field(max_length=256)
    start_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    end_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(max_length=16)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    events: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Breaker(SQLModel, table=True):
    """One circuit breaker per backend (a model deployment or a tool), shared by every worker.

    ``version`` makes every transition a compare-and-set, so two workers never
    both take the last half-open permit.
    """

    __tablename__ = "breakers"

    name: str = Field(primary_key=True, max_length=256)
    state: str = Field(max_length=16)
    version: int = 0
    open_until: float = 0.0
    trips: int = 0  # consecutive openings without a successful probe; grows the cooldown
    permits_taken: int = 0
    permits_expire_at: float = 0.0
    updated_at: float = 0.0


class BreakerBucket(SQLModel, table=True):
    """Calls and failures of one backend in one whole second: the rolling window's buckets."""

    __tablename__ = "breaker_buckets"

    name: str = Field(primary_key=True, max_length=256)
    second: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    calls: int = 0
    failures: int = 0
    slow: int = 0


class BreakerTransition(SQLModel, table=True):
    """Every state change of a breaker, with why it happened."""

    __tablename__ = "breaker_transitions"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=256)
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    reason: str = Field(max_length=512)
    at: float = Field(index=True)


class Operation(SQLModel, table=True):
    """The operation log: one row per write-tool call, keyed by its op_id.

    The claim is a single insert on the primary key; a repeat of a completed
    operation returns ``result`` without running the side effect again.
    """

    __tablename__ = "operations"

    op_id: str = Field(primary_key=True, max_length=64)
    tool: str = Field(max_length=128)
    args_hash: str = Field(max_length=64)
    tenant_id: str = Field(max_length=128)
    run_id: str | None = Field(default=None, index=True, max_length=36)
    status: str = Field(max_length=16)  # started | completed | failed | unknown
    result: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = 1
    updated_at: float
    expires_at: float = Field(index=True)


class QueuedRun(SQLModel, table=True):
    """A run submitted to the durable queue. Claimed with a lease; dead after its last attempt."""

    __tablename__ = "queued_runs"
    __table_args__ = (Index("ix_queued_runs_claim", "status", "available_at"),)

    id: str = Field(primary_key=True, max_length=36)  # the run id
    thread_id: str = Field(max_length=128)
    tenant_id: str = Field(max_length=128)
    user_id: str = Field(max_length=128)
    # The route the submitter chose; None lets the canary assign the release (and so the route) when it runs.
    route: str | None = Field(default=None, max_length=256)
    question: str = Field(sa_column=Column(Text, nullable=False))
    task_type: str = Field(default="ask", max_length=64)
    status: str = Field(max_length=16)  # queued | running | waiting (for a person) | completed | dead
    attempts: int = 0
    max_attempts: int
    available_at: float
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: float = 0.0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: float
    updated_at: float


class IdempotencyKey(SQLModel, table=True):
    """A caller's idempotency key: the run its first request started (``submit``, ``ask``, ``Agent.ask``).

    Keys are per tenant. A repeat of the same request (same digest) gets that run; another request under the
    key is refused until ``expires_at``.
    """

    __tablename__ = "idempotency_keys"

    tenant_id: str = Field(primary_key=True, max_length=128)
    key: str = Field(primary_key=True, max_length=255)
    request_digest: str = Field(max_length=64)  # sha256 of what was asked, by whom, on which path
    run_id: str = Field(max_length=36)
    created_at: float
    expires_at: float = Field(index=True)


class DeadLetter(SQLModel, table=True):
    """A run that failed all its attempts, with everything a person needs to triage it."""

    __tablename__ = "dead_letters"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, max_length=36)
    tenant_id: str = Field(index=True, max_length=128)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int
    checkpoint_id: str | None = Field(default=None, max_length=64)
    partial_state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    tool_outputs: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    decisions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: float = Field(index=True)
    requeued_at: float | None = None


class Alert(SQLModel, table=True):
    """Something an operator should know now: a DLQ spike, a breaker opening, a budget breach."""

    __tablename__ = "alerts"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True, max_length=64)
    message: str = Field(sa_column=Column(Text, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: float = Field(index=True)


class BudgetUsage(SQLModel, table=True):
    """What one scope (a run, a session, a tenant's day) has used and holds reserved of one resource."""

    __tablename__ = "budget_usage"

    scope: str = Field(primary_key=True, max_length=256)
    resource: str = Field(primary_key=True, max_length=32)
    used: float = 0.0
    reserved: float = 0.0
    granted: float = 0.0  # one-off raises a reviewer approved on a breach, on top of the configured cap
    updated_at: float = 0.0


class BudgetReservation(SQLModel, table=True):
    """Amounts held for one call until it settles; released when its lease expires (its worker died)."""

    __tablename__ = "budget_reservations"

    id: str = Field(primary_key=True, max_length=36)
    run_id: str | None = Field(default=None, index=True, max_length=36)
    entries: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(index=True, max_length=16)  # open | settled | expired
    expires_at: float = Field(index=True)


class Escalation(SQLModel, table=True):
    """A question for a person: who must answer, why, in which format, and what they answered.

    Escalations are rows, not only graph interrupts, so one reviewer can serve
    many paused runs, answers survive restarts, and each answer is labeled data.
    """

    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_status_due", "status", "due_at"),)

    id: str = Field(primary_key=True, max_length=36)
    run_id: str = Field(index=True, max_length=36)
    thread_id: str = Field(index=True, max_length=128)
    tenant_id: str = Field(max_length=128)
    type: str = Field(max_length=32)  # targeted | confirmation | full_handoff | immediate_transfer | collaborative
    trigger: str = Field(max_length=32)  # low_confidence, medium_confidence, budget_breach, human_requested, ...
    audience: str = Field(max_length=16)  # reviewer | user
    pauses_run: bool = True  # collaborative escalations let the agent go on
    reason: str = Field(sa_column=Column(Text, nullable=False))
    question: str = Field(sa_column=Column(Text, nullable=False))
    options: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=16)  # open | answered | expired
    level: int = 0  # times it was passed up unanswered
    answer: str | None = Field(default=None, sa_column=Column(Text))
    note: str | None = Field(default=None, sa_column=Column(Text))
    answered_by: str | None = Field(default=None, max_length=128)
    created_at: float = Field(index=True)
    due_at: float
    answered_at: float | None = None
    delivered_at: float | None = None  # a collaborative note reached the agent's next turn


class GateDecision(SQLModel, table=True):
    """One confidence score, its band and what became of the action: the data thresholds are tuned on."""

    __tablename__ = "gate_decisions"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, max_length=36)
    route: str = Field(max_length=256)
    step: int
    call_id: str = Field(max_length=128)
    target: str = Field(max_length=128)  # the tool's name, or "answer"
    action_kind: str = Field(max_length=16)  # read | write | answer
    estimator: str = Field(max_length=32)
    score: float
    band: str = Field(index=True, max_length=16)  # execute | confirm | human
    reason: str | None = Field(default=None, sa_column=Column(Text))
    escalation_id: str | None = Field(default=None, max_length=36)
    outcome: str | None = Field(default=None, max_length=16)  # executed | failed | approved | rejected | expired
    created_at: float = Field(index=True)
    decided_at: float | None = None


class CacheEntry(SQLModel, table=True):
    """One cached item: an answer (semantic layer), a read tool's result or an embedding (exact layers).

    ``scope`` is a digest of everything that must match for the entry to be served (tenant, route,
    models, system prompt, tool set, conversation so far): another scope's entries are never searched.
    """

    __tablename__ = "cache_entries"
    __table_args__ = (Index("ix_cache_entries_scope_id", "scope", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    layer: str = Field(max_length=16)  # llm_response | read_tool | embedding
    scope: str = Field(max_length=64)
    key: str | None = Field(default=None, index=True, max_length=64)  # exact layers: the digest looked up
    tenant_id: str = Field(index=True, max_length=128)
    route: str = Field(index=True, max_length=256)
    text: str = Field(sa_column=Column(Text, nullable=False))
    vector: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: float
    expires_at: float = Field(index=True)
    hits: int = 0
    last_used_at: float = Field(index=True)


class ContextCheckpoint(SQLModel, table=True):
    """One context checkpoint: the older messages of a thread replaced by a summary and key facts.

    ``raw`` keeps the replaced messages (OpenAI format) for audit; ``key`` (thread and the last replaced
    message) makes a repeated checkpoint over the same turns find this row instead of writing a second.
    """

    __tablename__ = "context_checkpoints"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=64)
    thread_id: str = Field(index=True, max_length=128)
    run_id: str = Field(max_length=36)
    messages_replaced: int
    tokens_before: int
    tokens_after: int
    summary: str = Field(sa_column=Column(Text, nullable=False))
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    raw: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    summarized_by: str = Field(max_length=256)  # the model that wrote the summary, or "fallback"
    created_at: float


class PlanVersion(SQLModel, table=True):
    """One version of a run's plan: a DAG of steps, and why this version replaced the one before.

    A new structure (planned, patched, replanned) is a new version; its steps' statuses advance in place
    while it is current, and freeze when a later version replaces it. ``(run_id, version)`` is unique, so
    two writers racing to make version N+1 cannot both succeed.
    """

    __tablename__ = "plan_versions"
    __table_args__ = (Index("ux_plan_versions_run_version", "run_id", "version", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, max_length=36)
    thread_id: str = Field(max_length=128)
    tenant_id: str = Field(max_length=128)
    version: int
    goal: str = Field(sa_column=Column(Text, nullable=False))
    steps: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    change: str = Field(max_length=16)  # planned | patched | replanned | escalated
    trigger: str | None = Field(default=None, max_length=32)  # tool_failed | breaker_open | limit_hit …
    severity: str | None = Field(default=None, max_length=16)  # minor | major | critical
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    made_by: str = Field(max_length=256)  # the model that wrote it, or "code" for a patch
    created_at: float


class SharedEntity(SQLModel, table=True):
    """One entity several agents work on (a ticket, an order, a document): one row, one version.

    Every write is a compare-and-swap on ``version``, so a writer holding an old snapshot loses instead of
    overwriting; ``changes`` counts writes against the per-entity change budget that stops ping-pong.
    """

    __tablename__ = "shared_entities"
    __table_args__ = (Index("ux_shared_entities_tenant_kind_key", "tenant_id", "kind", "key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=128)
    kind: str = Field(max_length=32)  # ticket | order | document …
    key: str = Field(max_length=128)
    version: int = 1
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    changes: int = 0
    updated_by: str = Field(max_length=128)  # the agent that wrote this version
    updated_at: float


class EntityEvent(SQLModel, table=True):
    """One change of a shared entity: the event log, written in the change's own transaction (outbox).

    ``(tenant_id, kind, key, version)`` is unique, so an entity's history has exactly one event per version;
    ``id`` orders the log for polling consumers.
    """

    __tablename__ = "entity_events"
    __table_args__ = (
        Index("ux_entity_events_entity_version", "tenant_id", "kind", "key", "version", unique=True),
        Index("ix_entity_events_tenant_id_id", "tenant_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=36)
    tenant_id: str = Field(max_length=128)
    kind: str = Field(max_length=32)
    key: str = Field(max_length=128)
    version: int  # the entity version this change produced
    type: str = Field(max_length=32)  # created | changed
    actor: str = Field(max_length=128)
    correlation_id: str | None = Field(default=None, index=True, max_length=64)  # one multi-agent interaction
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    patch: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: float


class EventHandling(SQLModel, table=True):
    """What one handler made of one event: the claim that keeps handlers idempotent, and their failures."""

    __tablename__ = "event_handlings"
    __table_args__ = (Index("ux_event_handlings_handler_event", "handler", "event_id", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    handler: str = Field(max_length=128)
    event_id: str = Field(max_length=36)
    status: str = Field(max_length=16)  # running | waiting (its run waits for a person) | done | failed | dead
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: float


class ThreadLease(SQLModel, table=True):
    """The run that holds a thread: one run at a time writes a thread's checkpoints.

    A run's wall clock bounds it, so the lease expires on its own when its holder died; the same run may
    take its lease again (a resume).
    """

    __tablename__ = "thread_leases"

    thread_id: str = Field(primary_key=True, max_length=128)
    run_id: str = Field(max_length=36)
    expires_at: float


class Release(SQLModel, table=True):
    """A named agent version (prompt, model route, graph config) as it was when first served.

    A name stands for one content digest forever: changing a release means naming a new one.
    """

    __tablename__ = "releases"

    name: str = Field(primary_key=True, max_length=64)
    digest: str = Field(max_length=16)
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: float


class Rollout(SQLModel, table=True):
    """One canary rollout of ``release`` against ``control``, stepping up its share of users."""

    __tablename__ = "rollouts"

    id: int | None = Field(default=None, primary_key=True)
    release: str = Field(index=True, max_length=64)
    control: str = Field(max_length=64)
    # "active" while running or paused, NULL once ended: the unique index allows one active rollout.
    active: str | None = Field(default=None, unique=True, max_length=8)
    status: str = Field(index=True, max_length=16)  # running | paused | promoted | rolled_back
    steps: list[float] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # weights, percent
    step: int = 0  # index into steps
    version: int = 0  # bumped by every change: writers compare and swap
    reason: str | None = Field(default=None, sa_column=Column(Text))
    started_by: str = Field(max_length=128)
    started_at: float
    step_started_at: float
    ended_at: float | None = None


class CanaryAnalysis(SQLModel, table=True):
    """One analysis of a rollout step: each metric of both arms, its test, and what the rollout did."""

    __tablename__ = "canary_analyses"

    id: int | None = Field(default=None, primary_key=True)
    rollout_id: int = Field(index=True)
    step: int
    weight: float
    verdict: str = Field(max_length=16)  # successful | failed | inconclusive
    action: str = Field(max_length=16)  # advanced | promoted | rolled_back | held | waiting | none
    canary_runs: int
    control_runs: int
    metrics: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    by: str = Field(max_length=128)  # "analysis", or the operator who promoted or rolled back by hand
    created_at: float = Field(index=True)


class OperatorAction(SQLModel, table=True):
    """One operator action, allowed or refused: who (and by what role, through what), did what, to what."""

    __tablename__ = "operator_actions"

    id: int | None = Field(default=None, primary_key=True)
    operator: str = Field(index=True, max_length=128)  # "alice", or "local:<os user>" for a person at this machine
    role: str = Field(max_length=16)  # the operator's role then ("" when nobody could be identified)
    via: str = Field(max_length=16)  # cli | ui
    action: str = Field(index=True, max_length=32)  # escalation.answer, dlq.requeue, canary.promote, ...
    target: str = Field(max_length=256)  # the escalation, run or release acted on
    tenant_id: str | None = Field(default=None, max_length=128)  # the target's tenant, when it has one
    allowed: bool
    detail: str = Field(sa_column=Column(Text, nullable=False))  # what the operator gave: an answer, a reason
    outcome: str = Field(sa_column=Column(Text, nullable=False))  # "done", "refused: <why>" or "failed: <error>"
    created_at: float = Field(index=True)
