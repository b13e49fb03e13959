"""The embedded model: ``local/qwen2.5-coder-0.5b-instruct`` served by llama.cpp in this process.

Tool calling on a 0.5B model relies on grammar-constrained output rather than
the model's own tool-call format. The reply opens with ``{"next": <tool name or
"answer">`` under a grammar; the same reply then goes on with the chosen tool's
arguments, held to its parameter schema, or with a free-text answer streamed
token by token. Going on in one reply means a phase evaluates only what the
decision wrote, not a second prompt. Every prompt starts with the same rendered
conversation, so llama.cpp re-evaluates only the short tail that differs between
agent steps; the state of the system message (prompt, tool list, examples) is
saved and restored when another call evicted it or a new process starts
(``prefix_state``).
"""

from __future__ import annotations

import asyncio
import codecs
import contextvars
import json
import threading
from collections.abc import AsyncGenerator, Generator, Iterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from app.gateway.calls import TokenSink
from app.gateway.grammar_first import GrammarFirstLlama
from app.gateway.local_outcome import FinishReason, Outcome, Phase, combined_outcome
from app.gateway.local_prompt import (
    AFTER_RESULT_NOTE,
    ANSWER,
    ANSWER_NOTE,
    ANSWER_OPENING,
    ARGUMENTS_OPENING,
    DECISION_OPENING,
    LOCAL_MODEL,
    MODEL_NAME,
    PROVIDER,
    RESULT_PREFIX,
    Messages,
    chat_messages,
    system_turn,
    tool_spec,
    with_tool_note,
)
from app.gateway.model_files import assemble_model
from app.gateway.prefix_state import PrefixStates, shared_length
from app.gateway.schema_grammar import loosened
from core.config import LocalModelSettings
from core.errors import ModelError
from core.once import load_once

# Sampling defaults from Qwen2.5's generation_config.json, used when the caller sets none.
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.8
TOP_K = 20
REPEAT_PENALTY = 1.05
# Room for the longest tool name; the grammar ends the reply well before this.
DECISION_MAX_TOKENS = 64
PREFIX_STATE_FOLDER = "prefix-states"  # under [local_model] cache_dir

_Result = TypeVar("_Result")
_Llama = TypeVar("_Llama", bound=llama_cpp.Llama)


@dataclass(frozen=True)
class _LoadedModel:
    llama: llama_cpp.Llama
    formatter: Jinja2ChatFormatter
    vocab: llama_cpp.llama_vocab_p
    lock: threading.Lock  # llama.cpp contexts are not thread-safe: one generation at a time
    prefixes: PrefixStates


@dataclass(frozen=True)
class _Prompt:
    tokens: list[int]
    fixed: int  # how many of ``tokens`` render the system message: the prefix whose state is saved


@dataclass(frozen=True)
class LocalRequest:
    messages: Messages
    tools: list[dict[str, Any]]
    forced_tool: str | None
    allow_answer: bool
    max_tokens: int | None
    temperature: float
    top_p: float
    seed: int | None = None  # None: a random one for each generation


