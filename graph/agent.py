"""The agent: one object that owns the services, the checkpointer and the compiled graph.

Use it as an async context manager::

    async with Agent.open(load_settings()) as agent:
        result = await agent.ask("What is the capital of France?")
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command
from opentelemetry.trace import SpanKind

from app.canary.controller import Assignment
from app.containment.escalation import APPROVALS, expiry_answer
from app.gateway import Usage
from app.services import Services, build_services
from app.telemetry import mark_error
from core.config import Settings
from core.errors import (
    BudgetExceeded,
    FirebreakError,
    RateLimited,
    RequestInProgress,
    RunDeadlineExceeded,
    ScriptError,
    ThreadBusy,
)
from graph.builder import GraphBuilder, default_builder
from graph.state import SOLO_AGENT, RunContext
from memory.checkpointer import open_checkpointer
from memory.queue import QueueStore
from memory.request_keys import RequestKey, RequestKeys, request_key
from memory.tables import Escalation, Run

MAX_QUESTION_CHARS = 20_000
# A thread lease outlives its run's wall clock by this much: the run settles its row and checkpoint after it.
THREAD_GRACE_S = 30.0
REFUSALS = frozenset({"no", "n", "reject", "cancel", "stop"})


@dataclass(frozen=True)
class RunResult:
    """The outcome of one run, as the CLI's ``--json`` prints it."""

    run_id: str
    thread_id: str
    status: str
    answer: str | None
    trace_id: str | None
    usage: Usage
    error: str | None = None
    escalations: list[dict[str, Any]] = field(default_factory=list)  # what a waiting run waits for
    cache: dict[str, Any] | None = None  # the cache hit that answered the run: similarity, matched, savings
    retry_after_s: float | None = None  # a rate-limited run may try again this much later

    def as_dict(self) -> dict[str, Any]:
        return {
            "cache": self.cache,
            "escalations": self.escalations,
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "status": self.status,
            "answer": self.answer,
            "trace_id": self.trace_id,
            "error": self.error,
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
                "cost_usd": self.usage.cost_usd,
            },
        }


@dataclass(frozen=True)
class Token:
    """A piece of the answer as the model produces it."""

    text: str


def _fresh_input(question: str, planning: bool) -> dict[str, Any]:
    return {
        "messages": [HumanMessage(content=question)],
        "planning": planning,
        "plan": None,
        "replans": 0,
        "steps": 0,
        "status": "running",
        "answer": "",
        "stop_detail": "",
        "verdicts": {},
        "gate_ids": {},
        "rejected": [],
        "breach": None,
        "escalation": None,
        "resume_to": "",
        "pauses": 0,
        "cache": None,
        "flagged": False,
    }


def escalation_view(row: Escalation) -> dict[str, Any]:
    """What a waiting run's caller needs to know about one escalation."""
    return {
        "id": row.id,
        "type": row.type,
        "audience": row.audience,
        "trigger": row.trigger,
        "reason": row.reason,
        "question": row.question,
        "options": row.options,
        "status": row.status,
    }


def _status_for(exc: BaseException) -> str:
    if isinstance(exc, RunDeadlineExceeded):
        return "timed_out"
    if isinstance(exc, BudgetExceeded):
        return "budget_exceeded"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    return "failed"


