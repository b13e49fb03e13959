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
from dataclasses import replace
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from app.canary.controller import Assignment
from app.canary.release import ReleaseSpec
from app.containment.escalation import answer_side, expiry_answer
from app.containment.replies import confirmation_reply
from app.services import Services, build_services
from app.tools.registry import ToolRegistry
from core.config import Settings
from core.errors import FirebreakError, RequestInProgress, ScriptError, ThreadBusy
from core.status import RunStatus
from graph.builder import GraphBuilder, configured_builder
from graph.recording import GraphInput, fresh_input, record_run
from graph.results import RunResult, Token, escalation_view, run_result
from graph.state import SOLO_AGENT, RunContext
from memory.checkpointer import open_checkpointer
from memory.queue import QueueStore
from memory.request_keys import RequestKey, RequestKeys, request_key
from memory.tables import Escalation, Run

__all__ = ["Agent", "RunResult", "Token", "escalation_view"]

MAX_QUESTION_CHARS = 20_000
# A thread lease outlives its run's wall clock by this much: the run settles its row and checkpoint after it.
THREAD_GRACE_S = 30.0


def _checked_question(question: str) -> str:
    """The question without surrounding blanks; an empty or overlong one is refused before anything runs."""
    question = question.strip()
    if not question:
        raise FirebreakError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise FirebreakError(
            f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}. Shorten it."
        )
    return question