class LocalModel:
    """Qwen2.5-Coder-0.5B through llama-cpp-python, in this process; the weights load on first use."""

    def __init__(self, settings: LocalModelSettings) -> None:
        self.settings = settings

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer (no special tokens)."""
        # Tokenizing only reads the vocabulary, so it does not wait for a running generation.
        return len(self._model().llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt_tokens(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
        """Tokens of the prompt this model reads first for ``messages`` and ``tools`` (the decision's, with tools)."""
        request = local_request(LOCAL_MODEL, messages, {"tools": tools})
        shown = with_tool_note(request.messages, request.tools) if request.tools else request.messages
        return len(_tokens(self._model(), shown))

    async def complete(self, model: str, params: Mapping[str, Any], on_token: TokenSink | None = None) -> Outcome:
        """One call from OpenAI-style ``params`` (messages, tools, …): the answer's pieces go to ``on_token``."""
        async with aclosing(self.stream(local_request(model, params["messages"], params))) as items:
            async for item in items:
                if isinstance(item, Outcome):
                    return item
                if on_token is not None:
                    on_token(item)
        raise AssertionError("a local stream always ends with its outcome")

    async def stream(self, request: LocalRequest) -> AsyncGenerator[str | Outcome, None]:
        """The answer's text pieces as they are generated, then the whole :class:`Outcome`.

        Generation runs on a worker thread; a caller that stops iterating (or is cancelled) stops it at its next
        token.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | Outcome | BaseException] = asyncio.Queue()
        stop = threading.Event()

        def post(item: str | Outcome | BaseException) -> None:
            if not stop.is_set():
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def produce() -> None:
            events = self.events(request, stop)
            try:
                for item in pieces_then_outcome(events):
                    post(item)
            except BaseException as exc:  # handed to the consumer, which re-raises it in its own task
                post(exc)
            finally:
                events.close()

        # produce() never raises, so the executor's future needs no awaiting; the context carries trace spans.
        loop.run_in_executor(None, contextvars.copy_context().run, produce)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Outcome):
                    return
        finally:
            stop.set()  # the worker stops at its next token; awaiting it would delay the caller's cancellation

    def load(self) -> None:
        """Load the weights now (once per process), so that the first call does not wait for them."""
        self._model()

    def _model(self) -> _LoadedModel:
        """The process-wide Llama for these settings, loaded on first use."""
        settings = self.settings
        return _open(settings.cache_path, settings.context_window, settings.threads)

    def events(self, request: LocalRequest, stop: threading.Event) -> Generator[str, None, Outcome]:
        """Yield answer text as it is generated; return the whole outcome."""
        model = self._model()
        with model.lock:
            if not request.tools:
                answer = yield from _generate(model, _prompt(model, request.messages), request, stop)
                return combined_outcome(answer)
            base = with_tool_note(request.messages, request.tools)
            after_result = request.allow_answer and request.messages[-1]["content"].startswith(RESULT_PREFIX)
            asked = [*base, system_turn(AFTER_RESULT_NOTE)] if after_result else base
            # Each prompt is rendered and tokenized once: the speculative pass and the answer share theirs, and
            # a call whose tool_choice leaves no choice renders no decision prompt at all.
            decision = _given(request)
            fixed: int | None = None  # the system message's length in tokens, once a prompt has measured it
            going_on: _Prompt | None = None
            if decision is None:
                decided = _prompt(model, asked, DECISION_OPENING)
                fixed = decided.fixed
                if request.allow_answer and not after_result:
                    going_on = _prompt(model, base, ANSWER_OPENING, fixed)
                speculated = _answer_decided_at_once(model, decided, going_on, request) if going_on else None
                decision = speculated or _decide(model, decided, request, stop)
            if decision.text == ANSWER and going_on is not None:
                # The answer goes on from the decision in the same reply, as the examples show: only the
                # decision's closing is evaluated, not a second prompt. After a tool result the answer note
                # stays: going on from there, the model described the results instead of answering.
                answer = yield from _generate(model, going_on, request, stop)
                if answer.text.strip():
                    return combined_outcome(answer, decision)
            # "answer" after a tool result or that ended at once, or a decision cut short by ``stop`` (then the
            # answer phase ends at once).
            tool = next((tool for tool in request.tools if tool["name"] == decision.text), None)
            if tool is None:
                noted = _prompt(model, [*base, system_turn(ANSWER_NOTE)], fixed=fixed)
                answer = yield from _generate(model, noted, request, stop)
                return combined_outcome(answer, decision)
            # The arguments go on from the decision in the same reply too, held to the schema the tool list shows.
            grammar = _schema_grammar(tool["parameters"])
            opening = DECISION_OPENING + tool["name"] + ARGUMENTS_OPENING
            arguments_prompt = _prompt(model, asked, opening, fixed)
            arguments = drain(_generate(model, arguments_prompt, request, stop, grammar=grammar, temperature=0.0))
            return combined_outcome(arguments, decision, tool_name=tool["name"])


@load_once
def _open(cache_path: Path, context_window: int, threads: int) -> _LoadedModel:
    try:
        path = assemble_model(cache_path)
    except Exception as exc:
        raise _failure("server", f"the local model's weights are unavailable: {exc}") from exc
    try:
        llama = new_llama(GrammarFirstLlama, path, context_window, threads)
    except Exception as exc:
        raise _failure("server", f"llama.cpp could not load {path}: {exc}") from exc
    if not llama.metadata.get("tokenizer.chat_template"):
        raise _failure("server", f"{path} has no chat template in its GGUF metadata")
    formatter = chat_formatter(llama)
    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    prefixes = PrefixStates(llama, cache_path / PREFIX_STATE_FOLDER, path)
    return _LoadedModel(llama, formatter, vocab, threading.Lock(), prefixes)


def new_llama(kind: type[_Llama], path: Path, context_window: int, threads: int, **options: Any) -> _Llama:
    """``kind`` (``llama_cpp.Llama`` or a subclass) over the model file at ``path``, quiet, with ``threads`` for
    generation and for prompt evaluation alike: llama-cpp-python defaults the latter to every CPU, and the
    setting is meant as the cap."""
    return kind(
        model_path=str(path),
        n_ctx=context_window,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
        **options,
    )


def chat_formatter(llama: llama_cpp.Llama) -> Jinja2ChatFormatter:
    """The chat template of ``llama``'s GGUF metadata, with its own end and start tokens."""
    return Jinja2ChatFormatter(
        template=llama.metadata["tokenizer.chat_template"],
        eos_token=llama.detokenize([llama.token_eos()], special=True).decode("utf-8"),
        bos_token=llama.detokenize([llama.token_bos()], special=True).decode("utf-8"),
    )


def _generate(
    model: _LoadedModel,
    prompt: _Prompt,
    request: LocalRequest,
    stop: threading.Event,
    *,
    grammar: LlamaGrammar | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    finals: frozenset[str] = frozenset(),
) -> Generator[str, None, Phase]:
    """Yield text pieces of one generation after ``prompt``; return its text, finish reason and token counts.

    ``finals`` are texts after which ``grammar`` allows only the end: generation stops there, without a
    decoding step that could only sample the end token.
    """
    llama = model.llama
    room = llama.n_ctx() - len(prompt.tokens)
    if room < 1:
        raise _failure(
            "context_window", f"the prompt is {len(prompt.tokens)} tokens but the context window is {llama.n_ctx()}"
        )
    budget = min(room, max_tokens or request.max_tokens or room)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []
    generated = 0
    finish_reason: FinishReason = "length"
    try:
        model.prefixes.prepare(prompt.tokens, prompt.fixed)
        # Llama.generate samples with the model's seed; llama.cpp's default one draws a new seed each time.
        llama.set_seed(llama_cpp.LLAMA_DEFAULT_SEED if request.seed is None else request.seed)
        tokens = llama.generate(
            prompt.tokens,
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
        raise _failure("server", f"llama.cpp failed while generating: {exc}") from exc
    if tail := decoder.decode(b"", final=True):
        pieces.append(tail)
        yield tail
    return Phase("".join(pieces), finish_reason, len(prompt.tokens), generated)


def _prompt(model: _LoadedModel, messages: Messages, opening: str = "", fixed: int | None = None) -> _Prompt:
    """``messages`` in the model's chat template, then ``opening``; ``fixed`` if known (same system message)."""
    tokens = _tokens(model, messages, opening)
    return _Prompt(tokens, _fixed_prefix_length(model, messages, tokens) if fixed is None else fixed)


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


def _options(request: LocalRequest) -> list[str]:
    return ([ANSWER] if request.allow_answer else []) + [tool["name"] for tool in request.tools]


def _given(request: LocalRequest) -> Phase | None:
    """The decision when tool_choice leaves no choice, taken without a model call; else ``None``."""
    options = _options(request)
    if request.forced_tool is not None or len(options) == 1:
        return Phase(request.forced_tool or options[0], "stop", 0, 0)
    return None


def _decide(model: _LoadedModel, decided: _Prompt, request: LocalRequest, stop: threading.Event) -> Phase:
    """Phase 1, when there is a choice: the chosen tool's name or "answer", under a grammar of the options."""
    options = _options(request)
    # The reply is {"next": <option>}; its fixed opening goes into the prompt, so only the option is sampled.
    grammar = LlamaGrammar.from_string(
        "root ::= " + " | ".join(json.dumps(option) for option in options), verbose=False
    )
    return drain(
        _generate(
            model,
            decided,
            request,
            stop,
            grammar=grammar,
            temperature=0.0,
            max_tokens=DECISION_MAX_TOKENS,
            finals=_finals(options),
        )
    )


def _answer_decided_at_once(
    model: _LoadedModel, decided: _Prompt, going_on: _Prompt, request: LocalRequest
) -> Phase | None:
    """The decision "answer" read off the pass that also evaluates the answer's prompt; ``None`` if it is not.

    One batch evaluates the decision's prompt and, ahead of the choice, ``"answer"}`` written out (``going_on``),
    with logits at the decision's position and at the end. If the model's first choice at the decision's
    position is the "answer" token (so the grammar's greedy choice is too), the answer's first token is sampled
    from the end's logits: a plain answer pays no forward pass for its decision. Otherwise the decision is taken
    as usual (one token is evaluated again).
    """
    llama = model.llama
    decided_tokens, answering = decided.tokens, going_on.tokens
    choice = answering[len(decided_tokens)] if len(answering) > len(decided_tokens) else None
    if (
        choice is None
        or answering[: len(decided_tokens)] != decided_tokens
        or llama.detokenize([choice]) != ANSWER.encode()  # one token must spell the whole option
        or any(tool["name"].startswith(ANSWER) for tool in request.tools)  # ...and no other option go on from it
        or len(answering) >= llama.n_ctx()
    ):
        return None
    model.prefixes.prepare(decided_tokens, decided.fixed)
    start = min(shared_length(llama.input_ids[: llama.n_tokens].tolist(), answering), len(decided_tokens) - 1)
    batch, at_decision = answering[start:], len(decided_tokens) - 1 - start
    if len(batch) > llama.n_batch:
        return None
    try:
        # What Llama.eval does, with one more position's logits kept.
        llama._ctx.kv_cache_seq_rm(-1, start, -1)
        llama._batch.set_batch(batch=batch, n_past=start, logits_all=False)
        llama._batch.batch.logits[at_decision] = True
        llama._ctx.decode(llama._batch)
    except (RuntimeError, ValueError, OSError) as exc:
        raise _failure("server", f"llama.cpp failed while evaluating the prompt: {exc}") from exc
    llama.input_ids[start : start + len(batch)] = batch
    llama.n_tokens = start + len(batch)
    llama._requires_eval = False  # the end's logits are fresh: Llama.generate samples from them without a pass
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llama.ctx, at_decision), shape=(llama.n_vocab(),))
    if int(logits.argmax()) != choice:
        return None
    return Phase(ANSWER, "stop", len(decided_tokens), 1)


