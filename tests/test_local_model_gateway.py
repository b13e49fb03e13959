"""The embedded model through the gateway: called in this process, without LiteLLM (decision 0052)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from test_local_model import CAPITAL_QUESTION, SQL_LOOKUP
from test_tool_declaration import quote_shipping

from app.gateway import CallContext, ModelReply
from app.gateway.local_model import DECISION_OPENING, LocalModel
from app.services import Services, build_services
from app.tools.registry import ToolRegistry
from core.config import load_settings
from core.errors import ModelError
from memory.tables import ModelCall

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    folder = tmp_path_factory.mktemp("local-gateway")
    built = build_services(load_settings(database_url=f"sqlite:///{folder / 'fb.db'}"))
    yield built
    built.close()


def ask(services: Services, messages: list[dict], **options: Any) -> ModelReply:
    return asyncio.run(services.gateway.chat(messages, route="chat", context=CallContext("t", "u"), **options))


def test_answers_on_the_chat_route_at_zero_cost_with_its_usage(services: Services) -> None:
    reply = ask(services, CAPITAL_QUESTION, temperature=0)

    assert "Paris" in reply.text
    assert reply.tool_calls == ()
    assert reply.model == "local/qwen2.5-coder-0.5b-instruct"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert reply.usage.cost_usd == 0.0


def test_streams_the_answer_to_on_token_piece_by_piece(services: Services) -> None:
    pieces: list[str] = []

    reply = ask(services, CAPITAL_QUESTION, temperature=0, on_token=pieces.append)

    assert len(pieces) > 1
    assert "".join(pieces) == reply.text


def test_a_tool_call_comes_back_with_arguments_of_its_schema(services: Services) -> None:
    reply = ask(services, [{"role": "user", "content": "Look up order 42 in the database"}], tools=[SQL_LOOKUP])

    (call,) = reply.tool_calls
    assert call.name == "sql_lookup" and call.id.startswith("call_")
    assert isinstance(json.loads(call.arguments)["order_id"], int)
    assert reply.text == ""


def test_a_tool_with_structured_arguments_gets_a_call_its_own_validation_accepts(services: Services) -> None:
    question = "What does shipping 2 docks (SKU DOCK-1) express to Lyon 69001 cost, ready on 9 December 2026?"
    # Forced: the grammar built from the nested schema is under test, not the model's choice to call.
    messages = [{"role": "user", "content": question}]
    reply = ask(services, messages, tools=[quote_shipping.spec()], tool_choice="quote_shipping")

    (call,) = reply.tool_calls
    arguments = quote_shipping.parse_arguments(call.arguments)  # nested model, dataclass list, enum and date
    assert arguments.to.city == "Lyon"  # type: ignore[attr-defined]


def test_a_tool_calls_small_integer_stays_within_its_bounds(services: Services) -> None:
    search = next(spec for spec in ToolRegistry.from_modules(["examples.support_desk.tools"]).specs()
                  if spec["function"]["name"] == "knowledge_search")  # fmt: skip
    question = "Give me the top 9 help-centre articles about refunds."
    reply = ask(services, [{"role": "user", "content": question}], tools=[search], tool_choice="knowledge_search")

    (call,) = reply.tool_calls
    assert 1 <= json.loads(call.arguments).get("top_k", 2) <= 5  # the schema says 1 to 5, whatever was asked


def read_beyond_one_prompt(services: Services, messages: list[dict], reply: ModelReply) -> int:
    """Prompt tokens the reply's generations read beyond two readings of the decision's prompt."""
    prompt = services.gateway.count_tokens(messages, route="chat", tools=[SQL_LOOKUP])
    return reply.usage.input_tokens - 2 * prompt


def tokens_of(*texts: str) -> int:
    """Tokens of ``texts`` by the embedded model's tokenizer (the loaded model is shared within the process)."""
    model = LocalModel(load_settings().local_model)
    return sum(model.count_tokens(text) for text in texts)


def test_with_tools_offered_a_plain_question_is_answered_from_the_decisions_own_prompt(services: Services) -> None:
    reply = ask(services, CAPITAL_QUESTION, tools=[SQL_LOOKUP], temperature=0)

    assert "Paris" in reply.text and not reply.text.lstrip().startswith("{")
    assert reply.tool_calls == ()
    # The decision's {"next": "answer"} is all the answer reads beyond the decision's prompt, not a second
    # prompt with a note (which cost 20 more tokens to evaluate).
    written = '{"next": "answer"}\n'
    assert 0 <= read_beyond_one_prompt(services, CAPITAL_QUESTION, reply) <= tokens_of(DECISION_OPENING, written)


