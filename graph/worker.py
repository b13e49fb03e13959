"""``firebreak worker``: claim queued runs, run them, retry with backoff, dead-letter the hopeless.

A run's outcome decides its fate: an answer (or any deliberate stop: step
limit, repeated failure, safety termination) completes it; a failure or a
timeout is retried after ``retry_base_delay_s * 2^(attempt-1)`` until
``max_attempts``; a rate-limited run (or one whose conversation is busy)
waits and keeps its attempts; a run that waits for a person stays "waiting" and
comes back through the queue once answered. A run out of attempts goes to the dead-letter
queue with its partial state, checkpoint id, tool outputs and decision history. A later attempt (or a
requeue) resumes from the checkpoint with the same run id, so completed writes
are never repeated.

A store failure is the worker's own trouble, not the run's: when the database drops a connection in the
middle of a statement, or cannot be reached, the worker logs one line naming the run and the cause, gives the
run back (or, if the store is still unreachable, leaves it to its lease) without counting the attempt,
backs off (``retry_base_delay_s`` doubling, at least ``poll_s``, at most ``STORE_BACKOFF_CAP_S``) and goes on
claiming. The run is never failed or dead-lettered for it; whoever claims it next resumes it from its
checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError

from app.alerts import raise_alert
from core.config import QueueSettings, Settings
from core.errors import FirebreakError, StoreUnavailable, ThreadBusy
from core.status import RESUMABLE, RunStatus
from graph.agent import Agent, RunResult
from graph.sweeper import sweeping
from memory.queue import QueueStore
from memory.request_keys import RequestKeys, request_key
from memory.tables import DeadLetter, QueuedRun

# The longest a worker waits between tries while its store keeps failing.
STORE_BACKOFF_CAP_S = 30.0

log = logging.getLogger("firebreak.queue")


def is_store_failure(exc: BaseException) -> bool:
    """A failure of the database itself (a dropped connection, an unreachable server, a lock timeout or a
    deadlock), not a mistake in the run or the code: SQLAlchemy's OperationalError and any DBAPI error that
    invalidated its connection, psycopg's OperationalError (the checkpointer's pool, its timeouts included),
    and :class:`StoreUnavailable`."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, SQLAlchemyOperationalError) or exc.connection_invalidated
    return isinstance(exc, psycopg.OperationalError | StoreUnavailable)


