"""Speed of the embedded model as users get it, and against bare llama-cpp-python.

``measure_local_model``: LiteLLM streaming through the local provider. ``measure_chat_turns``: a warm turn
through the real agent against a bare ``llama_cpp.Llama`` (its own instance on the same GGUF file) making the
same generations from the same messages and tool specs, interleaved turn by turn. ``measure_cold_ask``: a new
``firebreak ask`` process, from its start to the first answer byte on stdout.
"""

from __future__ import annotations

import os

# LiteLLM reads these at import time: no hub or price-map downloads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import litellm
import llama_cpp
from langchain_core.messages import AIMessage, AnyMessage

from app.gateway.local_litellm import register_local_provider
from app.gateway.local_model import DEFAULT_TOP_P, LOCAL_MODEL, REPEAT_PENALTY, TOP_K, chat_formatter, new_llama
from app.gateway.model_files import assemble_model
from core.config import LocalModelSettings, Settings, load_settings
from core.status import RunStatus
from graph.agent import Agent
from graph.messages import to_openai

# Differs from the measured prompt so the timed call cannot reuse the warm-up's cached prompt.
WARM_UP_PROMPT = "Say hello."


def measure_local_model(
    settings: LocalModelSettings, prompt: str = "Write a short paragraph about the sea.", max_tokens: int = 128
) -> dict[str, float | int]:
    """Load time, first-token latency and decode rate of one greedy streamed completion.

    ``load_s`` is the warm-up call (weights assembled if needed, loaded and paged in);
    ``first_token_s`` is request to first streamed token on the warm model;
    ``tokens_per_s`` is tokens after the first over the time from first to last token.
    """
    register_local_provider(settings)
    return asyncio.run(_measure(prompt, max_tokens))


async def _measure(prompt: str, max_tokens: int) -> dict[str, float | int]:
    started = time.perf_counter()
    await litellm.acompletion(model=LOCAL_MODEL, messages=[{"role": "user", "content": WARM_UP_PROMPT}], max_tokens=1)
    load_s = time.perf_counter() - started

    requested = time.perf_counter()
    stream = await litellm.acompletion(
        model=LOCAL_MODEL,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    arrivals: list[float] = []
    completion_tokens = 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter())
        if usage := getattr(chunk, "usage", None):
            completion_tokens = usage.completion_tokens
    if len(arrivals) < 2:
        raise RuntimeError(f"the model streamed {len(arrivals)} pieces; too few to time decoding")
    return {
        "tokens_per_s": round((completion_tokens - 1) / (arrivals[-1] - arrivals[0]), 1),
        "first_token_s": round(arrivals[0] - requested, 3),
        "load_s": round(load_s, 3),
        "completion_tokens": completion_tokens,
    }


CHAT_QUESTION = "What is the capital of Germany?"
# Answered from one help-centre article: one knowledge_search call, then the answer.
TOOL_QUESTION = "When is the support desk open? Search the help centre."
TOOL = "knowledge_search"
ROUNDS = 5
# A new process varies by a few tenths of a second from run to run: five timed runs for a steadier median, each
# a question the cache has not seen (the first only warms up).
COLD_QUESTIONS = (
    CHAT_QUESTION,
    "What is the capital of France?",
    "What is the capital of Italy?",
    "What is the capital of Spain?",
    "What is the capital of Japan?",
    "What is the capital of Canada?",
)
CACHE_HIT_NOTE = "cached (similarity"  # how `firebreak ask` marks an answer served from the cache
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class _Generation:
    seconds: float
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class _Turn:
    seconds: float
    prompt_tokens: int
    completion_tokens: int
    tool_calls: list[str]  # the names of the tools the turn called
    # Each model reply of the turn: the messages Firebreak sent for it, and the reply as the bare model would
    # write it (its text, or its tool call in the chat template's own format).
    generations: list[tuple[list[dict[str, Any]], str]]


