"""What one local generation came to: the phases' text and token counts, and the reply made of them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True)
class Phase:
    """One generation: the decision (a tool name or "answer"), the arguments, or the answer."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class LocalToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Outcome:
    """The reply to one call: text or a tool call, with usage over every phase."""

    text: str
    tool_call: LocalToolCall | None
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


def combined_outcome(final: Phase, decision: Phase | None = None, *, tool_name: str | None = None) -> Outcome:
    """The reply from the last phase, with usage summed over both phases."""
    phases = [final] if decision is None else [decision, final]
    call = None
    finish_reason = final.finish_reason
    if tool_name is not None:
        call = LocalToolCall(id=f"call_{uuid.uuid4().hex[:8]}", name=tool_name, arguments=final.text)
        # Arguments cut off by max_tokens stay "length" so the caller knows they may not parse.
        finish_reason = "tool_calls" if final.finish_reason == "stop" else final.finish_reason
    return Outcome(
        text="" if call else final.text,
        tool_call=call,
        finish_reason=finish_reason,
        prompt_tokens=sum(phase.prompt_tokens for phase in phases),
        completion_tokens=sum(phase.completion_tokens for phase in phases),
    )
