"""The embedded model as a LiteLLM provider: ``local/qwen2.5-coder-0.5b-instruct`` served by llama.cpp in-process.

Tool calling on a 0.5B model relies on grammar-constrained output rather than
the model's own tool-call format. Phase 1 asks for ``{"next": <tool name or
"answer">}``; phase 2 either produces the chosen tool's arguments, constrained
to its parameter schema, or a free-text answer streamed token by token. Every
prompt starts with the same rendered conversation, so llama.cpp re-evaluates
only the short tail that differs between phases and between agent steps; the
state of the system message (prompt, tool list, examples) is saved and restored
when another call evicted it or a new process starts (``prefix_state``).
"""

from __future__ import annotations

import asyncio
import codecs
import contextvars
import json
import threading
import time
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import litellm
import llama_cpp
from litellm.types.utils import GenericStreamingChunk, ModelResponse
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from app.gateway.lazy import load_litellm
from app.gateway.local_outcome import FinishReason, Outcome, Phase, combined_outcome, final_chunk, text_chunk
from app.gateway.local_prompt import (
    AFTER_RESULT_NOTE,
    ANSWER,
    ANSWER_NOTE,
    RESULT_PREFIX,
    Messages,
    arguments_note,
    assistant_choice,
    chat_messages,
    system_turn,
    tool_spec,
    with_tool_note,
)
from app.gateway.model_files import assemble_model
from app.gateway.prefix_state import PrefixStates, shared_length
from core.config import LocalModelSettings

load_litellm()  # configured as the gateway configures it, also when this module is used on its own

PROVIDER = "local"
MODEL_NAME = "qwen2.5-coder-0.5b-instruct"
LOCAL_MODEL = f"{PROVIDER}/{MODEL_NAME}"

# Sampling defaults from Qwen2.5's generation_config.json, used when the caller sets none.
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.8
TOP_K = 20
REPEAT_PENALTY = 1.05
DECISION_OPENING = '{"next": "'
# Room for the longest tool name; the grammar ends the reply well before this.
DECISION_MAX_TOKENS = 64
GRAMMAR_MAX_REPEAT = 64  # longer string bounds are left to the tool's own validation
PREFIX_STATE_FOLDER = "prefix-states"  # under [local_model] cache_dir

_Result = TypeVar("_Result")


@dataclass(frozen=True)
class _LoadedModel:
    llama: llama_cpp.Llama
    formatter: Jinja2ChatFormatter
    vocab: llama_cpp.llama_vocab_p
    lock: threading.Lock  # llama.cpp contexts are not thread-safe: one generation at a time
    prefixes: PrefixStates


@dataclass(frozen=True)
class _Request:
    messages: Messages
    tools: list[dict[str, Any]]
    forced_tool: str | None
    allow_answer: bool
    max_tokens: int | None
    temperature: float
    top_p: float


_loaded: dict[tuple[Path, int, int], _LoadedModel] = {}
_load_lock = threading.Lock()


