"""The human escalation protocol: the seed's four formats, plus the user's own confirmation.

| Trigger                         | Type               | Who       | Format                                        |
|---------------------------------|--------------------|-----------|-----------------------------------------------|
| confidence below confirm_above  | targeted           | reviewer  | the action, its score, approve / reject        |
| budget cap reached              | targeted           | reviewer  | the cap, its use, raise once / stop            |
| repeated rephrasing             | targeted           | reviewer  | "what does the user want?", free text          |
| confidence in the confirm band  | confirmation       | the user  | "Shall I …?", yes / no                         |
| high-risk topic                 | full_handoff       | reviewer  | context summary + the whole history            |
| user asks for a human           | immediate_transfer | reviewer  | warm handoff: summary + the last messages      |
| negative sentiment spike        | collaborative      | reviewer  | the agent goes on; the reviewer may add a note |

Plain functions that build rows and read answers; the graph's ``hitl`` node uses them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage

from app.containment.replies import confirmation_reply
from core.config import EscalationSettings
from memory.tables import Escalation

REVIEWER = "reviewer"  # the name on a reviewer's note in the conversation: the agent reads it, the user did not say it
WARM_HANDOFF_MESSAGES = 6


@dataclass(frozen=True)
class Where:
    """The run an escalation belongs to, and the pause it is part of (for stable ids on replay)."""

    run_id: str
    thread_id: str
    tenant_id: str
    pause: int


def escalation_id(where: Where, key: str) -> str:
    """Stable per run, pause and subject: a node that runs again after a crash opens the same rows."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"firebreak:{where.run_id}/{where.pause}/{key}"))


def answer_side(escalation: Escalation, answer: str) -> Literal["yes", "no"] | None:
    """Whether ``answer`` approves or refuses ``escalation``; None when it does neither.

    An escalation's options are [approving, refusing] ("raise" or "stop" a budget); any plain yes or no answers it
    too, in the words people use (``replies.confirmation_reply``).
    """
    if answer in escalation.options[:2]:
        return "yes" if answer == escalation.options[0] else "no"
    return confirmation_reply(answer, escalation.question)


def is_approval(escalation: Escalation) -> bool:
    """Whether a person answered ``escalation`` with a yes: an expired or unclear answer never is."""
    return escalation.status == "answered" and answer_side(escalation, escalation.answer or "") == "yes"


def reviewer_note(text: str) -> HumanMessage:
    """A reviewer's answer as the agent reads it in the conversation."""
    return HumanMessage(content=f"A human reviewer adds: {text}", name=REVIEWER)


def is_user_question(message: AnyMessage) -> bool:
    return isinstance(message, HumanMessage) and message.name != REVIEWER


def user_questions(messages: Sequence[AnyMessage]) -> list[str]:
    """What the user asked in the conversation, oldest first (reviewers' notes are not questions)."""
    return [str(m.text) for m in messages if is_user_question(m)]


def this_run(messages: Sequence[AnyMessage]) -> Sequence[AnyMessage]:
    """The messages from the run's question on (the last thing the user asked)."""
    for index in range(len(messages) - 1, -1, -1):
        if is_user_question(messages[index]):
            return messages[index:]
    return messages


def transcript(messages: Sequence[AnyMessage]) -> list[dict[str, str]]:
    """The conversation as a reviewer reads it: who said what, tool calls and results included."""
    lines = []
    for message in messages:
        if isinstance(message, HumanMessage):
            lines.append({"role": message.name or "user", "text": message.text})
        elif isinstance(message, AIMessage):
            calls = ", ".join(f"{call['name']}({call['args']})" for call in message.tool_calls)
            lines.append({"role": "assistant", "text": message.text + (f" [calls {calls}]" if calls else "")})
        elif isinstance(message, ToolMessage):
            lines.append({"role": f"tool {message.name}", "text": message.text[:1000]})
    return lines


def summary(messages: Sequence[AnyMessage], reason: str) -> str:
    """A deterministic context summary: what the user wants, what happened, why a person is needed."""
    questions = user_questions(messages)
    tools = sorted({m.name or "" for m in messages if isinstance(m, ToolMessage)})
    parts = [f"The user asks: {questions[-1]!r}." if questions else "The conversation has no question yet."]
    if len(questions) > 1:
        parts.append(f"Earlier in this conversation they asked {len(questions) - 1} other question(s).")
    if tools:
        parts.append(f"Tools used so far: {', '.join(tools)}.")
    parts.append(f"Escalated because {reason}.")
    return " ".join(parts)


def build(
    where: Where,
    key: str,
    *,
    type: str,
    trigger: str,
    reason: str,
    question: str,
    options: Sequence[str] = (),
    context: dict[str, Any] | None = None,
    messages: Sequence[AnyMessage] = (),
    settings: EscalationSettings,
    now: float,
) -> Escalation:
    """One escalation row in its type's format (see the module table)."""
    body: dict[str, Any] = dict(context or {})
    if type in ("full_handoff", "immediate_transfer", "collaborative"):
        body["summary"] = summary(messages, reason)
        history = transcript(messages)
        body["history"] = history if type == "full_handoff" else history[-WARM_HANDOFF_MESSAGES:]
    return Escalation(
        id=escalation_id(where, key),
        run_id=where.run_id,
        thread_id=where.thread_id,
        tenant_id=where.tenant_id,
        type=type,
        trigger=trigger,
        audience="user" if type == "confirmation" else "reviewer",
        pauses_run=type != "collaborative",
        reason=reason,
        question=question,
        options=list(options),
        context=body,
        status="open",
        created_at=now,
        due_at=now + settings.policies[type].timeout_s,  # type: ignore[index]
    )


def expiry_answer(escalation: Escalation) -> str:
    """What an unanswered escalation means when it expires: never a yes."""
    return escalation.options[1] if len(escalation.options) > 1 else ""