class Agent:
    """Runs questions through the graph and records each run."""

    def __init__(self, services: Services, graph: Any, stack: AsyncExitStack, graph_digest: str = "") -> None:
        self.services = services
        self.graph = graph
        self.graph_digest = graph_digest
        self._stack = stack

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        builder: GraphBuilder | None = None,
        services: Services | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
    ) -> Agent:
        """Connect every store (failing loudly if one is unreachable) and compile the graph.

        ``checkpointer`` replaces the one for ``settings.database_url``; its owner opens and closes it.
        """
        stack = AsyncExitStack()
        services = services or build_services(settings)
        stack.callback(services.close)
        if checkpointer is None:
            try:
                checkpointer = await stack.enter_async_context(open_checkpointer(settings.database_url))
            except Exception:
                await stack.aclose()
                raise
        if settings.cache.enabled:
            await asyncio.to_thread(services.cache.warm)  # seconds, once per process: not inside a run's wall clock
        builder = builder or default_builder()
        return cls(services, builder.compile(checkpointer), stack, builder.digest())

    @classmethod
    def open(cls, settings: Settings, **kwargs: Any) -> _AgentContext:
        return _AgentContext(cls, settings, kwargs)

    async def close(self) -> None:
        await self._stack.aclose()

    def settle_script(self, result: RunResult) -> RunResult:
        """Fail ``result`` if a scripted model's script was not used exactly as written."""
        try:
            self.services.gateway.verify_script_consumed()
        except ScriptError as exc:
            if result.error == str(exc):
                return result
            self.services.runs.finish(result.run_id, status="failed", answer=result.answer, error=str(exc))
            return replace(result, status="failed", error=str(exc))
        return result

    async def ask(self, question: str, **kwargs: Any) -> RunResult:
        """Run one question to the end and return its result."""
        result = None
        async for item in self.stream(question, stream_tokens=False, **kwargs):
            if isinstance(item, RunResult):
                result = item
        assert result is not None
        return result

    async def stream(
        self,
        question: str,
        *,
        thread_id: str | None = None,
        tenant_id: str | None = None,
        user_id: str | None = None,
        route: str | None = None,
        stream_tokens: bool = True,
        run_id: str | None = None,
        plan: bool | None = None,
        agent: str = SOLO_AGENT,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncIterator[Token | RunResult]:
        """Yield answer tokens as they come, then the :class:`RunResult`. ``run_id`` is given by the queue;
        ``plan`` makes the run plan first (default: ``[planner] enabled``); ``agent`` names its role and
        ``correlation_id`` the team run it belongs to (see ``graph/team.py``). Without ``route`` the run
        joins the rollout serving its user (sticky); naming one pins it to the stable release.

        ``idempotency_key`` (Stripe's semantics, kept ``[idempotency] request_key_ttl_s``, per tenant): the
        same request sent again under the key yields the first run's :class:`RunResult` and runs nothing (a
        run still going raises :class:`RequestInProgress`); another request under it raises
        :class:`IdempotencyKeyConflict`."""
        settings = self.services.settings
        question = question.strip()
        if not question:
            raise FirebreakError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise FirebreakError(
                f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}. Shorten it."
            )
        tenant_id, user_id = settings.identity.resolve(tenant_id, user_id)
        request = None
        if idempotency_key is not None:
            # What the caller asked, not what was resolved for it: a retry must match even after a promotion.
            request = request_key(
                tenant_id,
                idempotency_key,
                entry="ask",
                question=question,
                thread_id=thread_id,
                user_id=user_id,
                route=route,
                plan=plan,
                agent=agent,
            )
            earlier = self._request_keys.find(request, now=self.services.clock())
            if earlier is not None:
                yield self._repeated(request, earlier)
                return
        if thread_id is not None:
            self._check_thread_tenant(thread_id, tenant_id)
            waiting = await self._answer_waiting_thread(thread_id, question, user_id)
            if waiting is not None:
                yield waiting
                return
        thread_id = thread_id or str(uuid.uuid4())
        canary = self.services.canary
        # A caller who names the route pins the model: such a run serves the stable release and stays out of
        # any rollout's comparison, which must hold everything but the release equal.
        serving = canary.serve(tenant_id, user_id, thread_id) if route is None else Assignment(canary.stable())
        route = route or serving.release.route
        self.services.gateway.prepare(route)  # a configuration mistake fails before anything is recorded
        run = Run(
            id=run_id or str(uuid.uuid4()),
            thread_id=thread_id,
            tenant_id=tenant_id,
            user_id=user_id,
            route=route,
            agent=agent,
            correlation_id=correlation_id,
            release=serving.release.name,
            arm=serving.arm,
            rollout_id=serving.rollout_id,
            rollout_step=serving.step,
            status="running",
            question=question,
        )
        if request is not None:
            earlier = self._request_keys.claim(request, run.id, now=self.services.clock())
            if earlier != run.id:  # the same request, sent at the same time by another caller, won the key
                yield self._repeated(request, earlier)
                return
        try:
            self._take_thread(run.thread_id, run.id)
            self.services.runs.start(run)
        except BaseException:
            # Nothing was recorded: the thread (if this run took it) is free, and the key may be sent again.
            self.services.threads.release(run.thread_id, run.id)
            if request is not None:
                self._request_keys.release(request, run.id)
            raise
        planning = serving.release.planner if plan is None else plan
        async for item in self._execute(self._context(run, stream_tokens), _fresh_input(question, planning)):
            yield item

    async def resume(self, run_id: str) -> RunResult:
        """Continue an interrupted run from its last checkpoint, with the same run id (and so the same op_ids)."""
        run = self.services.runs.get(run_id)
        if run is None:
            raise FirebreakError(f"no run {run_id!r} to resume")
        state = await self.graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        graph_input: dict[str, Any] | None = None
        if state.metadata is None or state.metadata.get("run_id") != run_id:
            # The run died before its first checkpoint: start it (same run id) from its question.
            graph_input = _fresh_input(run.question, self.services.canary.release(run.release).planner)
        elif not state.tasks:
            # The graph finished; only recording the outcome was lost. Record it, run nothing again.
            # (Not ``state.next``: it is also empty when a run died after a step's writes were saved but
            # before the checkpoint that follows them, and such a run must go on from those writes.)
            values = state.values
            return self._result(
                self.services.runs.finish(run_id, status=values.get("status", "failed"), answer=values.get("answer"))
            )
        self._take_thread(run.thread_id, run_id)
        self.services.runs.restart(run_id)
        result = None
        async for item in self._execute(self._context(run, stream_tokens=False), graph_input):
            result = item
        assert isinstance(result, RunResult)
        return result

    @property
    def _request_keys(self) -> RequestKeys:
        return RequestKeys(self.services.engine, ttl_s=self.services.settings.idempotency.request_key_ttl_s)

    def _repeated(self, request: RequestKey, run_id: str) -> RunResult:
        """The outcome of the run an identical earlier request started; raises while it is still running."""
        run = self.services.runs.get(run_id)
        if run is None or run.status == "running":
            raise RequestInProgress(request.key, run_id)
        return self._result(run)

    def _check_thread_tenant(self, thread_id: str, tenant_id: str) -> None:
        """A thread belongs to the tenant of its first run: another tenant continuing it would read its history
        (the checkpoint is keyed by thread id alone), so that is refused before anything runs."""
        earlier = self.services.runs.recent(limit=1, thread_id=thread_id)
        if earlier and earlier[0].tenant_id != tenant_id:
            raise FirebreakError(f"thread {thread_id} belongs to another tenant: start a new thread")

    async def _answer_waiting_thread(self, thread_id: str, text: str, user_id: str) -> RunResult | None:
        """A paused conversation takes no new question: "yes"/"no" answer its confirmation; else a clear error."""
        pending = [row for row in self.services.escalations.list(thread_id=thread_id) if row.pauses_run]
        if not pending:
            return None
        confirmations = [row for row in pending if row.audience == "user"]
        word = text.strip().strip(".!").lower()
        if confirmations and word in APPROVALS | REFUSALS:
            answer = "yes" if word in APPROVALS else "no"
            result = None
            for row in confirmations:
                result = await self.answer(row.id, answer, by=f"user:{user_id}") or result
            # Still waiting (for a reviewer too): say so, rather than take "yes" for a new question.
            waiting = self.services.runs.get(confirmations[0].run_id)
            assert waiting is not None
            return result or self._result(waiting)
        if confirmations:
            raise FirebreakError(
                f"this conversation is waiting for your answer: {confirmations[0].question} (yes or no)"
            )
        raise FirebreakError(
            f"this conversation is waiting for a reviewer ({pending[0].type}: {pending[0].reason}); "
            "the reply will appear here once they answer"
        )

    def _result(self, run: Run, cache: dict[str, Any] | None = None) -> RunResult:
        """A run's outcome as recorded, with what it still waits for when it waits."""
        waiting_for = []
        if run.status == "waiting":
            rows = self.services.escalations.for_run(run.id)
            waiting_for = [escalation_view(row) for row in rows if row.status == "open" and row.pauses_run]
        usage = Usage(run.input_tokens, run.output_tokens, run.cost_usd)
        return RunResult(
            run.id, run.thread_id, run.status, run.answer, run.trace_id, usage, run.error, waiting_for, cache
        )

    async def answer(self, escalation_id: str, answer: str, *, by: str, note: str | None = None) -> RunResult | None:
        """Record a person's answer; when it was the last one its run waits for, resume the run and return it.

        ``escalation_id`` may be a unique prefix. Works from any process: the answers are rows and the
        run resumes from its checkpoint.
        """
        store = self.services.escalations
        row = store.find(escalation_id)
        if row.options and answer not in row.options and answer.lower() not in APPROVALS | REFUSALS:
            raise FirebreakError(f"{answer!r} is not an answer to escalation {row.id[:8]}: use one of {row.options}")
        store.answer(row.id, answer, by=by, note=note, now=self.services.clock())
        return await self._resume_if_ready(row.run_id) if row.pauses_run else None

    async def sweep(self) -> list[tuple[Escalation, str]]:
        """Handle overdue escalations by their type's policy (pass up a level, or expire) and resume
        the runs whose last answer that was. Returns (escalation, "escalated" | "expired") pairs.

        Any number of processes may sweep at once (``graph/sweeper.py`` runs it in each long-running one):
        each transition is a compare-and-set, and only the process that made it alerts and resumes."""
        services = self.services
        settings = services.settings.escalation
        now = services.clock()
        for escalation_type, policy in settings.policies.items():
            # Otherwise a deadline set by a clock that was ahead would leave its escalation unanswered for as
            # long as the clock's jump back, never passed up.
            services.escalations.restart_late_deadlines(escalation_type, now=now, timeout_s=policy.timeout_s)
        handled: list[tuple[Escalation, str]] = []
        for row in services.escalations.overdue(now):
            policy = settings.policies[row.type]  # type: ignore[index]
            if policy.on_timeout == "escalate" and row.level < settings.max_level:
                if services.escalations.escalate(row.id, from_level=row.level, due_at=now + policy.timeout_s):
                    handled.append((row, "escalated"))
            elif services.escalations.expire(row.id, expiry_answer(row), now=now):
                handled.append((row, "expired"))
        for row, action in handled:
            services.alert(
                f"escalation_{action}",
                f"escalation {row.id[:8]} ({row.type}, {row.trigger}) was not answered in time and {action}",
                {
                    "escalation_id": row.id,
                    "run_id": row.run_id,
                    "level": row.level + (action == "escalated"),
                    "due_at": row.due_at,  # the deadline it missed: how late the sweep came is measurable
                },
            )
        for run_id in {row.run_id for row, action in handled if action == "expired" and row.pauses_run}:
            await self._resume_if_ready(run_id)
        return handled

    def open_pauses(self, run_id: str) -> list[Escalation]:
        """The escalations ``run_id`` waits for that nobody has answered yet."""
        return [row for row in self.services.escalations.for_run(run_id) if row.status == "open" and row.pauses_run]

    async def _resume_if_ready(self, run_id: str) -> RunResult | None:
        """Resume a waiting run once none of its pausing escalations is open; exactly one process wins.

        A queued run is not resumed here: it goes back to the queue (status "queued" in the result), so a worker
        resumes it with the queue's attempts, backoff and dead-letter queue, like any queued run."""
        if self.open_pauses(run_id):
            return None
        run = self.services.runs.get(run_id)
        assert run is not None
        queue = QueueStore(self.services.engine)
        job = queue.get(run_id)
        if job is not None and job.status in ("waiting", "running", "queued"):
            # A "running" one's worker has not settled the pause yet: it wakes the run itself (Worker._process).
            queue.wake(run_id, now=self.services.clock())
            return replace(self._result(run), status="queued")
        return await self.resume_answered(run_id)

    async def resume_answered(self, run_id: str) -> RunResult | None:
        """Resume a waiting run with its answers (the queue's worker, or ``_resume_if_ready``); None when another
        process took it first or it is not waiting."""
        run = self.services.runs.get(run_id)
        assert run is not None
        self._take_thread(run.thread_id, run_id)
        if not self.services.runs.claim_waiting(run_id):
            self.services.threads.release(run.thread_id, run_id)
            return None
        state = await self.graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        if not state.next or (state.metadata or {}).get("run_id") != run_id:
            # The thread moved on without this run (it cannot, through Agent; but a checkpoint is shared data):
            # resuming would continue someone else's run. Record it instead of guessing.
            error = "its checkpoint is no longer the thread's latest; nothing was resumed"
            self.services.threads.release(run.thread_id, run_id)
            return self._result(self.services.runs.finish(run_id, status="failed", error=error))
        result = None
        async for item in self._execute(self._context(run, stream_tokens=False), Command(resume={"answered": True})):
            result = item
        assert isinstance(result, RunResult)
        return result

    def _take_thread(self, thread_id: str, run_id: str) -> None:
        """Hold the thread for this run (until ``_execute`` ends, or its wall clock and a grace period pass),
        or raise :class:`ThreadBusy`: two runs writing one thread's checkpoints would interleave them."""
        now, wall = self.services.clock(), self.services.settings.agent.run_wall_clock_s
        holder = self.services.threads.acquire(thread_id, run_id, now=now, ttl_s=wall + THREAD_GRACE_S)
        if holder is not None:
            raise ThreadBusy(thread_id, holder.run_id, max(holder.expires_at - now, 0.0))

    def _budget_alert(self, context: RunContext, exc: BudgetExceeded) -> None:
        self.services.alert(
            "budget_breach",
            f"run {context.run_id} stopped: {exc}",
            {
                "run_id": context.run_id,
                "tenant_id": context.tenant_id,
                "scope": exc.scope,
                "resource": exc.resource,
                "limit": exc.limit,
                "used": exc.used,
                "requested": exc.requested,
            },
        )

    async def snapshot(self, run_id: str) -> dict[str, Any]:
        """The run's last checkpoint as plain data, for a dead letter: its id and the messages so far."""
        run = self.services.runs.get(run_id)
        if run is None:
            return {"checkpoint_id": None, "messages": []}
        state = await self.graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        messages = [
            {"type": message.type, "content": message.text, "tool_calls": getattr(message, "tool_calls", [])}
            for message in state.values.get("messages", [])
        ]
        return {
            "checkpoint_id": state.config.get("configurable", {}).get("checkpoint_id"),
            "next": list(state.next),
            "steps": state.values.get("steps"),
            "messages": messages,
        }

    def _context(self, run: Run, stream_tokens: bool) -> RunContext:
        return RunContext(
            services=self.services,
            run_id=run.id,
            thread_id=run.thread_id,
            tenant_id=run.tenant_id,
            user_id=run.user_id,
            route=run.route,
            deadline=time.monotonic() + self.services.settings.agent.run_wall_clock_s,
            stream_tokens=stream_tokens,
            graph_digest=self.graph_digest,
            agent=run.agent,
            correlation_id=run.correlation_id or run.id,
            release=self.services.canary.release(run.release),
            arm=run.arm,
        )

    async def _execute(
        self, context: RunContext, graph_input: dict[str, Any] | Command[Any] | None
    ) -> AsyncIterator[Token | RunResult]:
        """Run the graph on the thread this run holds, then let the thread go, whatever happens."""
        try:
            async for item in self._execute_held(context, graph_input):
                yield item
        finally:
            self.services.threads.release(context.thread_id, context.run_id)

    async def _execute_held(
        self, context: RunContext, graph_input: dict[str, Any] | Command[Any] | None
    ) -> AsyncIterator[Token | RunResult]:
        """Run the graph inside the run's ``invoke_agent`` span and settle the run row, whatever happens."""
        runs = self.services.runs
        tracer = self.services.telemetry.tracer
        status, answer, error, cache = "failed", None, None, None
        retry_after: float | None = None
        with tracer.start_as_current_span("invoke_agent firebreak", kind=SpanKind.INTERNAL) as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": context.agent,
                    **context.release_attributes,
                    "firebreak.resumed": not isinstance(graph_input, dict),
                    **context.ids,
                }
            )
            if isinstance(graph_input, dict):
                self.services.telemetry.content(span, "gen_ai.input.messages", graph_input["messages"][0].text)
            trace_id = format(span.get_span_context().trace_id, "032x")
            runs.set_trace(context.run_id, trace_id)
            try:
                async for mode, chunk in self.graph.astream(
                    graph_input,
                    config={
                        "configurable": {"thread_id": context.thread_id},
                        # Checkpoints name their run, so a resume can tell its own progress from the thread's past.
                        "metadata": {"run_id": context.run_id},
                        "recursion_limit": self.services.settings.agent.max_steps * 6 + 10,
                    },
                    context=context,
                    stream_mode=["custom", "values"],
                    durability="sync",
                ):
                    if mode == "custom" and "token" in chunk:
                        yield Token(chunk["token"])
                    elif mode == "values" and "__interrupt__" in chunk:
                        status = "waiting"
                    elif mode == "values":
                        status, answer = chunk.get("status", status), chunk.get("answer") or answer
                        cache = (chunk.get("cache") or {}).get("hit") or cache
            except FirebreakError as exc:
                # Whatever failed once the wall clock was spent (a model call cut to the remaining time, say)
                # failed because the run ran out of time.
                status, error = _status_for(exc), str(exc)
                retry_after = exc.retry_after_s if isinstance(exc, RateLimited) else None
                if time.monotonic() >= context.deadline and not isinstance(exc, RunDeadlineExceeded):
                    wall = self.services.settings.agent.run_wall_clock_s
                    status, error = "timed_out", f"run {context.run_id} spent its {wall:g}s wall clock ({exc})"
                mark_error(span, exc)
                if isinstance(exc, BudgetExceeded):
                    self._budget_alert(context, exc)
            except BaseException as exc:
                # Record the run before the unexpected error propagates: nothing is lost silently.
                mark_error(span, exc)
                runs.finish(context.run_id, status="failed", error=f"unexpected {type(exc).__name__}: {exc}")
                self.services.telemetry.flush()
                raise
            span.set_attribute("firebreak.status", status)
            self.services.telemetry.content(span, "gen_ai.output.messages", answer or "")
        if status == "waiting":
            answer = None
        record = runs.finish(context.run_id, status=status, answer=answer, error=error)
        if record.rollout_id is not None and status != "waiting":
            self.services.canary.evaluate()  # each finished run of a rollout may complete its step's window
        self.services.telemetry.flush()
        yield replace(self._result(record, cache), retry_after_s=retry_after)


class _AgentContext:
    def __init__(self, cls: type[Agent], settings: Settings, kwargs: dict[str, Any]) -> None:
        self._args = (cls, settings, kwargs)
        self._agent: Agent | None = None

    async def __aenter__(self) -> Agent:
        cls, settings, kwargs = self._args
        self._agent = await cls.create(settings, **kwargs)
        return self._agent

    async def __aexit__(self, *exc: object) -> None:
        if self._agent is not None:
            await self._agent.close()
