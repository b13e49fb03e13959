"""LangChain tools in Firebreak: registered from ``[tools] modules`` or ``from_langchain``, guarded like native ones.

The tools are real LangChain tools (``tests/lc_tools_example.py``); the agent runs the real graph on the
scripted model. Unlisted LangChain tools are writes, so every call of one in a run is followed by the
scripted self-critique of the confidence gate (``{"text": "0.95"}``).
"""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from typing import Annotated, Any

import lc_tools_example as example
import pytest
from conftest import run
from langchain_core.tools import InjectedToolArg, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from sqlmodel import Session, select

from app.services import build_services
from app.tools.langchain_tools import from_langchain
from app.tools.registry import ToolContext, ToolRegistry
from app.tools.runner import run_tool
from core.config import ExternalToolPolicy
from core.errors import ConfigError, InvalidToolArguments
from graph.agent import Agent, RunResult
from memory.tables import Operation
from nodes.planner import tool_catalogue

ROUTE = "scripted/demo"
MODULE = "lc_tools_example"
READS = {
    name: {"kind": "read"}
    for name in ("word_count", "convert_currency", "inventory", "stock_forecast", "whoami", "utc_offset")
}


def lc_settings(
    make_settings, database_url: str, script: str, class_timeouts_s: dict[str, float] | None = None, **external: Any
) -> Any:
    tools = {"modules": [MODULE], "external": READS | external, "class_timeouts_s": class_timeouts_s or {}}
    return make_settings(database_url, script=script, retries={"attempts": 1}, tools=tools)


async def _ask(settings, question: str) -> tuple[RunResult, Agent]:
    async with Agent.open(settings) as agent:
        result = await agent.ask(question, route=ROUTE)
        return agent.settle_script(result), agent


def tool_results(agent: Agent, result: RunResult) -> list[tuple[str, str | None]]:
    return [
        (e.payload["status"], e.payload["error_type"])
        for e in agent.services.runs.events(result.run_id)
        if e.kind == "tool_result"
    ]


# -- registration -----------------------------------------------------------------------------------------------


def test_every_top_level_langchain_tool_and_toolkit_tool_of_a_module_is_registered():
    registry = ToolRegistry.from_modules([MODULE])

    assert {item.name for item in registry} == {
        "word_count",
        "convert_currency",
        "inventory",
        "stock_forecast",
        "slow_search",
        "slow_sync_search",
        "record_note",
        "whoami",
        "utc_offset",
        "day_of_week",
    }


def test_the_model_sees_the_schema_langchain_would_send():
    registry = ToolRegistry.from_modules([MODULE])
    lc_tools = [example.word_count, example.convert_currency, example.record_note, *example.clocks.get_tools()]

    for lc_tool in lc_tools:
        assert registry.get(lc_tool.name).spec() == convert_to_openai_tool(lc_tool)
    # The injected tool call id is LangChain's to fill, not the model's.
    assert set(registry.get("record_note").spec()["function"]["parameters"]["properties"]) == {"text"}


def test_a_langchain_tool_is_a_write_unless_its_policy_says_read():
    registry = ToolRegistry.from_modules([MODULE], {"word_count": ExternalToolPolicy(kind="read")})

    assert registry.get("word_count").kind == "read"
    assert registry.get("record_note").kind == "write"
    assert registry.get("record_note").cost_class == "external_api"


def test_from_langchain_takes_one_tool_a_list_or_a_toolkit_with_one_policy_or_one_per_name():
    read = ExternalToolPolicy(kind="read", cost_class="web_search", timeout_s=0.5, trusted_output=True)

    one = from_langchain(example.word_count, read)
    listed = from_langchain([example.word_count, example.record_note], {"word_count": read})
    kit = from_langchain(example.clocks)

    assert (one.name, one.kind, one.cost_class, one.timeout_s, one.trusted_output) == (
        "word_count",
        "read",
        "web_search",
        0.5,
        True,
    )
    assert [(item.name, item.kind) for item in listed] == [("word_count", "read"), ("record_note", "write")]
    assert [item.name for item in kit] == ["utc_offset", "day_of_week"]


def test_the_planner_lists_a_langchain_tools_arguments_from_its_schema():
    registry = ToolRegistry(from_langchain([example.convert_currency, example.word_count]))

    assert tool_catalogue(SimpleNamespace(tools=registry)).splitlines() == [  # type: ignore[arg-type]
        "- convert_currency(amount, currency): Convert US dollars to another currency at a fixed rate.",
        "- word_count(text): Count the words of a text.",
    ]


