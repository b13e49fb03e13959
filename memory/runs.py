"""Repository for runs, their decision history, model-call audit rows and spans.

Every write is a short transaction so a crash loses at most the step in flight;
the LangGraph checkpoint holds the state needed to resume it. Inside
:meth:`RunStore.together` (every graph node runs in one) a node's events and
audit rows are written in one transaction when the node ends, just before its
checkpoint: what a crash loses is then exactly the node that the resume runs
again, and a node costs one commit instead of one per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, insert, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from memory.tables import ModelCall, Run, RunEvent, SpanRecord, ThreadLease, table_of, utcnow

SUCCESS_STATUSES = frozenset({"answered", "handed_off"})
IN_PROGRESS_STATUSES = frozenset({"running", "waiting", "queued"})
# Ended on the way, its graph unfinished (an error, its wall clock, a rate limit): such a run resumes from its last
# checkpoint, so the queue retries it and an operator may requeue it. Every other error status is a deliberate
# stop (the safety breaker, a budget cap, the step limit, a call that kept failing, an empty reply): its graph
# ended, so resuming it would run nothing, and running it again would repeat what was stopped.
RESUMABLE_STATUSES = frozenset({"failed", "timed_out", "rate_limited"})

# Written on every step of every run: one INSERT … SELECT built once (building a statement costs more than
# running it), numbering the run's events in the same statement.
_EVENTS = table_of(RunEvent)
_ADD_EVENT = insert(_EVENTS).values(
    run_id=bindparam("b_run"),
    seq=select(func.coalesce(func.max(_EVENTS.c.seq), 0) + 1)
    .where(_EVENTS.c.run_id == bindparam("b_run"))
    .scalar_subquery(),
    node=bindparam("b_node"),
    kind=bindparam("b_kind"),
    payload=bindparam("b_payload", type_=_EVENTS.c.payload.type),
    created_at=bindparam("b_at", type_=_EVENTS.c.created_at.type),
)
_ADD_MODEL_CALL = insert(table_of(ModelCall))


@dataclass
class _Pending:
    """Rows held for one transaction at the end of a :meth:`RunStore.together` block."""

    rows: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    written: bool = False  # a row that arrives later (from a task the block left behind) is written at once


_pending: ContextVar[_Pending | None] = ContextVar("firebreak_pending_run_rows", default=None)


def is_error(status: str) -> bool:
    """A finished run that did not end with an answer (failed, timed out, terminated, over budget, …)."""
    return status not in SUCCESS_STATUSES and status not in IN_PROGRESS_STATUSES


def is_unclean(status: str) -> bool:
    """A run an operator may have to act on: it ended without an answer, or it waits for a person."""
    return status == "waiting" or is_error(status)


class RunStore:
    """Reads and writes the durable record of runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, run: Run) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(run)
            session.commit()

    def set_trace(self, run_id: str, trace_id: str) -> None:
        with Session(self.engine) as session:
            run = session.get(Run, run_id)
            if run is not None:
                run.trace_id = trace_id
                session.add(run)
                session.commit()

    def finish(self, run_id: str, *, status: str, answer: str | None = None, error: str | None = None) -> Run:
        """Close the run and total its usage from the model-call rows."""
        with Session(self.engine) as session:
            run = session.get(Run, run_id)
            if run is None:
                raise KeyError(run_id)
            totals = session.exec(
                select(
                    func.coalesce(func.sum(ModelCall.input_tokens), 0),
                    func.coalesce(func.sum(ModelCall.output_tokens), 0),
                    func.coalesce(func.sum(ModelCall.cost_usd), 0.0),
                ).where(ModelCall.run_id == run_id)
            ).one()
            run.input_tokens, run.output_tokens, run.cost_usd = int(totals[0]), int(totals[1]), float(totals[2])
            # A waiting run is paused for a person, not finished.
            finished_at = None if status == "waiting" else utcnow()
            run.status, run.answer, run.error, run.finished_at = status, answer, error, finished_at
            session.add(run)
            session.commit()
            session.refresh(run)
            return run

    def restart(self, run_id: str) -> None:
        """Mark a run as running again (a resume after a crash or a requeue)."""
        with Session(self.engine) as session:
            run = session.get(Run, run_id)
            if run is not None:
                run.status, run.error, run.finished_at = "running", None, None
                session.add(run)
                session.commit()

    def claim_waiting(self, run_id: str) -> bool:
        """Take a waiting run to resume it; False when another process took it first (or it is not waiting)."""
        runs = table_of(Run)
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == "waiting")
                .values(status="running")
                .returning(runs.c.id)
            ).first()
        return taken is not None

    @contextmanager
    def together(self) -> Iterator[None]:
        """Events and audit rows written inside go to the database in one transaction when the block ends,
        whether it returns or raises. A nested block (a node that runs another agent's run) writes its own rows
        when it ends: that run may read them back before the outer block ends."""
        pending = _Pending()
        token = _pending.set(pending)
        try:
            yield
        finally:
            _pending.reset(token)
            pending.written = True
            self._write(pending.rows)

    def add_event(self, run_id: str, node: str, kind: str, payload: dict[str, Any]) -> None:
        self._add(_ADD_EVENT, {"b_run": run_id, "b_node": node, "b_kind": kind, "b_payload": payload, "b_at": utcnow()})

    def record_model_call(self, call: ModelCall) -> None:
        self._add(_ADD_MODEL_CALL, call.model_dump(exclude={"id"}))

    def _add(self, statement: Any, parameters: dict[str, Any]) -> None:
        pending = _pending.get()
        if pending is None or pending.written:
            self._write([(statement, parameters)])
        else:
            pending.rows.append((statement, parameters))

    def _write(self, rows: list[tuple[Any, dict[str, Any]]]) -> None:
        if not rows:
            return
        with self.engine.begin() as connection:
            for statement, parameters in rows:  # one by one: each event's number reads the one before it
                connection.execute(statement, parameters)

    def recent_model_calls(self, *, tenant_id: str | None = None, limit: int = 100) -> Sequence[ModelCall]:
        """Newest first."""
        with Session(self.engine) as session:
            query = select(ModelCall).order_by(col(ModelCall.id).desc()).limit(limit)
            if tenant_id is not None:
                query = query.where(ModelCall.tenant_id == tenant_id)
            return session.exec(query).all()

    def get(self, run_id: str) -> Run | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Run, run_id)

    def events(self, run_id: str) -> Sequence[RunEvent]:
        with Session(self.engine) as session:
            return session.exec(select(RunEvent).where(RunEvent.run_id == run_id).order_by(col(RunEvent.seq))).all()

    def model_calls(self, run_id: str) -> Sequence[ModelCall]:
        with Session(self.engine) as session:
            return session.exec(select(ModelCall).where(ModelCall.run_id == run_id).order_by(col(ModelCall.id))).all()

    def recent(self, *, limit: int = 50, tenant_id: str | None = None, thread_id: str | None = None) -> Sequence[Run]:
        with Session(self.engine) as session:
            query = select(Run).order_by(col(Run.created_at).desc()).limit(limit)
            if tenant_id is not None:
                query = query.where(Run.tenant_id == tenant_id)
            if thread_id is not None:
                query = query.where(Run.thread_id == thread_id)
            return session.exec(query).all()

    def unclean(self, *, now: float, limit: int = 100, tenant_id: str | None = None) -> Sequence[Run]:
        """Runs that did not end with a clean answer, newest first: ended with an error, waiting for a person, or
        still "running" without holding their thread (the process running them died: a live run holds its
        thread from before it is recorded as running until after it is settled)."""
        runs, leases = table_of(Run), table_of(ThreadLease)
        held = exists().where(
            leases.c.thread_id == runs.c.thread_id, leases.c.run_id == runs.c.id, leases.c.expires_at >= now
        )
        settled = SUCCESS_STATUSES | {"running", "queued"}
        abandoned = and_(runs.c.status == "running", ~held)
        query = select(Run).where(or_(col(Run.status).not_in(settled), abandoned))
        if tenant_id is not None:
            query = query.where(Run.tenant_id == tenant_id)
        with Session(self.engine) as session:
            return session.exec(query.order_by(col(Run.created_at).desc()).limit(limit)).all()

    def latest_runs(self, thread_ids: Iterable[str]) -> dict[str, str]:
        """The newest run of each thread: an older one was superseded (its conversation went on without it)."""
        latest: dict[str, str] = {}
        with Session(self.engine) as session:
            rows = session.exec(
                select(Run.thread_id, Run.id)
                .where(col(Run.thread_id).in_(set(thread_ids)))
                .order_by(col(Run.created_at))
            ).all()
        for thread_id, run_id in rows:
            latest[thread_id] = run_id
        return latest

    def all_spans(self, limit: int = 1000) -> Sequence[SpanRecord]:
        """The most recent spans of any trace, oldest first (for tests and the Ops view)."""
        with Session(self.engine) as session:
            query = select(SpanRecord).order_by(col(SpanRecord.start_ns).desc()).limit(limit)
            return list(reversed(session.exec(query).all()))

    def spans(self, run_id: str) -> Sequence[SpanRecord]:
        """Every span of the run's trace, in start order."""
        with Session(self.engine) as session:
            run = session.get(Run, run_id)
            if run is None or run.trace_id is None:
                return []
            query = select(SpanRecord).where(SpanRecord.trace_id == run.trace_id).order_by(col(SpanRecord.start_ns))
            return session.exec(query).all()