class LocalLLM(litellm.CustomLLM):
    """LiteLLM handler for ``local/<name>``: Qwen2.5-Coder-0.5B through llama-cpp-python."""

    def __init__(self, settings: LocalModelSettings) -> None:
        super().__init__()
        self.settings = settings

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer (no special tokens)."""
        # Tokenizing only reads the vocabulary, so it does not wait for a running generation.
        return len(self._model().llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def completion(  # type: ignore[override]  # LiteLLM passes everything by keyword
        self,
        model: str,
        messages: list[dict[str, Any]],
        *args: Any,
        model_response: ModelResponse,
        optional_params: dict[str, Any],
        **kwargs: Any,
    ) -> ModelResponse:
        request = _request(model, messages, optional_params)
        return _fill_response(model_response, _drain(self._events(request, threading.Event())))

    def streaming(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, Any]],
        *args: Any,
        model_response: ModelResponse,
        optional_params: dict[str, Any],
        **kwargs: Any,
    ) -> Iterator[GenericStreamingChunk]:
        return self._chunks(_request(model, messages, optional_params), threading.Event())

    async def acompletion(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, Any]],
        *args: Any,
        model_response: ModelResponse,
        optional_params: dict[str, Any],
        **kwargs: Any,
    ) -> ModelResponse:
        request = _request(model, messages, optional_params)
        stop = threading.Event()
        try:
            outcome = await asyncio.to_thread(_drain, self._events(request, stop))
        finally:
            stop.set()  # a cancelled caller must not leave the worker generating into the void
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
        request = _request(model, messages, optional_params)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[GenericStreamingChunk | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def post(item: GenericStreamingChunk | BaseException | None) -> None:
            if not stop.is_set():
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def produce() -> None:
            chunks = self._chunks(request, stop)
            try:
                for chunk in chunks:
                    post(chunk)
                post(None)
            except BaseException as exc:  # handed to the consumer, which re-raises it in its own task
                post(exc)
            finally:
                chunks.close()

        # produce() never raises, so the executor's future needs no awaiting; the context carries trace spans.
        loop.run_in_executor(None, contextvars.copy_context().run, produce)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()  # the worker stops at its next token; awaiting it would delay the caller's cancellation

    def _model(self) -> _LoadedModel:
        return _load(self.settings)

    def _chunks(self, request: _Request, stop: threading.Event) -> Generator[GenericStreamingChunk, None, None]:
        events = self._events(request, stop)
        try:
            while True:
                yield text_chunk(next(events))
        except StopIteration as finished:
            yield final_chunk(finished.value)

    def _events(self, request: _Request, stop: threading.Event) -> Generator[str, None, Outcome]:
        """Yield answer text as it is generated; return the whole outcome."""
        model = self._model()
        with model.lock:
            if not request.tools:
                answer = yield from _generate(model, request.messages, request, stop)
                return combined_outcome(answer)
            base = with_tool_note(request.messages, request.tools)
            decision = _decide(model, base, request, stop)
            # "answer", or a decision cut short by ``stop`` (then the answer phase ends at once).
            tool = next((tool for tool in request.tools if tool["name"] == decision.text), None)
            if tool is None:
                answer = yield from _generate(model, [*base, system_turn(ANSWER_NOTE)], request, stop)
                return combined_outcome(answer, decision)
            asked = [*base, assistant_choice(tool["name"]), system_turn(arguments_note(tool))]
            grammar = _schema_grammar(tool["parameters"])
            arguments = _drain(_generate(model, asked, request, stop, grammar=grammar, temperature=0.0))
            return combined_outcome(arguments, decision, tool_name=tool["name"])


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


def _load(settings: LocalModelSettings) -> _LoadedModel:
    """The process-wide Llama for these settings, loaded on first use."""
    key = (settings.cache_path, settings.context_window, settings.threads)
    with _load_lock:
        if key not in _loaded:
            try:
                path = assemble_model(settings.cache_path)
            except Exception as exc:
                raise _server_error(f"the local model's weights are unavailable: {exc}") from exc
            _loaded[key] = _open(path, settings)
        return _loaded[key]


def _open(path: Path, settings: LocalModelSettings) -> _LoadedModel:
    try:
        llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=settings.context_window,
            n_threads=settings.threads,
            # llama-cpp-python defaults batch (prompt) threads to every CPU; the setting is meant as the cap.
            n_threads_batch=settings.threads,
            verbose=False,
        )
    except Exception as exc:
        raise _server_error(f"llama.cpp could not load {path}: {exc}") from exc
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise _server_error(f"{path} has no chat template in its GGUF metadata")
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=llama.detokenize([llama.token_eos()], special=True).decode("utf-8"),
        bos_token=llama.detokenize([llama.token_bos()], special=True).decode("utf-8"),
    )
    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    prefixes = PrefixStates(llama, settings.cache_path / PREFIX_STATE_FOLDER, path)
    return _LoadedModel(llama, formatter, vocab, threading.Lock(), prefixes)


def _generate(
    model: _LoadedModel,
    messages: Messages,
    request: _Request,
    stop: threading.Event,
    *,
    grammar: LlamaGrammar | None = None,
    opening: str = "",
    temperature: float | None = None,
    max_tokens: int | None = None,
    finals: frozenset[str] = frozenset(),
) -> Generator[str, None, Phase]:
    """Yield text pieces of one generation after ``opening``; return its text, finish reason and token counts.

    ``finals`` are texts after which ``grammar`` allows only the end: generation stops there, without a
    decoding step that could only sample the end token.
    """
    llama = model.llama
    prompt = _tokens(model, messages, opening)
    room = llama.n_ctx() - len(prompt)
    if room < 1:
        raise litellm.ContextWindowExceededError(
            message=f"the prompt is {len(prompt)} tokens but the context window is {llama.n_ctx()}",
            model=LOCAL_MODEL,
            llm_provider=PROVIDER,
        )
    budget = min(room, max_tokens or request.max_tokens or room)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []
    generated = 0
    finish_reason: FinishReason = "length"
    try:
        model.prefixes.prepare(prompt, _fixed_prefix_length(model, messages, prompt))
        tokens = llama.generate(
            prompt,
            temp=request.temperature if temperature is None else temperature,
            top_p=request.top_p,
            top_k=TOP_K,
            repeat_penalty=REPEAT_PENALTY,
            grammar=grammar,
        )
        for token in tokens:
            if llama_cpp.llama_vocab_is_eog(model.vocab, token) or stop.is_set():
                finish_reason = "stop"
                break
            generated += 1
            if piece := decoder.decode(llama.detokenize([token])):
                pieces.append(piece)
                yield piece
            if finals and "".join(pieces) in finals:
                finish_reason = "stop"
                break
            if generated >= budget:
                break
    except (RuntimeError, ValueError, OSError) as exc:
        raise _server_error(f"llama.cpp failed while generating: {exc}") from exc
    if tail := decoder.decode(b"", final=True):
        pieces.append(tail)
        yield tail
    return Phase("".join(pieces), finish_reason, len(prompt), generated)


def _tokens(model: _LoadedModel, messages: Messages, opening: str = "") -> list[int]:
    """The prompt's tokens: ``messages`` in the model's chat template, then ``opening``."""
    rendered = model.formatter(messages=cast(list[Any], messages))  # plain dicts of the TypedDicts' shape
    text = rendered.prompt + opening
    return model.llama.tokenize(text.encode("utf-8"), add_bos=not rendered.added_special, special=True)


def _fixed_prefix_length(model: _LoadedModel, messages: Messages, prompt: list[int]) -> int:
    """How many of ``prompt``'s tokens render its system message: what every call of a run opens with."""
    if len(messages) < 2 or messages[0]["role"] != "system":
        return 0
    # The system message rendered alone goes on with the generation prompt; up to there it is the same.
    alone = _tokens(model, messages[:1])
    return shared_length(alone, prompt)