def test_a_cached_write_is_a_configuration_error():
    with pytest.raises(ConfigError, match=r"tools\.external\.record_note: write tools are never cached"):
        from_langchain(example.record_note, ExternalToolPolicy(cached=True))


def test_a_tool_with_arguments_firebreak_cannot_inject_is_refused_clearly():
    @tool
    def lookup(query: str, session: Annotated[str, InjectedToolArg]) -> str:
        """Look something up in the caller's session."""
        return query

    with pytest.raises(ConfigError, match="LangChain tool lookup: injected arguments session have no value"):
        from_langchain(lookup)


def test_a_policy_substitute_must_be_a_registered_tool():
    with pytest.raises(ConfigError, match="slow_search: its substitute 'cached_search' is not among the tools"):
        ToolRegistry.from_modules(
            [MODULE], {"slow_search": ExternalToolPolicy(kind="read", substitute="cached_search")}
        )


# -- calls through the agent --------------------------------------------------------------------------------------


def test_a_structured_tool_is_called_by_the_agent_and_its_result_reaches_the_answer(
    database_url, make_settings, write_script
):
    script = write_script(
        {"tool_calls": [{"name": "word_count", "arguments": {"text": "the quick brown fox"}}]},
        {"expect": "4 words", "text": "Your text has 4 words."},
    )
    result, agent = run(_ask(lc_settings(make_settings, database_url, script), "How many words?"))

    assert (result.status, result.answer) == ("answered", "Your text has 4 words.")
    assert tool_results(agent, result) == [("success", None)]


def test_the_tool_span_is_named_like_a_native_tools(sqlite_url, make_settings, write_script):
    script = write_script(
        {"tool_calls": [{"name": "word_count", "arguments": {"text": "one two"}}]},
        {"text": "2 words."},
    )
    result, agent = run(_ask(lc_settings(make_settings, sqlite_url, script), "Count"))

    [span] = [span for span in agent.services.runs.spans(result.run_id) if span.name == "execute_tool word_count"]
    assert span.attributes["gen_ai.tool.name"] == "word_count"
    assert span.trace_id == result.trace_id


def test_invalid_arguments_get_firebreaks_message_and_the_model_corrects_them(sqlite_url, make_settings, write_script):
    script = write_script(
        {"tool_calls": [{"name": "convert_currency", "arguments": {"amount": -3, "colour": "red"}}]},
        {
            "expect": "invalid arguments for convert_currency",
            "tool_calls": [{"name": "convert_currency", "arguments": {"amount": 10}}],
        },
        {"expect": "5.00 EUR", "text": "That is 5 euros."},
    )
    result, agent = run(_ask(lc_settings(make_settings, sqlite_url, script), "Convert 10 dollars"))

    assert result.answer == "That is 5 euros."
    assert tool_results(agent, result) == [("error", "InvalidToolArguments"), ("success", None)]


def test_a_tool_exception_is_a_tool_error_the_model_reads_and_the_run_goes_on(sqlite_url, make_settings, write_script):
    script = write_script(
        {"tool_calls": [{"name": "inventory", "arguments": {"sku": "X-1"}}]},
        {"expect": "the warehouse does not know SKU X-1", "text": "I could not find that SKU."},
    )
    result, agent = run(_ask(lc_settings(make_settings, sqlite_url, script), "Is X-1 in stock?"))

    assert (result.status, result.answer) == ("answered", "I could not find that SKU.")
    assert tool_results(agent, result) == [("error", "ToolFailed")]


def test_an_error_langchain_handled_is_still_a_tool_error_with_the_tools_own_message(
    sqlite_url, make_settings, write_script
):
    script = write_script(
        {"tool_calls": [{"name": "stock_forecast", "arguments": {"sku": "X-1"}}]},
        {"expect": "The stock service is down; try again later.", "text": "The forecaster is down."},
    )
    result, agent = run(_ask(lc_settings(make_settings, sqlite_url, script), "Forecast X-1"))

    assert result.answer == "The forecaster is down."
    assert tool_results(agent, result) == [("error", "ToolFailed")]


def test_a_slow_tool_is_stopped_at_the_timeout_of_its_policy(sqlite_url, make_settings, write_script):
    script = write_script(
        {"tool_calls": [{"name": "slow_search", "arguments": {"query": "refunds"}}]},
        {"expect": "did not finish within 0.2s", "text": "The search timed out."},
    )
    settings = lc_settings(make_settings, sqlite_url, script, slow_search={"kind": "read", "timeout_s": 0.2})
    started = time.monotonic()
    result, agent = run(_ask(settings, "Search refunds"))

    assert result.answer == "The search timed out."
    assert tool_results(agent, result) == [("error", "ToolTimeout")]
    assert time.monotonic() - started < 4