class BareModel:
    """llama-cpp-python on its own: the chat template renders messages and tool specs, one generation each."""

    def __init__(self, settings: LocalModelSettings, tools: list[dict[str, Any]], temperature: float) -> None:
        path = assemble_model(settings.cache_path, progress=False)
        self.llama = new_llama(llama_cpp.Llama, path, settings.context_window, settings.threads)
        self.formatter = chat_formatter(self.llama)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llama.model)
        self.tools = tools
        self.temperature = temperature

    def generate(self, messages: list[dict[str, Any]], like: str) -> _Generation:
        """One reply, sampled as Firebreak samples, to its end or the length of ``like`` (Firebreak's reply).

        The cap keeps the comparison to the same work: a longer reply of the bare model's own would measure
        its wordiness, not Firebreak's overhead. At the cap the bare model still samples one more token, as
        any reply that ends samples its end token (Firebreak's did): stopping without it would leave out a
        decoding step only because the bench knows the length in advance.
        """
        cap = max(1, len(self.llama.tokenize(like.encode("utf-8"), add_bos=False, special=True)))
        started = time.perf_counter()
        # OpenAI-shaped plain dicts: what the formatter's TypedDicts describe.
        rendered = self.formatter(messages=cast(Any, messages), tools=cast(Any, self.tools))
        prompt = self.llama.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)
        generated = 0
        for token in self.llama.generate(
            prompt, temp=self.temperature, top_p=DEFAULT_TOP_P, top_k=TOP_K, repeat_penalty=REPEAT_PENALTY
        ):
            if llama_cpp.llama_vocab_is_eog(self.vocab, token) or generated == cap:
                break
            generated += 1
            self.llama.detokenize([token])  # as any caller turns tokens into text
        return _Generation(time.perf_counter() - started, len(prompt), generated)


def measure_chat_turns(settings: Settings, rounds: int = ROUNDS) -> dict[str, Any]:
    """A warm turn through the real agent against bare llama-cpp-python making the same generations.

    Per round, interleaved: Firebreak answers the chat question, the bare model answers the messages
    Firebreak's model call got; then the same for the tool question (Firebreak: one tool call, then the
    answer; the bare model: the same two generations, from the messages of Firebreak's two model calls).
    One warm-up turn each first. Times are medians over ``rounds``; a ratio, what the targets name, is the median
    of the rounds' ratios: the answer is sampled, so its length changes from round to round, and only a round's
    two sides made generations of the same length.
    """
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-") as folder:
        agent_settings = load_settings(
            database_url=f"sqlite:///{Path(folder) / 'bench.db'}",
            cache={"enabled": False},  # the model must really run
            agent={"run_wall_clock_s": 300.0},  # a loaded machine must not time the cold warm-up turn out
            local_model=settings.local_model.model_dump(),
        )
        return asyncio.run(_measure_chat_turns(agent_settings, rounds))


async def _measure_chat_turns(settings: Settings, rounds: int) -> dict[str, Any]:
    async with Agent.open(settings) as agent:
        route = settings.routes[settings.agent.default_route]  # a fresh database serves the base release
        bare = BareModel(settings.local_model, agent.services.tools.specs(), route.temperature)
        samples: dict[str, list[float]] = {"chat_turn_s": [], "chat_bare_s": [], "tool_turn_s": [], "tool_bare_s": []}
        last: dict[str, Any] = {}
        for round_number in range(rounds + 1):  # round 0 is the warm-up
            for question, name in ((CHAT_QUESTION, "chat"), (TOOL_QUESTION, "tool")):
                turn = await _firebreak_turn(agent, question, settings.agent.system_prompt)
                if turn.tool_calls != ([TOOL] if name == "tool" else []):
                    raise RuntimeError(f"the {name} turn called {turn.tool_calls}: its figure would time other work")
                replies = [bare.generate(messages, like) for messages, like in turn.generations]
                if round_number:
                    samples[f"{name}_turn_s"].append(turn.seconds)
                    samples[f"{name}_bare_s"].append(sum(reply.seconds for reply in replies))
                last[name] = (turn, replies)
    figures: dict[str, Any] = {key: round(statistics.median(values), 3) for key, values in samples.items()}
    for name in ("chat", "tool"):
        turn, replies = last[name]
        ratios = [t / b for t, b in zip(samples[f"{name}_turn_s"], samples[f"{name}_bare_s"], strict=True)]
        figures[f"{name}_turn_vs_bare_model"] = round(statistics.median(ratios), 2)
        figures[f"{name}_turn_vs_bare_rounds"] = [round(ratio, 3) for ratio in ratios]
        figures[f"{name}_tool_calls"] = len(turn.tool_calls)
        figures[f"{name}_completion_tokens"] = turn.completion_tokens
        figures[f"{name}_bare_prompt_tokens"] = [reply.prompt_tokens for reply in replies]
        figures[f"{name}_bare_completion_tokens"] = sum(reply.completion_tokens for reply in replies)
    figures["prompt_tokens"] = last["chat"][0].prompt_tokens
    figures["tool_prompt_tokens"] = last["tool"][0].prompt_tokens
    figures["rounds"] = rounds
    return figures


