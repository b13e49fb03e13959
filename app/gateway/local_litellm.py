"""The embedded model as a LiteLLM provider, for code that calls LiteLLM itself (LangChain's ChatLiteLLM, scripts).

Firebreak's gateway calls :class:`~app.gateway.local_model.LocalModel` directly (decision 0052); this adapter
serves ``local/qwen2.5-coder-0.5b-instruct`` through ``litellm.completion`` with the same engine, its errors
as LiteLLM's exception types.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import aclosing, contextmanager
from typing import Any

import litellm
from litellm.types.utils import ChatCompletionToolCallChunk, GenericStreamingChunk, ModelResponse

from app.gateway.lazy import load_litellm
from app.gateway.local_model import (
    LOCAL_MODEL,
    PROVIDER,
    LocalModel,
    LocalRequest,
    drain,
    local_request,
    pieces_then_outcome,
)
from app.gateway.local_outcome import LocalToolCall, Outcome
from app.gateway.provider_errors import provider_exception
from core.config import LocalModelSettings
from core.errors import ModelError

load_litellm()  # configured as the gateway configures it, also when this module is used on its own


class LocalLLM(litellm.CustomLLM):
    """LiteLLM handler for ``local/<name>``: the in-process :class:`LocalModel`."""

    def __init__(self, settings: LocalModelSettings) -> None:
        super().__init__()
        self.settings = settings
        self.engine = LocalModel(settings)

    def completion(  # type: ignore[override]  # LiteLLM passes everything by keyword
        self,
        model: str,
        messages: list[dict[str, Any]],
        *args: Any,
        model_response: ModelResponse,
        optional_params: dict[str, Any],
        **kwargs: Any,
    ) -> ModelResponse:
        with _as_litellm_errors():
            outcome = drain(self.engine.events(local_request(model, messages, optional_params), threading.Event()))
        return _fill_response(model_response, outcome)

    def streaming(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, Any]],
        *args: Any,
        model_response: ModelResponse,
        optional_params: dict[str, Any],
        **kwargs: Any,
    ) -> Iterator[GenericStreamingChunk]:
        with _as_litellm_errors():
            request = local_request(model, messages, optional_params)
        return self._chunks(request)

    async def acompletion(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, Any]],
        *args: Any,
        model_response: ModelResponse,
        optional_params: dict[str, Any],
        **kwargs: Any,
    ) -> ModelResponse:
        with _as_litellm_errors():
            outcome = await self.engine.complete(model, {**optional_params, "messages": messages})
        return _fill_response(model_response, outcome)

    async def astreaming(  # type: ignore[override]  # declared as a coroutine, called as an async generator
        self,
        model: str,
        messages: list[dict[str, Any]],
        *args: Any,
        model_response: ModelResponse,
        optional_params: dict[str, Any],
        **kwargs: Any,
    ) -> AsyncIterator[GenericStreamingChunk]:
        with _as_litellm_errors():
            async with aclosing(self.engine.stream(local_request(model, messages, optional_params))) as items:
                async for item in items:
                    yield _chunk(item)

    def _chunks(self, request: LocalRequest) -> Generator[GenericStreamingChunk, None, None]:
        with _as_litellm_errors():
            for item in pieces_then_outcome(self.engine.events(request, threading.Event())):
                yield _chunk(item)


def register_local_provider(settings: LocalModelSettings) -> None:
    """Make ``local/…`` models callable through LiteLLM at zero cost; safe to call repeatedly."""
    current = [entry for entry in litellm.custom_provider_map if entry["provider"] == PROVIDER]
    handler = current[0]["custom_handler"] if current else None
    if not (isinstance(handler, LocalLLM) and handler.settings == settings):
        for entry in current:
            litellm.custom_provider_map.remove(entry)
        litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": LocalLLM(settings)})
    litellm.register_model(
        {
            LOCAL_MODEL: {
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
                "litellm_provider": PROVIDER,
                "mode": "chat",
                "max_tokens": settings.context_window,
                "max_input_tokens": settings.context_window,
            }
        }
    )


@contextmanager
def _as_litellm_errors() -> Iterator[None]:
    """Raise the engine's :class:`ModelError` as the LiteLLM exception of its kind."""
    try:
        yield
    except ModelError as error:
        if error.kind == "context_window":
            raise litellm.ContextWindowExceededError(
                message=str(error), model=LOCAL_MODEL, llm_provider=PROVIDER
            ) from error
        raise provider_exception(error.kind, str(error), LOCAL_MODEL) from error  # type: ignore[arg-type]


def _fill_response(model_response: ModelResponse, outcome: Outcome) -> ModelResponse:
    choice = model_response.choices[0]
    call = outcome.tool_call
    choice.message = litellm.Message(
        content=outcome.text if call is None else None,
        tool_calls=[_tool_call(outcome)] if call is not None else None,
    )
    choice.finish_reason = outcome.finish_reason
    model_response.usage = litellm.Usage(  # type: ignore[attr-defined]  # LiteLLM adds usage at run time
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
    )
    model_response.model = LOCAL_MODEL
    model_response.created = int(time.time())
    return model_response


def _tool_call(outcome: Outcome) -> dict[str, Any]:
    call = outcome.tool_call
    assert call is not None
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _chunk(item: str | Outcome) -> GenericStreamingChunk:
    return _final_chunk(item) if isinstance(item, Outcome) else _text_chunk(item)


def _text_chunk(text: str) -> GenericStreamingChunk:
    return {"text": text, "is_finished": False, "finish_reason": "", "usage": None, "index": 0, "tool_use": None}


def _final_chunk(outcome: Outcome) -> GenericStreamingChunk:
    return {
        "text": "",
        "is_finished": True,
        "finish_reason": outcome.finish_reason,
        "usage": {
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
            "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
        },
        "index": 0,
        "tool_use": _tool_use(outcome.tool_call) if outcome.tool_call is not None else None,
    }


def _tool_use(call: LocalToolCall) -> ChatCompletionToolCallChunk:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}, "index": 0}
