"""Repository for runs, their decision history, model-call audit rows and spans.

Every write is a short transaction so a crash loses at most the step in flight;
the LangGraph checkpoint holds the state needed to resume it. A node's events
and audit rows are written when the node ends (``memory/node_rows.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, insert, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.status import SUCCEEDED, RunStatus
from memory import node_rows
from memory.tables import ModelCall, Run, RunEvent, SpanRecord, ThreadLease, table_of, utcnow

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
_CALLS = table_of(ModelCall)
_ADD_MODEL_CALL = insert(_CALLS)
# A run's row is written three times per run (start, its trace id, finish): plain statements, built once.
_RUNS = table_of(Run)
_START = insert(_RUNS)
_SET_TRACE = update(_RUNS).where(_RUNS.c.id == bindparam("b_run")).values(trace_id=bindparam("b_trace"))
_TOTALS = select(
    func.coalesce(func.sum(_CALLS.c.input_tokens), 0),
    func.coalesce(func.sum(_CALLS.c.output_tokens), 0),
    func.coalesce(func.sum(_CALLS.c.cost_usd), 0.0),
).where(_CALLS.c.run_id == bindparam("b_run"))
_FINISH = (
    update(_RUNS)
    .where(_RUNS.c.id == bindparam("b_run"))
    .values(
        status=bindparam("b_status"),
        answer=bindparam("b_answer"),
        error=bindparam("b_error"),
        finished_at=bindparam("b_finished", type_=_RUNS.c.finished_at.type),
        input_tokens=bindparam("b_input"),
        output_tokens=bindparam("b_output"),
        cost_usd=bindparam("b_cost"),
    )
    .returning(*_RUNS.c)
)


class RunStore:
    """Reads and writes the durable record of runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, run: Run) -> None:
        with self.engine.begin() as connection:
            connection.execute(_START, run.model_dump())

    def set_trace(self, run_id: str, trace_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(_SET_TRACE, {"b_run": run_id, "b_trace": trace_id})

    def finish(self, run_id: str, *, status: str, answer: str | None = None, error: str | None = None) -> Run:
        """Close the run and total its usage from the model-call rows."""
        with self.engine.begin() as connection:
            tokens_in, tokens_out, cost = connection.execute(_TOTALS, {"b_run": run_id}).one()
            row = connection.execute(
                _FINISH,
                {
                    "b_run": run_id,
                    "b_status": status,
                    "b_answer": answer,
                    "b_error": error,
                    # A waiting run is paused for a person, not finished.
                    "b_finished": None if status == RunStatus.WAITING else utcnow(),
                    "b_input": int(tokens_in),
                    "b_output": int(tokens_out),
                    "b_cost": float(cost),
                },
            ).one_or_none()
        if row is None:
            raise KeyError(run_id)
        return Run(**row._mapping)

    def restart(self, run_id: str) -> None:
        """Mark a run as running again (a resume after a crash or a requeue)."""
        with Session(self.engine) as session:
            run = session.get(Run, run_id)
            if run is not None:
                run.status, run.error, run.finished_at = RunStatus.RUNNING, None, None
                session.add(run)
                session.commit()

    def claim_waiting(self, run_id: str) -> bool:
        """Take a waiting run to resume it; False when another process took it first (or it is not waiting)."""
        runs = table_of(Run)
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == RunStatus.WAITING)
                .values(status=RunStatus.RUNNING)
                .returning(runs.c.id)
            ).first()
        return taken is not None

    def add_event(self, run_id: str, node: str, kind: str, payload: dict[str, Any]) -> None:
        self._add(_ADD_EVENT, {"b_run": run_id, "b_node": node, "b_kind": kind, "b_payload": payload, "b_at": utcnow()})

    def record_model_call(self, call: ModelCall) -> None:
        self._add(_ADD_MODEL_CALL, call.model_dump(exclude={"id"}))

    def _add(self, statement: Any, parameters: dict[str, Any]) -> None:
        node_rows.write(self.engine, statement, parameters)

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
        settled = SUCCEEDED | {RunStatus.RUNNING, RunStatus.QUEUED}
        abandoned = and_(runs.c.status == RunStatus.RUNNING, ~held)
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
