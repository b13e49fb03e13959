"""``respond``: settle the run's answer: the model's last words, or why the run was stopped."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, RemoveMessage
from langgraph.runtime import Runtime

from core.status import RunStatus
from graph.state import AgentState, RunContext
from nodes.needs import Recording
from nodes.observe import failure_escalation_id


def _stopped_answer(state: AgentState, ctx: RunContext) -> str | None:
    status = state.get("status")
    if status == RunStatus.STEP_LIMIT:
        return (
            f"I stopped after {state.get('steps', 0)} tool steps without reaching an answer; please narrow the request."
        )
    if status == RunStatus.REPEATED_FAILURE:
        return (
            f"I stopped because {state.get('stop_detail')} kept failing; a reviewer has been asked to look at it "
            f"(escalation {failure_escalation_id(state, ctx)[:8]})."
        )
    if status == RunStatus.TERMINATED:
        return f"This run was stopped by the safety breaker: {state.get('stop_detail')}."
    if status == RunStatus.BUDGET_EXCEEDED:
        return f"I stopped because this request reached its budget: {state.get('stop_detail')}."
    if status == RunStatus.EMPTY_REPLY:
        return (
            f"The model ({state.get('stop_detail')}) replied with nothing, no text and no tool call; please ask again."
        )
    return None


HEDGE = "\n\n(I am not fully sure about this answer; please check it before you rely on it.)"


def respond(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    stopped = _stopped_answer(state, ctx)
    if stopped is not None:
        answer, status = stopped, str(state["status"])
        messages: list[BaseMessage] = [AIMessage(content=stopped)]
        last = state["messages"][-1]
        if status == RunStatus.EMPTY_REPLY and last.id is not None:
            # The empty reply leaves the conversation: a provider refuses an assistant turn with no content.
            messages.insert(0, RemoveMessage(id=last.id))
    else:
        # A handoff's answer is the person's reply, already the last message.
        answer, messages = state["messages"][-1].text, []
        handed_off = state.get("status") == RunStatus.HANDED_OFF
        status = (RunStatus.HANDED_OFF if handed_off else RunStatus.ANSWERED).value
        if (state.get("verdicts") or {}).get("answer") == "hedge":
            answer += HEDGE
    services: Recording = ctx.services
    services.runs.add_event(ctx.run_id, "respond", "answer", {"status": status, "answer": answer})
    return {"answer": answer, "status": status, "messages": messages}
