"""Context checkpointing: long conversations stay inside the window and keep their facts.

Real agent, real checkpointer, real databases; the scripted model stands in for the provider. Its
rules script answers the summariser's prompt (it contains "Summary:") and every other turn.
"""

from __future__ import annotations

import json

import pytest
from conftest import run
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from graph.agent import Agent
from memory.tables import ContextCheckpoint
from nodes.summarizer import cut_point, extract_facts

ROUTE = "scripted/demo"
WINDOW = 1200
SMALL_WINDOW = {"scripted/demo": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "context_window": WINDOW}}


LONG_QUESTION = "What is new in the world of gardening this spring, in a few words, for a beginner like me?"
# Checkpoint every two turns, keeping only the last two messages, once 2 x 16 tokens can be replaced.
EVERY_FEW_TURNS = {"every_turns": 2, "keep_recent": 2, "summary_max_tokens": 16}


def settings_for(make_settings, database_url, script, **overrides):
    """A small window, no semantic cache; the turns here are alike on purpose, so no rephrasing trigger, and
    a long conversation, asked as fast as the machine goes, spends more than a session's default token budget
    and a user's default requests per minute."""
    return make_settings(
        database_url,
        script=script,
        models=SMALL_WINDOW,
        cache={"enabled": False},
        triggers={"rephrase_count": 1_000_000},
        limits={"session": {"tokens": 10_000_000}, "day": {"tokens": 10_000_000}},
        rate_limits={"user": {"requests": 1_000_000}, "tenant": {"requests": 1_000_000}},
        **overrides,
    )


def rules(write_script, name="rules.jsonl"):
    return write_script(
        {"repeat": True, "expect": "Summary:", "text": "The user chatted about the weather and their plans."},
        {"repeat": True, "after": "user", "text": "Noted, thank you."},
        name=name,
    )


def _chat(settings, turns: list[str], thread: str = "long"):
    async def scenario():
        async with Agent.open(settings) as agent:
            results = [await agent.ask(text, route=ROUTE, thread_id=thread) for text in turns]
            return results, agent.services

    return run(scenario())


def test_a_200_turn_conversation_stays_in_the_window_and_a_fact_from_turn_3_is_used_at_turn_150(
    database_url, make_settings, write_script
):
    filler = "Tell me something nice about the weather today, and about the plans I have for the weekend."
    turns = [f"Turn {n}: {filler}" for n in range(1, 150)]
    turns[2] = "Turn 3: for the record, my order number is 1234 and my email is ada@example.com."
    settings = settings_for(make_settings, database_url, rules(write_script))

    results, services = _chat(settings, turns)

    assert all(result.status == "answered" for result in results)
    # Turn 150 in a new process: its only reply requires the fact from turn 3 in the prompt.
    final = settings_for(
        make_settings,
        database_url,
        write_script({"expect": "order: 1234", "text": "Your order is 1234."}, name="final.jsonl"),
    )
    (answer,), _ = _chat(final, ["Turn 150: what was my order number again?"])
    assert answer.answer == "Your order is 1234."
    rest, _ = _chat(settings, [f"Turn {n}: {filler}" for n in range(151, 201)])
    assert all(result.status == "answered" for result in rest)
    calls = [call for result in [*results, answer, *rest] for call in services.runs.model_calls(result.run_id)]
    assert max(call.input_tokens for call in calls) <= WINDOW
    checkpoints = services.context.for_thread("long")
    assert len(checkpoints) >= 5
    assert all(row.tokens_after < row.tokens_before for row in checkpoints)
    assert checkpoints[-1].facts["email"] == ["ada@example.com"]
    # The raw history stays retrievable for audit: every replaced user turn is in some checkpoint's raw.
    replaced = {m["content"] for row in checkpoints for m in row.raw if m["role"] == "user"}
    assert turns[2] in replaced and turns[0] in replaced


