"""One pass of the graph for a run, recorded: its ``invoke_agent`` span, its row, and the alerts it raises.

Whatever happens, the run's row is settled before the pass ends: an expected stop (a signal or error of
``core.errors``) becomes the run's status, an unexpected one is recorded and then propagates.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.types import Command
from opentelemetry.trace import Span, SpanKind

from app.services import Services
from app.telemetry import mark_error
from core.errors import BudgetExceeded, FirebreakError, RateLimited, RunDeadlineExceeded
from core.status import RunStatus
from graph.results import RunResult, Token, run_result
from graph.state import RunContext

GraphInput = dict[str, Any] | Command[Any] | None


def fresh_input(question: str, planning: bool) -> dict[str, Any]:
    """The graph's input for a run that starts from its question."""
    return {
        "messages": [HumanMessage(content=question)],
        "planning": planning,
        "plan": None,
        "replans": 0,
        "steps": 0,
        "status": RunStatus.RUNNING.value,
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


def status_for(exc: BaseException) -> RunStatus:
    """The status of a run that an expected error or signal stopped."""
    if isinstance(exc, RunDeadlineExceeded):
        return RunStatus.TIMED_OUT
    if isinstance(exc, BudgetExceeded):
        return RunStatus.BUDGET_EXCEEDED
    if isinstance(exc, RateLimited):
        return RunStatus.RATE_LIMITED
    return RunStatus.FAILED


def _budget_alert(services: Services, context: RunContext, exc: BudgetExceeded) -> None:
    services.alert(
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


def _stopped(services: Services, context: RunContext, span: Span, exc: FirebreakError) -> tuple[RunStatus, str]:
    """The status and error of a run an expected error stopped, alerted and marked on its span."""
    status, error = status_for(exc), str(exc)
    # Whatever failed once the wall clock was spent (a model call cut to the remaining time, say) failed because
    # the run ran out of time.
    if time.monotonic() >= context.deadline and not isinstance(exc, RunDeadlineExceeded):
        wall = services.settings.agent.run_wall_clock_s
        status, error = RunStatus.TIMED_OUT, f"run {context.run_id} spent its {wall:g}s wall clock ({exc})"
    mark_error(span, exc)
    if isinstance(exc, BudgetExceeded):
        _budget_alert(services, context, exc)
    return status, error


def _open_span(services: Services, context: RunContext, span: Span, graph_input: GraphInput) -> None:
    """Describe the run on its span, and record its trace id on its row."""
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
        services.telemetry.content(span, "gen_ai.input.messages", graph_input["messages"][0].text)
    services.runs.set_trace(context.run_id, format(span.get_span_context().trace_id, "032x"))


async def record_run(
    services: Services, graph: Any, context: RunContext, graph_input: GraphInput
) -> AsyncIterator[Token | RunResult]:
    """Run the graph inside the run's ``invoke_agent`` span and settle the run row, whatever happens."""
    status: str = RunStatus.FAILED
    answer, error, cache = None, None, None
    retry_after: float | None = None
    with services.telemetry.tracer.start_as_current_span("invoke_agent firebreak", kind=SpanKind.INTERNAL) as span:
        _open_span(services, context, span, graph_input)
        try:
            async for mode, chunk in graph.astream(
                graph_input,
                config={
                    "configurable": {"thread_id": context.thread_id},
                    # Checkpoints name their run, so a resume can tell its own progress from the thread's past.
                    "metadata": {"run_id": context.run_id},
                    "recursion_limit": services.settings.agent.max_steps * 6 + 10,
                },
                context=context,
                stream_mode=["custom", "values"],
                durability="sync",
            ):
                if mode == "custom" and "token" in chunk:
                    yield Token(chunk["token"])
                elif mode == "values" and "__interrupt__" in chunk:
                    status = RunStatus.WAITING
                elif mode == "values":
                    status, answer = chunk.get("status", status), chunk.get("answer") or answer
                    cache = (chunk.get("cache") or {}).get("hit") or cache
        except FirebreakError as exc:
            status, error = _stopped(services, context, span, exc)
            retry_after = exc.retry_after_s if isinstance(exc, RateLimited) else None
        except BaseException as exc:
            # Record the run before the unexpected error propagates: nothing is lost silently.
            mark_error(span, exc)
            services.runs.finish(
                context.run_id, status=RunStatus.FAILED, error=f"unexpected {type(exc).__name__}: {exc}"
            )
            services.telemetry.flush()
            raise
        span.set_attribute("firebreak.status", status)
        services.telemetry.content(span, "gen_ai.output.messages", answer or "")
    if status == RunStatus.WAITING:
        answer = None
    record = services.runs.finish(context.run_id, status=status, answer=answer, error=error)
    if record.rollout_id is not None and status != RunStatus.WAITING:
        services.canary.evaluate()  # each finished run of a rollout may complete its step's window
    services.telemetry.flush()
    yield replace(run_result(services, record, cache), retry_after_s=retry_after)