def test_a_sync_only_tool_past_its_cost_class_budget_is_abandoned_not_awaited(sqlite_url, make_settings, write_script):
    script = write_script(
        {"tool_calls": [{"name": "slow_sync_search", "arguments": {"query": "refunds"}}]},
        {"expect": "did not finish within 0.3s", "text": "The search timed out."},
    )
    policy = {"kind": "read", "cost_class": "web_search"}
    settings = lc_settings(make_settings, sqlite_url, script, {"web_search": 0.3}, slow_sync_search=policy)
    started = time.monotonic()
    result, agent = run(_ask(settings, "Search refunds"))

    assert tool_results(agent, result) == [("error", "ToolTimeout")]
    # The run (and its event loop) ended while the tool's thread still slept: nothing waited for it.
    assert time.monotonic() - started < 2 and "refunds" not in example.SLOW_SYNC_FINISHED


def test_an_unlisted_tool_is_a_write_the_gate_grades_and_the_operation_log_records_once(
    database_url, make_settings, write_script
):
    example.NOTES.clear()
    script = write_script(
        {"tool_calls": [{"name": "record_note", "arguments": {"text": "call Ada back"}}]},
        {"text": "0.95"},  # the self-critique: the gate treats the call as a write
        {"expect": "noted: call Ada back", "text": "Noted."},
    )
    result, agent = run(_ask(lc_settings(make_settings, database_url, script), "Remember to call Ada"))

    assert result.answer == "Noted."
    [decision] = agent.services.gate.for_run(result.run_id)
    assert (decision.target, decision.band, decision.outcome) == ("record_note", "execute", "executed")
    with Session(agent.services.engine) as session:
        [operation] = session.exec(select(Operation).where(Operation.run_id == result.run_id)).all()
    assert (operation.tool, operation.status) == ("record_note", "completed")
    # LangChain injected the op_id as the tool call id: the tool's own key for its side effect.
    assert [(operation.op_id, "call Ada back")] == example.NOTES


def test_a_write_the_gate_doubts_waits_for_a_reviewer_and_does_not_run(sqlite_url, make_settings, write_script):
    example.NOTES.clear()
    script = write_script(
        {"tool_calls": [{"name": "record_note", "arguments": {"text": "wire $5000"}}]},
        {"text": "0.4"},
    )

    async def scenario() -> RunResult:
        async with Agent.open(lc_settings(make_settings, sqlite_url, script)) as agent:
            return await agent.ask("Remember to wire money", route=ROUTE)

    result = run(scenario())
    assert result.status == "waiting"
    assert example.NOTES == []


# -- calls through the tool runner --------------------------------------------------------------------------------


def _run_tool(settings, item, arguments: dict[str, Any], op_id: str | None = None) -> str:
    services = build_services(settings, tools=ToolRegistry([item]))
    context = ToolContext(
        run_id="r1", tenant_id="acme", user_id="ada", engine=services.engine, settings=settings, op_id=op_id
    )
    return run(run_tool(item, arguments, context, timeout_s=5.0, runtime=services.tool_runtime))


def test_a_tool_taking_a_runnable_config_learns_who_calls(sqlite_url, make_settings):
    item = from_langchain(example.whoami, ExternalToolPolicy(kind="read"))

    assert _run_tool(make_settings(sqlite_url), item, {}) == "acme/ada"


def test_a_write_replayed_with_its_op_id_returns_the_first_result_without_running_again(sqlite_url, make_settings):
    example.NOTES.clear()
    item = from_langchain(example.record_note)
    settings = make_settings(sqlite_url)
    op_id = uuid.uuid4().hex

    first = _run_tool(settings, item, {"text": "once"}, op_id=op_id)
    again = _run_tool(settings, item, {"text": "once"}, op_id=op_id)

    assert first == again == "noted: once"
    assert [(op_id, "once")] == example.NOTES


def test_arguments_are_checked_against_the_schema_before_the_tool_runs_in_a_native_tools_words(
    sqlite_url, make_settings
):
    item = from_langchain(example.convert_currency, ExternalToolPolicy(kind="read"))
    settings = make_settings(sqlite_url)

    with pytest.raises(
        InvalidToolArguments, match=r"^invalid arguments for convert_currency: amount: Field required\."
    ):
        _run_tool(settings, item, {})
    with pytest.raises(InvalidToolArguments, match=r"amount: 'ten' is not of type 'number'; currency: 3 is not of"):
        _run_tool(settings, item, {"amount": "ten", "currency": 3})