def test_a_checkpoint_is_a_span_and_a_row_with_tokens_before_and_after(sqlite_url, make_settings, write_script):
    settings = settings_for(make_settings, sqlite_url, rules(write_script), context=EVERY_FEW_TURNS)

    results, services = _chat(settings, [f"Question {n}: {LONG_QUESTION}" for n in range(1, 6)])

    services.telemetry.flush()
    spans = [span for result in results for span in services.runs.spans(result.run_id) if span.name == "node summarize"]
    fired = [span for span in spans if "firebreak.context.checkpoint_id" in span.attributes]
    assert fired, "every_turns = 2 must have produced a checkpoint within five turns"
    (row, *_) = services.context.for_thread("long")
    attributes = fired[0].attributes
    assert attributes["firebreak.context.checkpoint_id"] == row.id
    assert attributes["firebreak.context.tokens_before"] == row.tokens_before > row.tokens_after
    assert row.summary == "The user chatted about the weather and their plans." and row.summarized_by == ROUTE


def test_running_the_same_checkpoint_again_reuses_its_row(sqlite_url, make_settings, write_script):
    settings = settings_for(make_settings, sqlite_url, rules(write_script), context=EVERY_FEW_TURNS)
    _, services = _chat(settings, [f"Question {n}: {LONG_QUESTION}" for n in range(1, 4)])
    (row,) = services.context.for_thread("long")

    again, created = services.context.add_once(ContextCheckpoint(**row.model_dump(exclude={"id"})))

    assert (again.id, created) == (row.id, False)
    assert len(services.context.for_thread("long")) == 1


def test_a_failing_summariser_leaves_a_note_and_keeps_the_facts(sqlite_url, make_settings, write_script):
    script = write_script(
        {"repeat": True, "expect": "Summary:", "error": "bad_request"},
        {"repeat": True, "after": "user", "text": "Noted."},
    )
    settings = settings_for(make_settings, sqlite_url, script, context=EVERY_FEW_TURNS)

    results, services = _chat(settings, [f"My order number is 1234. {LONG_QUESTION}", LONG_QUESTION, "Three?"])

    assert [result.status for result in results] == ["answered"] * 3
    (row,) = services.context.for_thread("long")
    assert row.summarized_by == "fallback" and "could not be summarised" in row.summary
    assert row.facts["order"] == ["1234"]


# --- where the cut falls ---------------------------------------------------------------------------------------


def _call(call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"id": call_id, "name": "sql_lookup", "args": {"order_id": 1}}])


def test_a_cut_never_separates_a_tool_call_from_its_results():
    messages = [
        HumanMessage("Where are orders 1 and 2?"),
        _call("a"),
        ToolMessage("order 1: shipped", tool_call_id="a"),
        _call("b"),
        ToolMessage("order 2: pending", tool_call_id="b"),
        AIMessage("Order 1 shipped; order 2 is pending."),
        HumanMessage("Thanks. And order 3?"),
    ]

    cut = cut_point(messages, keep_recent=3)  # a naive cut would keep only the result of call "b"

    assert cut == 3 and isinstance(messages[cut], AIMessage) and messages[cut].tool_calls


def test_a_cut_never_replaces_the_current_question():
    messages = [HumanMessage("Old question"), AIMessage("Old answer"), HumanMessage("Now this"), _call("a")]
    messages.append(ToolMessage("result", tool_call_id="a"))

    assert cut_point(messages, keep_recent=1) == 2


def test_only_a_previous_summary_is_not_worth_a_checkpoint():
    summary = SystemMessage("Summary…", id="context-summary-1")

    assert cut_point([summary, HumanMessage("Question")], keep_recent=1) == 0


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("my order number is 1234", "order", "1234"),
        ("ticket #SUP-778 is open", "ticket", "SUP-778"),
        ("write to ada@example.com", "email", "ada@example.com"),
        ("it cost $1,250.50 in the end", "amount", "$1,250.50"),
    ],
)
def test_key_facts_are_found_in_the_replaced_messages(text, kind, value):
    assert extract_facts([{"role": "user", "content": text}], {})[kind] == [value]


def test_facts_carry_forward_and_the_newest_value_comes_last():
    known = {"order": ["1234", "77"]}

    facts = extract_facts([{"role": "tool", "content": json.dumps({"order": "order 1234 shipped"})}], known)

    assert facts["order"] == ["77", "1234"]