class Agent:
    """Runs questions through the graph and records each run."""

    def __init__(self, services: Services, graph: Any, stack: AsyncExitStack, graph_digest: str = "") -> None:
        self.services = services
        self.graph = graph  # the graph of [agent] graph (or of ``builder=``); a release may name another
        self._graphs: dict[str, tuple[Any, str]] = {services.settings.agent.graph: (graph, graph_digest)}
        self._stack = stack
        self._warming: dict[str, asyncio.Future[Any]] = {}  # route -> its model's load, started once

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        builder: GraphBuilder | None = None,
        services: Services | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        tools: ToolRegistry | None = None,
    ) -> Agent:
        """Connect every store (failing loudly if one is unreachable) and compile the graph.

        ``checkpointer`` replaces the one for ``settings.database_url``; its owner opens and closes it.
        ``tools`` replaces the tools of ``[tools] modules`` (built services bring their own); ``builder`` the
        graph of ``[agent] graph``.
        """
        builder = builder or configured_builder(settings.agent.graph)  # a wrong name fails before any store opens
        stack = AsyncExitStack()
        services = services or build_services(settings, tools=tools)
        stack.callback(services.close)
        try:  # whatever fails below closes what was opened above it
            if checkpointer is None:
                checkpointer = await stack.enter_async_context(open_checkpointer(settings.database_url))
            if settings.mcp.servers:  # sessions held until close; an unreachable server's tools are left out
                from app.tools.mcp_tools import attach_mcp_servers  # the MCP SDK loads only when a server is set

                await attach_mcp_servers(services, stack)
            graph = builder.compile(checkpointer)
        except BaseException:
            await stack.aclose()
            raise
        if settings.cache.enabled:
            # The cache's models load in the background, beside start-up and a first run's early nodes: a lookup
            # that comes first waits for them (their loaders hold a lock), and a load that fails raises there.
            warming = asyncio.gather(asyncio.to_thread(services.cache.warm), return_exceptions=True)
            stack.push_async_callback(lambda: warming)  # closing waits for it: a thread cannot be cancelled
        return cls(services, graph, stack, builder.digest())

    @classmethod
    def open(cls, settings: Settings, **kwargs: Any) -> _AgentContext:
        return _AgentContext(cls, settings, kwargs)

    async def close(self) -> None:
        await asyncio.gather(*self._warming.values())  # a load's thread cannot be cancelled: it ends first
        await self._stack.aclose()

    def settle_script(self, result: RunResult) -> RunResult:
        """Fail ``result`` if a scripted model's script was not used exactly as written."""
        try:
            self.services.gateway.verify_script_consumed()
        except ScriptError as exc:
            if result.error == str(exc):
                return result
            self.services.runs.finish(result.run_id, status=RunStatus.FAILED, answer=result.answer, error=str(exc))
            return replace(result, status=RunStatus.FAILED, error=str(exc))
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
        question = _checked_question(question)
        tenant_id, user_id = self.services.settings.identity.resolve(tenant_id, user_id)
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
        serving = self._serving(tenant_id, user_id, thread_id, route)
        route = route or serving.release.route
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
            status=RunStatus.RUNNING,
            question=question,
        )
        if request is not None:
            earlier = self._request_keys.claim(request, run.id, now=self.services.clock())
            if earlier != run.id:  # the same request, sent at the same time by another caller, won the key
                yield self._repeated(request, earlier)
                return
        self._start(run, request)
        planning = serving.release.planner if plan is None else plan
        async for item in self._execute(self._context(run, stream_tokens), fresh_input(question, planning)):
            yield item

    def _serving(self, tenant_id: str, user_id: str, thread_id: str, route: str | None) -> Assignment:
        """The release (and rollout arm) that serves a new run, its model route checked."""
        canary = self.services.canary
        # A caller who names the route pins the model: such a run serves the stable release and stays out of
        # any rollout's comparison, which must hold everything but the release equal.
        serving = canary.serve(tenant_id, user_id, thread_id) if route is None else Assignment(canary.stable())
        # A configuration mistake fails before anything is recorded.
        self.services.gateway.prepare(route or serving.release.route)
        self.graph_of(serving.release)
        self._warm(route or serving.release.route)
        return serving

    def graph_of(self, release: ReleaseSpec) -> tuple[Any, str]:
        """The compiled graph ``release`` runs, and its digest; a release naming its own graph (``[releases.NAME]
        graph``) has it compiled on its first run in this process."""
        if release.graph not in self._graphs:
            builder = configured_builder(release.graph, setting=release.graph_setting)
            self._graphs[release.graph] = (builder.compile(self.graph.checkpointer), builder.digest())
        return self._graphs[release.graph]

    def _graph_of_run(self, run: Run) -> Any:
        """The graph ``run`` started on: its checkpoints name that graph's nodes."""
        return self.graph_of(self.services.canary.release(run.release))[0]

    def _warm(self, route: str) -> None:
        """Start loading ``route``'s in-process model (the embedded one), once per route: it loads while the
        run's first nodes work, and the first call waits for it. A load that fails raises at that call."""
        if route not in self._warming:
            load = asyncio.to_thread(self.services.gateway.warm, route)
            self._warming[route] = asyncio.gather(load, return_exceptions=True)

    def _start(self, run: Run, request: RequestKey | None) -> None:
        """Take the run's thread and record the run; on failure, nothing is recorded and nothing is held."""
        try:
            self._take_thread(run.thread_id, run.id)
            self.services.runs.start(run)
        except BaseException:
            # Nothing was recorded: the thread (if this run took it) is free, and the key may be sent again.
            self.services.threads.release(run.thread_id, run.id)
            if request is not None:
                self._request_keys.release(request, run.id)
            raise

    async def resume(self, run_id: str) -> RunResult:
        """Continue an interrupted run from its last checkpoint, with the same run id (and so the same op_ids)."""
        run = self.services.runs.get(run_id)
        if run is None:
            raise FirebreakError(f"no run {run_id!r} to resume")
        state = await self._graph_of_run(run).aget_state({"configurable": {"thread_id": run.thread_id}})
        graph_input: dict[str, Any] | None = None
        if state.metadata is None or state.metadata.get("run_id") != run_id:
            # The run died before its first checkpoint: start it (same run id) from its question.
            graph_input = fresh_input(run.question, self.services.canary.release(run.release).planner)
        elif not state.tasks:
            # The graph finished; only recording the outcome was lost. Record it, run nothing again.
            # (Not ``state.next``: it is also empty when a run died after a step's writes were saved but
            # before the checkpoint that follows them, and such a run must go on from those writes.)
            values = state.values
            return self._result(
                self.services.runs.finish(
                    run_id, status=values.get("status", RunStatus.FAILED), answer=values.get("answer")
                )
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
        if run is None or run.status == RunStatus.RUNNING:
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
        answer = confirmation_reply(text, confirmations[0].question) if confirmations else None
        if answer is not None:
            result = None
            for row in confirmations:
                result = await self.answer(row.id, answer, by=f"user:{user_id}") or result
            # Still waiting (for a reviewer too): say so, rather than take "yes" for a new question.
            waiting = self.services.runs.get(confirmations[0].run_id)
            assert waiting is not None
            return result or self._result(waiting)
        if confirmations:
            raise FirebreakError(
                f"this conversation is waiting for your answer: {confirmations[0].question} (yes or no). "
                "Your message was not taken as an answer and nothing ran: reply yes or no, then send it again"
            )
        raise FirebreakError(
            f"this conversation is waiting for a reviewer ({pending[0].type}: {pending[0].reason}); "
            "the reply will appear here once they answer"
        )

    def _result(self, run: Run, cache: dict[str, Any] | None = None) -> RunResult:
        """A run's outcome as recorded, with what it still waits for when it waits."""
        return run_result(self.services, run, cache)

    async def answer(self, escalation_id: str, answer: str, *, by: str, note: str | None = None) -> RunResult | None:
        """Record a person's answer; when it was the last one its run waits for, resume the run and return it.

        ``escalation_id`` may be a unique prefix. Works from any process: the answers are rows and the
        run resumes from its checkpoint.
        """
        store = self.services.escalations
        row = store.find(escalation_id)
        if row.options and answer_side(row, answer) is None:
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
            return replace(self._result(run), status=RunStatus.QUEUED)
        return await self.resume_answered(run_id)

    async def resume_answered(self, run_id: str) -> RunResult | None:
        """Resume a waiting run with its answers (the queue's worker, or ``_resume_if_ready``); None when another
        process took it first or it is not waiting."""
        run = self.services.runs.get(run_id)
        assert run is not None
        graph = self._graph_of_run(run)  # a graph that no longer imports fails before the run is claimed
        self._take_thread(run.thread_id, run_id)
        if not self.services.runs.claim_waiting(run_id):
            self.services.threads.release(run.thread_id, run_id)
            return None
        state = await graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        if not state.next or (state.metadata or {}).get("run_id") != run_id:
            # The thread moved on without this run (it cannot, through Agent; but a checkpoint is shared data):
            # resuming would continue someone else's run. Record it instead of guessing.
            error = "its checkpoint is no longer the thread's latest; nothing was resumed"
            self.services.threads.release(run.thread_id, run_id)
            return self._result(self.services.runs.finish(run_id, status=RunStatus.FAILED, error=error))
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

    async def snapshot(self, run_id: str) -> dict[str, Any]:
        """The run's last checkpoint as plain data, for a dead letter: its id and the messages so far."""
        run = self.services.runs.get(run_id)
        if run is None:
            return {"checkpoint_id": None, "messages": []}
        state = await self._graph_of_run(run).aget_state({"configurable": {"thread_id": run.thread_id}})
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
        release = self.services.canary.release(run.release)
        return RunContext(
            services=self.services,
            run_id=run.id,
            thread_id=run.thread_id,
            tenant_id=run.tenant_id,
            user_id=run.user_id,
            route=run.route,
            deadline=time.monotonic() + self.services.settings.agent.run_wall_clock_s,
            stream_tokens=stream_tokens,
            graph_digest=self.graph_of(release)[1],
            agent=run.agent,
            correlation_id=run.correlation_id or run.id,
            release=release,
            arm=run.arm,
        )

    async def _execute(self, context: RunContext, graph_input: GraphInput) -> AsyncIterator[Token | RunResult]:
        """Run the graph on the thread this run holds, then let the thread go, whatever happens."""
        try:
            graph = self.graph if context.release is None else self.graph_of(context.release)[0]
            async for item in record_run(self.services, graph, context, graph_input):
                yield item
        finally:
            self.services.threads.release(context.thread_id, context.run_id)


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
