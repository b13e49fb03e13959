"""``firebreak worker``: claim queued runs, run them, retry with backoff, dead-letter the hopeless.

A run's outcome decides its fate: an answer (or any deliberate stop: step
limit, repeated failure, safety termination) completes it; a failure or a
timeout is retried after ``retry_base_delay_s * 2^(attempt-1)`` until
``max_attempts``; a rate-limited run (or one whose conversation is busy)
waits and keeps its attempts. A run out of attempts goes to the dead-letter
queue with its partial state, checkpoint id, tool outputs and decision history. A later attempt (or a
requeue) resumes from the checkpoint with the same run id, so completed writes
are never repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from app.alerts import raise_alert
from app.config import QueueSettings, Settings
from app.errors import FirebreakError, ThreadBusy
from graph.agent import Agent, RunResult
from memory.queue import QueueStore
from memory.tables import DeadLetter, QueuedRun

# A budget breach is a decision, not an outage: retrying it would only spend more.
RETRYABLE = frozenset({"failed", "timed_out"})


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
    clock: Callable[[], float] = time.time,
) -> QueuedRun:
    """Queue one question; a worker will run it. Returns the queued run (its id is the run id).

    ``task_type`` picks the attempt limit from ``[queue] max_attempts_by_task`` (default ``max_attempts``).
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
        route=route or settings.agent.default_route,
        question=question,
        status="queued",
        task_type=task_type,
        max_attempts=settings.queue.max_attempts_by_task.get(task_type, settings.queue.max_attempts),
        available_at=now,
        created_at=now,
        updated_at=now,
    )
    store.submit(job)
    return job


@dataclass
class Worker:
    agent: Agent
    store: QueueStore
    name: str = field(default_factory=worker_name)
    clock: Callable[[], float] = time.time

    @property
    def settings(self) -> QueueSettings:
        return self.agent.services.settings.queue

    async def run_once(self) -> QueuedRun | None:
        """Claim and process one due run; ``None`` when the queue has nothing due."""
        job = self.store.claim(self.name, now=self.clock(), lease_s=self.settings.lease_s)
        if job is None:
            return None
        if job.attempts > job.max_attempts:
            # Its workers died on every attempt (each claim counts one): do not try again.
            await self._bury(job, job.last_error or "every attempt's worker died before finishing")
        else:
            await self._process(job)
        return job

    async def run_until_idle(self) -> int:
        """Process runs until none is due; returns how many were processed."""
        done = 0
        while await self.run_once() is not None:
            done += 1
        return done

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if await self.run_once() is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.poll_s)

    async def _process(self, job: QueuedRun) -> None:
        retry_after = None
        try:
            result = await self._run(job)
            status, error, retry_after = result.status, result.error or f"run {result.status}", result.retry_after_s
        except ThreadBusy as exc:
            status, error, retry_after = "failed", str(exc), min(exc.retry_after_s, self.settings.poll_s * 10)
        except FirebreakError as exc:
            status, error = "failed", str(exc)
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
        elif status not in RETRYABLE:
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
        if self.agent.services.runs.get(job.id) is None:
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