async def _firebreak_turn(agent: Agent, question: str, system_prompt: str) -> _Turn:
    started = time.perf_counter()
    result = await agent.ask(question)
    seconds = time.perf_counter() - started
    if result.status != RunStatus.ANSWERED:
        raise RuntimeError(f"the bench turn for {question!r} ended {result.status}: {result.error}")
    state = await agent.graph.aget_state({"configurable": {"thread_id": result.thread_id}})
    messages: list[AnyMessage] = state.values["messages"]
    replies = [(index, message) for index, message in enumerate(messages) if isinstance(message, AIMessage)]
    return _Turn(
        seconds=seconds,
        prompt_tokens=result.usage.input_tokens,
        completion_tokens=result.usage.output_tokens,
        tool_calls=[call["name"] for _, reply in replies for call in reply.tool_calls],
        generations=[(to_openai(messages[:index], system_prompt), _as_written(reply)) for index, reply in replies],
    )


def measure_cold_ask(questions: Sequence[str] = COLD_QUESTIONS) -> dict[str, Any]:
    """Seconds from starting ``firebreak ask`` in a new process to the first answer byte on its stdout.

    The command runs as users run it, with the configuration as shipped (the semantic cache on), against a
    database of its own. The first question warms the disk: the weights are paged in, the database exists and
    the prompt prefix's state is saved. Each later question is new to the cache, so it embeds the question,
    finds the earlier ones as candidates, has the verifier refuse them, and the embedded model answers; a run
    the cache answered would time something else, and fails the measurement. The figure is the median.
    """
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-") as folder:
        env = {
            **os.environ,
            "FIREBREAK_DATABASE_URL": f"sqlite:///{Path(folder) / 'bench.db'}",
            # The warm-up evaluates the whole prompt: on a loaded machine that must not time the run out.
            "FIREBREAK_AGENT__RUN_WALL_CLOCK_S": "300",
        }
        warm_up, *timed = questions
        _first_answer_byte(warm_up, env, Path(folder))
        timings = [_first_answer_byte(question, env, Path(folder)) for question in timed]
    firsts = [first for first, _ in timings]
    return {
        "cold_ask_first_token_s": round(statistics.median(firsts), 3),
        "cold_ask_first_token_runs_s": [round(first, 3) for first in firsts],
        "cold_ask_exit_s": round(statistics.median(total for _, total in timings), 3),
        "cold_ask_runs": len(timed),
    }


def _first_answer_byte(question: str, env: dict[str, str], folder: Path) -> tuple[float, float]:
    """One ``firebreak ask``: seconds to its first stdout byte and to its exit."""
    command = [str(Path(sys.executable).with_name("firebreak")), "ask", question]
    with (folder / "stderr.txt").open("w+b") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=ROOT)
        assert process.stdout is not None
        first = process.stdout.read(1)
        first_s = time.perf_counter() - started
        rest = process.stdout.read()
        code = process.wait()
        total_s = time.perf_counter() - started
        stderr.seek(0)
        errors = stderr.read().decode()
        if code != 0 or not first:
            raise RuntimeError(f"firebreak ask exited {code}: {(first + rest).decode()} {errors}")
        if CACHE_HIT_NOTE in errors:  # the note goes to stderr, after the answer
            raise RuntimeError(f"the cache answered {question!r}: its figure would not time the model")
    return first_s, total_s


def _as_written(reply: AIMessage) -> str:
    """The reply as a model writes it in Qwen2.5's chat format: its text, then each tool call in its tags."""
    calls = [
        f"<tool_call>\n{json.dumps({'name': call['name'], 'arguments': call['args']})}\n</tool_call>"
        for call in reply.tool_calls
    ]
    return "\n".join(filter(None, [reply.text, *calls]))


if __name__ == "__main__":
    print(json.dumps(measure_local_model(load_settings().local_model), indent=2))