def store_cause(exc: BaseException) -> str:
    """The first line of what the database driver said, with the error's type."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {lines[0] if lines else 'no message'}"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def submit(
    store: QueueStore,
    settings: Settings,
    question: str,
    *,
    thread_id: str | None = None,
    tenant_id: str | None = None,
    user_id: str | None = None,
    route: str | None = None,
    task_type: str = "ask",
    idempotency_key: str | None = None,
    clock: Callable[[], float] = time.time,
) -> QueuedRun:
    """Queue one question; a worker will run it. Returns the queued run (its id is the run id).

    ``task_type`` picks the attempt limit from ``[queue] max_attempts_by_task`` (default ``max_attempts``).
    Without ``route`` the run joins whatever rollout serves its user when it runs; naming one pins it to the
    stable release. The same request sent again with the same ``idempotency_key`` returns the run queued
    the first time (one run, one execution); another request under the key raises
    :class:`~core.errors.IdempotencyKeyConflict`.
    """
    question = question.strip()
    if not question:
        raise FirebreakError("the question is empty")
    settings.route(route or settings.agent.default_route)
    tenant, user = settings.identity.resolve(tenant_id, user_id)
    now = clock()
    job = QueuedRun(
        id=str(uuid.uuid4()),
        thread_id=thread_id or str(uuid.uuid4()),
        tenant_id=tenant,
        user_id=user,
        route=route,
        question=question,
        status="queued",
        task_type=task_type,
        max_attempts=settings.queue.max_attempts_by_task.get(task_type, settings.queue.max_attempts),
        available_at=now,
        created_at=now,
        updated_at=now,
    )
    if idempotency_key is None:
        store.submit(job)
        return job
    keys = RequestKeys(store.engine, ttl_s=settings.idempotency.request_key_ttl_s)
    request = request_key(
        tenant,
        idempotency_key,
        entry="submit",
        question=question,
        thread_id=thread_id,
        user_id=user,
        route=route,
        task_type=task_type,
    )
    return store.submit_keyed(job, request, keys, now=now)


@dataclass
class Worker:
    agent: Agent
    store: QueueStore
    name: str = field(default_factory=worker_name)
    clock: Callable[[], float] = time.time
    # Store failures in a row: the backoff before the next claim doubles with each, and a success resets it.
    store_failures: int = field(default=0, init=False)

    @property
    def settings(self) -> QueueSettings:
        return self.agent.services.settings.queue

    @property
    def backoff_s(self) -> float:
        """How long to wait before the next claim after the last store failure (0 when the store is fine)."""
        if not self.store_failures:
            return 0.0
        base = max(self.settings.retry_base_delay_s, self.settings.poll_s)
        return float(min(base * 2 ** min(self.store_failures - 1, 32), STORE_BACKOFF_CAP_S))

    async def run_once(self) -> QueuedRun | None:
        """Claim and process one due run; ``None`` when the queue has nothing due or could not be read
        (then :attr:`backoff_s` says how long to wait)."""
        try:
            job = self.store.claim(self.name, now=self.clock(), lease_s=self.settings.lease_s)
        except Exception as exc:
            if not is_store_failure(exc):
                raise
            self._store_failed(f"could not claim a run: {store_cause(exc)}")
            return None
        if job is None:
            self.store_failures = 0
            return None
        try:
            if job.attempts > job.max_attempts:
                # Its workers died on every attempt (each claim counts one): do not try again.
                await self._bury(job, job.last_error or "every attempt's worker died before finishing")
            else:
                await self._process(job)
        except Exception as exc:
            if not is_store_failure(exc):
                raise
            self._give_back(job, store_cause(exc))
            return job
        self.store_failures = 0
        return job

    async def run_until_idle(self) -> int:
        """Process runs until none is due; returns how many were processed (a run given back after a store
        failure is counted once more when it is processed again)."""
        done = 0
        while True:
            job = await self.run_once()
            if job is None and not self.store_failures:
                return done
            done += job is not None
            await asyncio.sleep(self.backoff_s)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Process runs until ``stop``, sweeping overdue escalations beside them (``graph/sweeper.py``)."""
        async with sweeping(self.agent, self.agent.services.settings.escalation.sweep_period_s):
            while not stop.is_set():
                job = await self.run_once()
                wait = self.backoff_s or (self.settings.poll_s if job is None else 0.0)
                if wait:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=wait)

    def _store_failed(self, what: str) -> None:
        self.store_failures += 1
        log.warning("worker %s: %s; retrying in %.1fs", self.name, what, self.backoff_s)

    def _give_back(self, job: QueuedRun, cause: str) -> None:
        """The worker's store failed while it held ``job``: hand the run back untouched (its attempt not
        counted), or leave it to its lease when the store cannot take even that."""
        try:
            released = self.store.settle(
                job.id,
                self.name,
                now=self.clock(),
                status="queued",
                attempts=job.attempts - 1,
                available_at=self.clock(),
                last_error=f"the worker's database failed: {cause}",
                lease_owner=None,
            )
        except Exception as exc:
            if not is_store_failure(exc):
                raise
            fate = "left to its lease (the database is still failing)"
        else:
            fate = "released to the queue" if released else "already another worker's"
        self._store_failed(f"database failed while processing run {job.id} ({cause}); the run is {fate}")

    async def _process(self, job: QueuedRun) -> None:
        retry_after = None
        try:
            result = await self._run(job)
            status, error, retry_after = result.status, result.error or f"run {result.status}", result.retry_after_s
        except ThreadBusy as exc:
            status, error, retry_after = RunStatus.FAILED, str(exc), min(exc.retry_after_s, self.settings.poll_s * 10)
        except StoreUnavailable:
            raise  # the worker's trouble, not the run's (run_once)
        except FirebreakError as exc:
            status, error = RunStatus.FAILED, str(exc)
        if retry_after is not None:
            # A rate limit or a busy conversation is back-pressure, not a failure: wait, and give the attempt back.
            self.store.settle(
                job.id,
                self.name,
                now=self.clock(),
                status="queued",
                attempts=job.attempts - 1,
                available_at=self.clock() + retry_after,
                last_error=error,
                lease_owner=None,
            )
        elif status == RunStatus.WAITING:
            # Paused for a person, not done: the run stays the queue's (the attempt given back, a pause is no
            # failure) and comes back through it once answered (Agent._resume_if_ready wakes it).
            settled = self.store.settle(
                job.id, self.name, now=self.clock(), status="waiting", attempts=job.attempts - 1, lease_owner=None
            )
            if settled and not self.agent.open_pauses(job.id):
                self.store.wake(job.id, now=self.clock())  # answered before this settled: nobody else wakes it
        elif status not in RESUMABLE:
            # A deliberate stop (a budget breach, say) is a decision, not an outage: retrying it would only spend
            # more. (A rate-limited run waits for its retry-after instead, its attempt given back.)
            self.store.settle(job.id, self.name, now=self.clock(), status="completed", last_error=None)
        elif job.attempts < job.max_attempts:
            delay = self.settings.retry_base_delay_s * 2 ** (job.attempts - 1)
            self.store.settle(
                job.id,
                self.name,
                now=self.clock(),
                status="queued",
                available_at=self.clock() + delay,
                last_error=error,
                lease_owner=None,
            )
        else:
            await self._bury(job, error)

    async def _run(self, job: QueuedRun) -> RunResult:
        record = self.agent.services.runs.get(job.id)
        if record is not None and record.status == RunStatus.WAITING:
            # Woken once its answers were in: resume it with them (None: someone else resumed it first).
            resumed = await self.agent.resume_answered(job.id)
            if resumed is not None:
                return resumed
        if record is None:
            return await self.agent.ask(
                job.question,
                run_id=job.id,
                thread_id=job.thread_id,
                tenant_id=job.tenant_id,
                user_id=job.user_id,
                route=job.route,
            )
        return await self.agent.resume(job.id)

    async def _bury(self, job: QueuedRun, reason: str) -> None:
        now = self.clock()
        if not self.store.settle(job.id, self.name, now=now, status="dead", last_error=reason):
            return  # another worker took the run over meanwhile
        runs = self.agent.services.runs
        events = [{"seq": e.seq, "node": e.node, "kind": e.kind, **e.payload} for e in runs.events(job.id)]
        snapshot = await self.agent.snapshot(job.id)
        self.store.bury(
            DeadLetter(
                run_id=job.id,
                tenant_id=job.tenant_id,
                reason=reason,
                attempts=min(job.attempts, job.max_attempts),
                checkpoint_id=snapshot.pop("checkpoint_id"),
                partial_state=snapshot,
                tool_outputs=[e for e in events if e["kind"] == "tool_result"],
                decisions=events,
                created_at=now,
            )
        )
        self._maybe_alert(now)

    def _maybe_alert(self, now: float) -> None:
        settings = self.settings
        recent = self.store.dead_since(now - settings.dlq_alert_window_s)
        already = any(
            a.kind == "dlq_spike" and a.created_at >= now - settings.dlq_alert_window_s
            for a in self.store.alerts(limit=20)
        )
        if recent >= settings.dlq_alert_threshold and not already:
            raise_alert(
                self.store,
                "dlq_spike",
                f"{recent} runs dead-lettered in the last {settings.dlq_alert_window_s:g}s",
                {"dead_letters": recent, "window_s": settings.dlq_alert_window_s},
                webhook=settings.alert_webhook,
                clock=self.clock,
            )