def _decide(model: _LoadedModel, messages: Messages, request: _Request, stop: threading.Event) -> Phase:
    """Phase 1: the chosen tool's name or "answer"; no model call when tool_choice leaves no choice."""
    options = ([ANSWER] if request.allow_answer else []) + [tool["name"] for tool in request.tools]
    if request.forced_tool is not None or len(options) == 1:
        return Phase(request.forced_tool or options[0], "stop", 0, 0)
    # The reply is {"next": <option>}; its fixed opening goes into the prompt, so only the option is sampled.
    grammar = LlamaGrammar.from_string(
        "root ::= " + " | ".join(json.dumps(option) for option in options), verbose=False
    )
    if request.allow_answer and messages[-1]["content"].startswith(RESULT_PREFIX):
        messages = [*messages, system_turn(AFTER_RESULT_NOTE)]
    return _drain(
        _generate(
            model,
            messages,
            request,
            stop,
            grammar=grammar,
            opening=DECISION_OPENING,
            temperature=0.0,
            max_tokens=DECISION_MAX_TOKENS,
            finals=_finals(options),
        )
    )


def _finals(options: list[str]) -> frozenset[str]:
    """The options no other option goes on from: once one is written, the choice is made."""
    return frozenset(option for option in options if not any(o != option and o.startswith(option) for o in options))


