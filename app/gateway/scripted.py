"""The scripted model: a LiteLLM custom provider that replays a :class:`Script`.

Selected by model name ``scripted/<anything>``; the script file comes from
``FIREBREAK_SCRIPT`` (``script`` in firebreak.toml). It is part of the
package, not of the tests, so anyone can demo or test an agent with no key.
Token usage is the script's ``usage`` when given, otherwise a deterministic
estimate of four characters per token.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import AsyncIterator
from typing import Any

import litellm
from litellm.types.utils import (
    CompletionTokensDetailsWrapper,
    GenericStreamingChunk,
    ModelResponse,
    PromptTokensDetailsWrapper,
    Usage,
)

from app.gateway.lazy import load_litellm
from app.gateway.provider_errors import provider_exception
from app.gateway.providers import register_custom_provider
from app.gateway.script import PROVIDER, Script, ScriptStep

load_litellm()  # configured as the gateway configures it, also when this module is used on its own

_SCRIPTS: dict[str, Script] = {}


def script_handle(script: Script) -> str:
    """Register ``script`` and return the handle a deployment passes as ``api_base``."""
    handle = f"firebreak-script://{uuid.uuid4().hex}"
    _SCRIPTS[handle] = script
    return handle


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """Everything the model was shown, as one string, for expectations and token estimates."""
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
        parts.append(str(content or ""))
        for call in message.get("tool_calls") or []:
            parts.append(json.dumps(call.get("function", {})))
    return "\n".join(parts)


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _usage(step: ScriptStep, prompt: str) -> Usage:
    if step.usage is not None:
        prompt_tokens, completion_tokens = int(step.usage["input_tokens"]), int(step.usage["output_tokens"])
    else:
        produced = step.text + "".join(call.arguments for call in step.tool_calls)
        prompt_tokens, completion_tokens = estimate_tokens(prompt), estimate_tokens(produced)
    details = step.usage or {}
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=int(details.get("cached_input_tokens", 0))),
        completion_tokens_details=CompletionTokensDetailsWrapper(
            reasoning_tokens=int(details.get("reasoning_tokens", 0))
        ),
    )


def _tool_calls(step: ScriptStep) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{step.line}_{index}",
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
            "index": index,
        }
        for index, call in enumerate(step.tool_calls)
    ]


class ScriptedLLM(litellm.CustomLLM):
    """Replays the script registered under the deployment's ``api_base`` handle."""

    async def _next_step(self, model: str, messages: list[dict[str, Any]], api_base: str) -> tuple[ScriptStep, str]:
        script = _SCRIPTS[api_base]
        prompt = prompt_text(messages)
        step = script.take(prompt, last_role="tool" if messages and messages[-1].get("role") == "tool" else "user")
        if step.delay_s:
            await asyncio.sleep(step.delay_s)
        if step.error is not None:
            raise provider_exception(step.error, f"scripted {step.error} error (script line {step.line})", model)
        return step, prompt

    async def acompletion(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, Any]],
        api_base: str,
        custom_prompt_dict: dict[str, Any],
        model_response: ModelResponse,
        *args: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        step, prompt = await self._next_step(model, messages, api_base)
        message = model_response.choices[0].message  # type: ignore[union-attr]
        message.content = step.text or None
        calls = _tool_calls(step)
        if calls:
            message.tool_calls = [  # type: ignore[assignment]
                litellm.ChatCompletionMessageToolCall(id=c["id"], type="function", function=c["function"])
                for c in calls
            ]
        model_response.choices[0].finish_reason = "tool_calls" if calls else "stop"
        model_response.usage = _usage(step, prompt)  # type: ignore[attr-defined]
        model_response.model = f"{PROVIDER}/{model}"
        return model_response

    async def astreaming(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, Any]],
        api_base: str,
        custom_prompt_dict: dict[str, Any],
        model_response: ModelResponse,
        *args: Any,
        **kwargs: Any,
    ) -> AsyncIterator[GenericStreamingChunk]:
        step, prompt = await self._next_step(model, messages, api_base)
        pieces = [piece for piece in step.text.split(" ")]
        for position, piece in enumerate(pieces):
            text = piece if position == len(pieces) - 1 else piece + " "
            if text:
                yield GenericStreamingChunk(text=text, is_finished=False, finish_reason="", usage=None, index=0)
        calls = _tool_calls(step)
        for call in calls:
            yield GenericStreamingChunk(
                text="",
                is_finished=False,
                finish_reason="",
                usage=None,
                index=0,
                tool_use=call,  # type: ignore[typeddict-item]
            )
        yield GenericStreamingChunk(
            text="",
            is_finished=True,
            finish_reason="tool_calls" if calls else "stop",
            usage=_usage(step, prompt).model_dump(),  # type: ignore[typeddict-item]
            index=0,
        )


def register_scripted_provider() -> None:
    """Serve ``scripted/<anything>`` through LiteLLM."""
    register_custom_provider(PROVIDER, ScriptedLLM())
