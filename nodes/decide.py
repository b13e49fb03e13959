"""``decide``: the model reads the conversation and picks the next step (a tool call or the answer)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from app.gateway import CallContext
from app.planning.plan import Plan, render
from app.resilience.safety import SafetyPolicy
from app.resilience.stream_screen import StreamScreen
from core.errors import BudgetExceeded
from core.status import RunStatus
from graph.messages import ai_message, to_openai
from graph.state import AgentState, RunContext
from nodes.budget_guard import breach
from nodes.needs import Prompting


def system_prompt(state: AgentState, base: str) -> str:
    """The configured prompt, and in a planned run the plan as it stands: done, failed, next."""
    plan = state.get("plan")
    if not plan:
        return base
    return f"{base}\n\n{render(Plan(goal=plan['goal'], steps=plan['steps']), plan['version'])}"


def _emit(runtime: Runtime[RunContext], text: str) -> None:
    if text:
        runtime.stream_writer({"token": text})


async def decide(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    services: Prompting = ctx.services
    policy = SafetyPolicy.from_settings(services.settings.safety)
    # Tokens pass the policy screen on their way out: what a pattern could still match is held back.
    screen = StreamScreen.of(policy.policy_rules)
    try:
        reply = await services.gateway.chat(
            to_openai(state["messages"], system_prompt(state, ctx.system_prompt)),
            route=ctx.route,
            context=CallContext(
                tenant_id=ctx.tenant_id, user_id=ctx.user_id, run_id=ctx.run_id, thread_id=ctx.thread_id
            ),
            tools=ctx.tools.specs() or None,
            on_token=(lambda text: _emit(runtime, screen.feed(text))) if ctx.stream_tokens else None,
            deadline=ctx.deadline,
        )
    except BudgetExceeded as exc:
        return breach(exc, "decide")
    services.runs.add_event(
        ctx.run_id,
        "decide",
        "decision",
        {
            "model": reply.model,
            "text": reply.text,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls],
            "input_tokens": reply.usage.input_tokens,
            "output_tokens": reply.usage.output_tokens,
        },
    )
    decision = ai_message(reply.text, reply.tool_calls)
    if screen.text:
        # The held rest goes out only when the reply passes the final screen's text rule; otherwise
        # screen_actions terminates the run, and the user never sees it.
        _emit(runtime, screen.finish(passed=policy.violation(decision.text) is None))
    if not reply.text.strip() and not reply.tool_calls:
        # Nothing to answer with and nothing to do: an empty reply must not pass for an (empty) answer.
        return {"messages": [decision], "status": RunStatus.EMPTY_REPLY.value, "stop_detail": reply.model}
    return {"messages": [decision]}
