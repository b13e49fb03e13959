"""The agent: one object that owns the services, the checkpointer and the compiled graph.

Use it as an async context manager::

    async with Agent.open(load_settings()) as agent:
        result = await agent.ask("What is the capital of France?")
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.messages import HumanMessage
from opentelemetry.trace import SpanKind

from app.alerts import raise_alert
from app.config import Settings
from app.errors import BudgetExceeded, FirebreakError, RunDeadlineExceeded, ScriptError
from app.gateway import Usage
from app.services import Services, build_services
from app.telemetry import mark_error
from graph.builder import GraphBuilder, default_builder
from graph.state import RunContext
from memory.checkpointer import open_checkpointer
from memory.queue import QueueStore
from memory.tables import Run

MAX_QUESTION_CHARS = 20_000


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

    def as_dict(self) -> dict[str, Any]:
        return {
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


def _fresh_input(question: str) -> dict[str, Any]:
    return {
        "messages": [HumanMessage(content=question)],
        "steps": 0,
        "status": "running",
        "answer": "",
        "stop_detail": "",
    }


def _status_for(exc: BaseException) -> str:
    if isinstance(exc, RunDeadlineExceeded):
        return "timed_out"
    if isinstance(exc, BudgetExceeded):
        return "budget_exceeded"
    return "failed"


class Agent:
    """Runs questions through the graph and records each run."""

    def __init__(self, services: Services, graph: Any, stack: AsyncExitStack) -> None:
        self.services = services
        self.graph = graph
        self._stack = stack

    @classmethod
    async def create(
        cls, settings: Settings, *, builder: GraphBuilder | None = None, services: Services | None = None
    ) -> Agent:
        """Connect every store (failing loudly if one is unreachable) and compile the graph."""
        stack = AsyncExitStack()
        services = services or build_services(settings)
        stack.callback(services.close)
        try:
            checkpointer = await stack.enter_async_context(open_checkpointer(settings.database_url))
        except Exception:
            await stack.aclose()
            raise
        graph = (builder or default_builder()).compile(checkpointer)
        return cls(services, graph, stack)

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
    ) -> AsyncIterator[Token | RunResult]:
        """Yield answer tokens as they come, then the :class:`RunResult`. ``run_id`` is given by the queue."""
        settings = self.services.settings
        question = question.strip()
        if not question:
            raise FirebreakError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise FirebreakError(
                f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}. Shorten it."
            )
        route = route or settings.agent.default_route
        self.services.gateway.prepare(route)  # a configuration mistake fails before anything is recorded
        run = Run(
            id=run_id or str(uuid.uuid4()),
            thread_id=thread_id or str(uuid.uuid4()),
            tenant_id=tenant_id or settings.identity.default_tenant,
            user_id=user_id or settings.identity.default_user,
            route=route,
            status="running",
            question=question,
        )
        self.services.runs.start(run)
        async for item in self._execute(self._context(run, stream_tokens), _fresh_input(question)):
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
            graph_input = _fresh_input(run.question)
        elif not state.next:
            # The graph finished; only recording the outcome was lost. Record it, run nothing again.
            values = state.values
            record = self.services.runs.finish(
                run_id, status=values.get("status", "failed"), answer=values.get("answer")
            )
            return RunResult(
                run_id,
                run.thread_id,
                record.status,
                record.answer,
                record.trace_id,
                Usage(record.input_tokens, record.output_tokens, record.cost_usd),
                record.error,
            )
        self.services.runs.restart(run_id)
        result = None
        async for item in self._execute(self._context(run, stream_tokens=False), graph_input):
            result = item
        assert isinstance(result, RunResult)
        return result

    def _budget_alert(self, context: RunContext, exc: BudgetExceeded) -> None:
        raise_alert(
            QueueStore(self.services.engine),
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
            webhook=self.services.settings.queue.alert_webhook,
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
        )

    async def _execute(
        self, context: RunContext, graph_input: dict[str, Any] | None
    ) -> AsyncIterator[Token | RunResult]:
        """Run the graph inside the run's ``invoke_agent`` span and settle the run row, whatever happens."""
        runs = self.services.runs
        tracer = self.services.telemetry.tracer
        status, answer, error = "failed", None, None
        with tracer.start_as_current_span("invoke_agent firebreak", kind=SpanKind.INTERNAL) as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "firebreak",
                    "firebreak.route": context.route,
                    "firebreak.resumed": graph_input is None,
                    **context.ids,
                }
            )
            if graph_input is not None:
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
                    elif mode == "values":
                        status, answer = chunk.get("status", status), chunk.get("answer") or answer
            except FirebreakError as exc:
                status, error = _status_for(exc), str(exc)
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
        record = runs.finish(context.run_id, status=status, answer=answer, error=error)
        self.services.telemetry.flush()
        yield RunResult(
            run_id=context.run_id,
            thread_id=context.thread_id,
            status=status,
            answer=answer,
            trace_id=trace_id,
            usage=Usage(record.input_tokens, record.output_tokens, record.cost_usd),
            error=error,
        )


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
