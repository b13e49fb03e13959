"""What goes into a model call and what comes out: the request, the reply, its usage and what tokens cost."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.config import RouteSettings, TaskClass

if TYPE_CHECKING:
    from app.gateway.local_outcome import Outcome

TokenSink = Callable[[str], None]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0  # all of them, cached ones included
    output_tokens: int = 0  # all of them, reasoning ones included
    cost_usd: float = 0.0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class ModelReply:
    """What a model said: text and/or tool calls, with the usage and the deployment that answered."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    model: str
    route: str


@dataclass(frozen=True)
class CallContext:
    """Who is asking: recorded on every audit row and span."""

    tenant_id: str
    user_id: str
    run_id: str | None = None
    thread_id: str | None = None


@dataclass(frozen=True)
class Prices:
    """USD per token; ``known`` is False when the configured worst-case price stands in."""

    input_per_token: float
    output_per_token: float
    known: bool
    cached_input_per_token: float | None = None  # None: cached input costs what uncached input costs

    def cost(self, input_tokens: float, output_tokens: float, cached_input_tokens: float = 0) -> float:
        """Every token class at its own price: cached input at the cache price, the rest at the input price."""
        cached_price = self.input_per_token if self.cached_input_per_token is None else self.cached_input_per_token
        return (
            (input_tokens - cached_input_tokens) * self.input_per_token
            + cached_input_tokens * cached_price
            + output_tokens * self.output_per_token
        )


def usage_of(response: Any) -> tuple[int, int, int, int]:
    """(input, output, cached input, reasoning) tokens of a LiteLLM response.

    Reasoning tokens are part of the output by OpenAI's convention; a provider that reports them apart
    (fewer completion tokens than reasoning tokens) has them added, so they are never billed as free.
    """
    usage = getattr(response, "usage", None)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    cached = int(getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0) or 0)
    reasoning = int(getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", 0) or 0)
    if reasoning > completion:
        completion += reasoning
    return prompt, completion, min(cached, prompt), reasoning


def estimate_prompt_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    """A high-leaning estimate of prompt tokens (3 characters each, plus framing per message), used only to
    reserve budget before a call; the settled figure is the provider's own count."""
    text = json.dumps(messages, default=str) + (json.dumps(tools) if tools else "")
    return len(text) // 3 + 8 * len(messages)


@dataclass(frozen=True)
class ChatRequest:
    """One chat call as the gateway received it; every attempt and fallback works on the same request."""

    route: str
    settings: RouteSettings
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    context: CallContext
    on_token: TokenSink | None
    task: TaskClass = "answer"
    tool_choice: str | None = None  # the function the model must call (constrained output), if any


def local_reply(outcome: Outcome, prices: Prices, model: str, route: str) -> ModelReply:
    """The embedded model's outcome as the gateway's reply, priced like any other."""
    call = outcome.tool_call
    return ModelReply(
        text=outcome.text,
        tool_calls=() if call is None else (ToolCall(call.id, call.name, call.arguments),),
        usage=Usage(
            outcome.prompt_tokens,
            outcome.completion_tokens,
            prices.cost(outcome.prompt_tokens, outcome.completion_tokens),
        ),
        model=model,
        route=route,
    )