def test_a_plain_answer_and_a_tool_call_come_out_the_same_whatever_the_model_read_before(services: Services) -> None:
    # The decision "answer" is read off a pass that also evaluates the answer's prompt; what the model's context
    # holds from the call before (the same question, another one, nothing of it) must not change the outcome.
    order = [{"role": "user", "content": "Look up order 42 in the database"}]
    plain = [ask(services, CAPITAL_QUESTION, tools=[SQL_LOOKUP], temperature=0) for _ in range(2)]
    tool = ask(services, order, tools=[SQL_LOOKUP], temperature=0)
    after_tool = ask(services, CAPITAL_QUESTION, tools=[SQL_LOOKUP], temperature=0)

    assert plain[0].text == plain[1].text == after_tool.text and "Paris" in plain[0].text
    assert plain[0].usage.input_tokens == plain[1].usage.input_tokens == after_tool.usage.input_tokens
    assert [call.name for call in tool.tool_calls] == ["sql_lookup"]


def test_a_tool_calls_arguments_go_on_from_the_decision_in_the_same_reply(services: Services) -> None:
    asked = [{"role": "user", "content": "Look up order 42 in the database"}]

    reply = ask(services, asked, tools=[SQL_LOOKUP], temperature=0)

    (call,) = reply.tool_calls
    assert json.loads(call.arguments) == {"order_id": 42}
    # The parameters are in the tool list, so the arguments read the decision's prompt and the decision written
    # out, not a second prompt with the schema (which cost about 100 more tokens per call).
    written = '{"next": "sql_lookup", "arguments": '
    assert 0 <= read_beyond_one_prompt(services, asked, reply) <= tokens_of(DECISION_OPENING, written)


def test_a_prompt_over_the_context_window_is_a_final_error_with_its_audit_row(services: Services) -> None:
    too_long = [{"role": "user", "content": "word " * 6000}]

    with pytest.raises(ModelError) as raised:
        ask(services, too_long, max_output_tokens=8)

    assert raised.value.kind == "context_window" and not raised.value.transient
    assert "context window is 4096" in str(raised.value)
    with Session(services.engine) as session:
        rows = session.exec(select(ModelCall).where(ModelCall.status == "error")).all()
    assert [row.error_kind for row in rows] == ["context_window"]  # one attempt: no retry, no fallback


def test_counts_tokens_with_the_models_own_tokenizer_and_tool_list(services: Services) -> None:
    without_tools = services.gateway.count_tokens(CAPITAL_QUESTION, route="chat", tools=None)
    with_tools = services.gateway.count_tokens(CAPITAL_QUESTION, route="chat", tools=[SQL_LOOKUP])

    # The prompt in the chat template: the question (8 tokens) and the template's own turns.
    assert 8 < without_tools < 40
    assert with_tools > without_tools + 40  # the tool list with its example goes into the system message


def test_firebreak_ask_on_the_embedded_model_never_imports_litellm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FIREBREAK_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.db'}",
        "FIREBREAK_CACHE__ENABLED": "false",
    }
    command = [sys.executable, "-X", "importtime", str(Path(sys.executable).with_name("firebreak")), "ask"]

    done = subprocess.run(
        [*command, "What is the capital of France?"], capture_output=True, text=True, env=env, cwd=ROOT
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert "Paris" in done.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "llama_cpp" in imported  # the import log is complete: the model's own package is in it
    assert [name for name in imported if name.split(".")[0] == "litellm"] == []


# One process's replies to two questions in turn, sampled at temperature 1.0 on the chat route (argv: database
# url, then the route's settings over firebreak.toml's as JSON).
TWO_REPLIES = """
import asyncio, json, sys
from app.gateway import CallContext
from app.services import build_services
from core.config import load_settings

services = build_services(load_settings(database_url=sys.argv[1], routes={"chat": json.loads(sys.argv[2])}))
questions = ["Tell me a very short story about a lighthouse keeper.", "Write four lines about rain on a tin roof."]

async def replies():
    context = CallContext("t", "u")
    return [
        (await services.gateway.chat(
            [{"role": "user", "content": question}], route="chat", context=context, temperature=1.0,
            max_output_tokens=40,
        )).text
        for question in questions
    ]

print(json.dumps(asyncio.run(replies())))
"""


def replies_of_a_new_process(folder: Path, route: dict[str, Any]) -> list[str]:
    """What a newly started process samples for the same two questions; the model loads once per process."""
    folder.mkdir()
    command = [sys.executable, "-c", TWO_REPLIES, f"sqlite:///{folder / 'fb.db'}", json.dumps(route)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_a_seeded_route_gives_a_new_process_the_same_replies_to_the_same_calls(tmp_path: Path) -> None:
    # What a quality eval needs: the same cases in the same order score the same in every new process. (Within
    # one process, what the model evaluated before decides how a prompt is batched, and so can move a token.)
    assert load_settings().route("chat").seed is not None  # firebreak.toml seeds the chat route

    assert replies_of_a_new_process(tmp_path / "one", {}) == replies_of_a_new_process(tmp_path / "two", {})


def test_an_unseeded_route_samples_afresh_on_every_call(tmp_path: Path) -> None:
    unseeded = {"seed": None}

    first, second = (replies_of_a_new_process(tmp_path / name, unseeded) for name in ("one", "two"))

    assert first != second