def _drain(events: Generator[str, None, _Result]) -> _Result:
    """Run ``events`` to the end for its return value."""
    while True:
        try:
            next(events)
        except StopIteration as finished:
            return finished.value


def _loosened(schema: Any) -> Any:
    """The schema without what llama.cpp's grammar converter mishandles.

    It spells ``maxLength: 5000`` as 5,000 nested optional rules, and copies a
    regex ``pattern`` with ``\\s`` into a grammar it cannot parse; either way
    the parser rejects the grammar and the process then crashes. Both are
    dropped here: the tool validates its arguments against the real schema, so
    a bad value still gets a clear error the model can correct.
    """
    if isinstance(schema, Mapping):
        return {
            key: _loosened(value)
            for key, value in schema.items()
            if not (key == "pattern" and isinstance(value, str))  # a property named "pattern" is a dict: kept
            and not (key in ("maxLength", "minLength") and isinstance(value, int) and value > GRAMMAR_MAX_REPEAT)
        }
    if isinstance(schema, list):
        return [_loosened(item) for item in schema]
    return schema


def _schema_grammar(schema: Mapping[str, Any]) -> LlamaGrammar:
    try:
        return LlamaGrammar.from_json_schema(json.dumps(_loosened(schema)), verbose=False)
    except Exception as exc:  # the converter raises bare Exceptions for schema features it lacks
        message = f"cannot constrain output to the JSON schema {schema}: {exc}"
        raise litellm.BadRequestError(message=message, model=LOCAL_MODEL, llm_provider=PROVIDER) from exc


def _request(model: str, messages: list, optional_params: Mapping[str, Any]) -> _Request:
    if model.removeprefix(f"{PROVIDER}/") != MODEL_NAME:
        raise litellm.NotFoundError(
            message=f"the local provider serves only {LOCAL_MODEL}, not {model!r}", model=model, llm_provider=PROVIDER
        )
    tools = [tool_spec(tool) for tool in optional_params.get("tools") or ()]
    choice = optional_params.get("tool_choice")
    if choice == "none":
        tools = []
    forced = choice["function"]["name"] if isinstance(choice, Mapping) else None
    if forced is not None and forced not in {tool["name"] for tool in tools}:
        message = f"tool_choice names {forced!r}, which is not among the tools"
        raise litellm.BadRequestError(message=message, model=LOCAL_MODEL, llm_provider=PROVIDER)
    return _Request(
        messages=chat_messages(messages),
        tools=tools,
        forced_tool=forced,
        allow_answer=choice != "required",
        max_tokens=optional_params.get("max_tokens") or optional_params.get("max_completion_tokens"),
        temperature=_number(optional_params.get("temperature"), DEFAULT_TEMPERATURE),
        top_p=_number(optional_params.get("top_p"), DEFAULT_TOP_P),
    )


def _number(value: Any, default: float) -> float:
    return default if value is None else float(value)


def _fill_response(model_response: ModelResponse, outcome: Outcome) -> ModelResponse:
    choice = model_response.choices[0]
    choice.message = litellm.Message(
        content=outcome.text if outcome.tool_call is None else None,
        tool_calls=[outcome.tool_call] if outcome.tool_call is not None else None,
    )
    choice.finish_reason = outcome.finish_reason
    model_response.usage = outcome.usage()  # type: ignore[attr-defined]  # LiteLLM adds usage at run time
    model_response.model = LOCAL_MODEL
    model_response.created = int(time.time())
    return model_response


def _server_error(message: str) -> litellm.InternalServerError:
    return litellm.InternalServerError(message=f"{LOCAL_MODEL}: {message}", llm_provider=PROVIDER, model=LOCAL_MODEL)