def _finals(options: list[str]) -> frozenset[str]:
    """The options no other option goes on from: once one is written, the choice is made."""
    return frozenset(option for option in options if not any(o != option and o.startswith(option) for o in options))


def pieces_then_outcome(events: Generator[str, None, Outcome]) -> Iterator[str | Outcome]:
    """``events``' text pieces, then its return value: one stream a consumer reads to the end."""
    outcome = yield from events
    yield outcome


def drain(events: Generator[str, None, _Result]) -> _Result:
    """Run ``events`` to the end for its return value."""
    while True:
        try:
            next(events)
        except StopIteration as finished:
            return finished.value


def _schema_grammar(schema: Mapping[str, Any]) -> LlamaGrammar:
    try:
        return LlamaGrammar.from_json_schema(json.dumps(loosened(schema)), verbose=False)
    except Exception as exc:  # the converter raises bare Exceptions for schema features it lacks
        message = f"cannot constrain output to the JSON schema {schema}: {exc}"
        raise _failure("bad_request", message) from exc


def local_request(model: str, messages: list[dict[str, Any]], optional_params: Mapping[str, Any]) -> LocalRequest:
    """The call as this model takes it, from OpenAI-style messages and parameters (tools, tool_choice, …)."""
    if model.removeprefix(f"{PROVIDER}/") != MODEL_NAME:
        raise _failure("bad_request", f"the local provider serves only {LOCAL_MODEL}, not {model!r}")
    tools = [tool_spec(tool) for tool in optional_params.get("tools") or ()]
    choice = optional_params.get("tool_choice")
    if choice == "none":
        tools = []
    forced = choice["function"]["name"] if isinstance(choice, Mapping) else None
    if forced is not None and forced not in {tool["name"] for tool in tools}:
        message = f"tool_choice names {forced!r}, which is not among the tools"
        raise _failure("bad_request", message)
    return LocalRequest(
        messages=chat_messages(messages),
        tools=tools,
        forced_tool=forced,
        allow_answer=choice != "required",
        max_tokens=optional_params.get("max_tokens") or optional_params.get("max_completion_tokens"),
        temperature=_number(optional_params.get("temperature"), DEFAULT_TEMPERATURE),
        top_p=_number(optional_params.get("top_p"), DEFAULT_TOP_P),
        seed=None if optional_params.get("seed") is None else int(optional_params["seed"]),
    )


def _number(value: Any, default: float) -> float:
    return default if value is None else float(value)


def _failure(kind: str, message: str) -> ModelError:
    """The gateway's error for this model; only a server-side failure is worth another attempt."""
    return ModelError(f"{LOCAL_MODEL}: {message}", kind=kind, transient=kind == "server", model=LOCAL_MODEL)
