"""The agent graph end to end on the scripted model, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from conftest import run
from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlmodel import Session, select

from core.errors import ScriptError, ThreadBusy
from examples.support_desk.tables import DemoOrder, OutboxEmail
from graph.agent import Agent, RunResult
from memory.checkpointer import open_checkpointer
from memory.tables import ModelCall, Run

ROUTE = "scripted/demo"


async def _ask(settings, question: str, **kwargs) -> tuple[RunResult, Agent]:
    async with Agent.open(settings) as agent:
        result = await agent.ask(question, route=ROUTE, **kwargs)
        return agent.settle_script(result), agent


def test_two_tool_conversation_is_answered_and_recorded(database_url, make_settings, write_script):
    script = write_script(
        {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 42}}]},
        {"tool_calls": [{"name": "knowledge_search", "arguments": {"query": "refund policy"}}]},
        {"expect": "USB-C dock", "text": "Order 42 was delivered; refunds are possible within 30 days."},
    )
    result, agent = run(_ask(make_settings(database_url, script=script), "Where is order 42, can I get a refund?"))

    assert result.status == "answered"
    assert result.answer == "Order 42 was delivered; refunds are possible within 30 days."
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    runs = agent.services.runs
    kinds = [(event.node, event.kind) for event in runs.events(result.run_id)]
    assert kinds == [
        ("decide", "decision"),
        ("act", "tool_result"),
        ("decide", "decision"),
        ("act", "tool_result"),
        ("decide", "decision"),
        ("respond", "answer"),
    ]
    calls = runs.model_calls(result.run_id)
    assert [call.status for call in calls] == ["ok", "ok", "ok"]
    assert sum(call.input_tokens for call in calls) == result.usage.input_tokens


def test_trace_has_agent_chat_and_tool_spans(database_url, make_settings, write_script):
    script = write_script(
        {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 1}}]},
        {"text": "Order 1 has shipped."},
    )
    result, agent = run(_ask(make_settings(database_url, script=script), "Where is order 1?", tenant_id="acme"))

    spans = agent.services.runs.spans(result.run_id)
    names = [span.name for span in spans]
    assert names.count("invoke_agent firebreak") == 1
    assert names.count(f"chat {ROUTE}") == 2
    assert names.count("execute_tool sql_lookup") == 1
    assert {"node decide", "node act", "node observe", "node respond"} <= set(names)
    root = next(span for span in spans if span.name == "invoke_agent firebreak")
    assert root.attributes["firebreak.tenant_id"] == "acme"
    assert root.attributes["gen_ai.conversation.id"] == result.thread_id
    for chat in (span for span in spans if span.name.startswith("chat ")):
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0
        assert chat.attributes["gen_ai.usage.output_tokens"] > 0
    assert all(span.trace_id == result.trace_id for span in spans)


def test_invalid_tool_arguments_are_explained_to_the_model_which_corrects_them(
    database_url, make_settings, write_script
):
    script = write_script(
        {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": "forty-two"}}]},
        {
            "expect": "order_id: Input should be a valid integer",
            "tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 42}}],
        },
        {"text": "Order 42 was delivered."},
    )
    result, agent = run(_ask(make_settings(database_url, script=script), "Where is order 42?"))

    assert result.status == "answered"
    tool_results = [e.payload for e in agent.services.runs.events(result.run_id) if e.kind == "tool_result"]
    assert [(r["status"], r["error_type"]) for r in tool_results] == [
        ("error", "InvalidToolArguments"),
        ("success", None),
    ]


def test_unknown_tool_and_malformed_json_are_answered_not_crashed(database_url, make_settings, write_script):
    script = write_script(
        {"tool_calls": [{"name": "delete_everything", "arguments": {}}]},
        {
            "expect": "unknown tool 'delete_everything'",
            "tool_calls": [{"name": "sql_lookup", "arguments": '{"order_id": 4'}],
        },
        {"expect": "not valid JSON", "text": "I could not look that up."},
    )
    result, agent = run(_ask(make_settings(database_url, script=script), "Do something"))

    assert result.status == "answered"
    errors = [e.payload["error_type"] for e in agent.services.runs.events(result.run_id) if e.kind == "tool_result"]
    assert errors == ["UnknownTool", "InvalidToolArguments"]


def test_write_tools_change_the_database(database_url, make_settings, write_script):
    script = write_script(
        {
            "tool_calls": [
                {"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}},
                {
                    "name": "send_email",
                    "arguments": {
                        "to": "alan@example.com",
                        "subject": "Cancelled",
                        "body": "Your order 2 is cancelled.",
                    },
                },
            ]
        },
        {"text": "0.95"},  # the self-critique of each write
        {"text": "0.95"},
        {"text": "Cancelled order 2 and emailed Alan."},
    )
    result, agent = run(_ask(make_settings(database_url, script=script), "Cancel order 2 and tell Alan"))

    assert result.status == "answered"
    with Session(agent.services.engine) as session:
        assert session.get(DemoOrder, 2).status == "cancelled"
        emails = session.exec(select(OutboxEmail).where(OutboxEmail.run_id == result.run_id)).all()
        assert [email.to for email in emails] == ["alan@example.com"]


def test_step_limit_ends_the_loop_with_an_explanation(database_url, make_settings, write_script):
    looping = {"tool_calls": [{"name": "knowledge_search", "arguments": {"query": "shipping"}}]}
    script = write_script(*[looping] * 2)
    settings = make_settings(database_url, script=script, agent={"max_steps": 2})
    result, _ = run(_ask(settings, "Loop forever"))

    assert result.status == "step_limit"
    assert "stopped after 2 tool steps" in result.answer


def test_over_consumed_script_fails_the_run(database_url, make_settings, write_script):
    script = write_script({"tool_calls": [{"name": "knowledge_search", "arguments": {"query": "warranty"}}]})
    result, _ = run(_ask(make_settings(database_url, script=script), "What is the warranty?"))

    assert result.status == "failed"
    assert "over-consumed" in result.error


def test_under_consumed_script_fails_the_run(database_url, make_settings, write_script):
    script = write_script({"text": "Two years."}, {"text": "never used"})
    result, agent = run(_ask(make_settings(database_url, script=script), "What is the warranty?"))

    assert result.status == "failed"
    assert "under-consumed" in result.error
    assert agent.services.runs.get(result.run_id).status == "failed"


def test_model_outage_is_retried_then_fails_the_run_with_a_clear_error_and_keeps_the_audit_rows(
    database_url, make_settings, write_script
):
    script = write_script({"error": "server"}, {"error": "server"}, {"error": "server"})
    result, agent = run(_ask(make_settings(database_url, script=script), "Hello?"))

    assert result.status == "failed"
    assert "scripted server error" in result.error
    with Session(agent.services.engine) as session:
        rows = session.exec(select(ModelCall).where(ModelCall.run_id == result.run_id)).all()
    assert [(row.status, row.error_kind) for row in rows] == [("error", "server")] * 3
    assert agent.services.runs.get(result.run_id).question == "Hello?"


def test_conversation_continues_on_the_same_thread(database_url, make_settings, write_script):
    first = write_script({"text": "Noted: your name is Ada."}, name="first.jsonl")
    second = write_script({"expect": "your name is Ada", "text": "Your name is Ada."}, name="second.jsonl")
    one, _ = run(_ask(make_settings(database_url, script=first), "My name is Ada."))
    two, _ = run(_ask(make_settings(database_url, script=second), "What is my name?", thread_id=one.thread_id))

    assert two.status == "answered" and two.thread_id == one.thread_id


@pytest.mark.parametrize("question", ["", "   ", "x" * 20_001])
def test_empty_or_oversized_questions_are_refused_before_anything_runs(database_url, make_settings, question):
    from core.errors import FirebreakError

    async def attempt() -> None:
        async with Agent.open(make_settings(database_url)) as agent:
            with pytest.raises(FirebreakError):
                await agent.ask(question)
            assert agent.services.runs.recent() == []

    run(attempt())


def test_script_misuse_is_a_script_error_type():
    assert issubclass(ScriptError, AssertionError)


def test_a_call_that_keeps_failing_stops_the_run_instead_of_retrying_forever(database_url, make_settings, write_script):
    dead = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 999, "status": "shipped"}}]}
    sure = {"text": "0.95"}  # the self-critique of each write
    script = write_script(dead, sure, dead, sure, dead, sure)
    result, agent = run(_ask(make_settings(database_url, script=script), "Ship order 999"))

    assert result.status == "repeated_failure"
    assert 'update_order({"order_id": 999, "status": "shipped"}) kept failing' in result.answer
    stops = [e.payload for e in agent.services.runs.events(result.run_id) if e.kind == "stopped"]
    assert stops == [{"reason": "repeated_failure", "call": 'update_order({"order_id": 999, "status": "shipped"})'}]


def test_the_wall_clock_ends_a_run_that_chains_slow_tools(database_url, make_settings, write_script):
    # More slow steps than the wall clock allows; the unused replies are expected, so the script is not settled.
    # Each asks something new: a repeated read would be served from the read-tool cache, without the latency.
    slow = [{"tool_calls": [{"name": "knowledge_search", "arguments": {"query": f"shipping {n}"}}]} for n in range(10)]
    script = write_script(*slow)
    settings = make_settings(
        database_url, script=script, agent={"run_wall_clock_s": 1.5}, faults={"knowledge_search": {"latency_ms": 400}}
    )

    async def ask():
        async with Agent.open(settings) as agent:
            return await agent.ask("Tell me everything about shipping", route=ROUTE), agent

    result, agent = run(ask())
    assert result.status == "timed_out"
    assert "wall clock" in result.error
    tools = [e.payload for e in agent.services.runs.events(result.run_id) if e.kind == "tool_result"]
    assert 1 <= len(tools) < 10


def test_resuming_a_run_that_died_before_its_first_checkpoint_starts_it_from_its_question(
    database_url, make_settings, write_script
):
    settings = make_settings(database_url, script=write_script({"expect": "Where is order 42?", "text": "Delivered."}))

    async def scenario():
        async with Agent.open(settings) as agent:
            agent.services.runs.start(
                Run(
                    id="run-died-early",
                    thread_id="t-early",
                    tenant_id="acme",
                    user_id="u",
                    route=ROUTE,
                    status="running",
                    question="Where is order 42?",
                )
            )
            return agent.settle_script(await agent.resume("run-died-early"))

    result = run(scenario())
    assert (result.run_id, result.status, result.answer) == ("run-died-early", "answered", "Delivered.")


def test_resuming_a_run_whose_graph_had_finished_records_it_without_running_anything_again(
    database_url, make_settings, write_script
):
    settings = make_settings(database_url, script=write_script({"text": "Done once."}))

    async def scenario():
        async with Agent.open(settings) as agent:
            first = await agent.ask("Do it", route=ROUTE)
            again = await agent.resume(first.run_id)  # a second model call would over-consume the script
            return agent.settle_script(again), agent

    result, agent = run(scenario())
    assert (result.status, result.answer) == ("answered", "Done once.")
    assert len(agent.services.runs.model_calls(result.run_id)) == 1


class _DiesWhileSavingStep(BaseCheckpointSaver):
    """The real checkpointer, except that saving the checkpoint of ``step`` fails once: the database (or the
    worker) died after the step's writes were saved and before the checkpoint that follows them."""

    def __init__(self, saver: BaseCheckpointSaver, step: int) -> None:
        super().__init__(serde=saver.serde)
        self.saver, self.step, self.died = saver, step, False

    async def aget_tuple(self, config):
        return await self.saver.aget_tuple(config)

    def alist(self, config, **kwargs):
        return self.saver.alist(config, **kwargs)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        return await self.saver.aput_writes(config, writes, task_id, task_path)

    def get_next_version(self, current, channel):
        return self.saver.get_next_version(current, channel)

    async def aput(self, config, checkpoint, metadata, new_versions):
        if metadata.get("step") == self.step and not self.died:
            self.died = True
            raise OSError("the database went away")
        return await self.saver.aput(config, checkpoint, metadata, new_versions)


def test_resuming_a_run_that_died_between_a_steps_writes_and_its_checkpoint_goes_on_from_those_writes(
    database_url, make_settings, write_script
):
    settings = make_settings(database_url, script=write_script({"expect": "Where is order 42?", "text": "Delivered."}))

    async def scenario():
        async with open_checkpointer(database_url) as saver:
            dying = _DiesWhileSavingStep(saver, step=3)
            async with Agent.open(settings, checkpointer=dying) as agent:
                with pytest.raises(OSError):
                    await agent.ask("Where is order 42?", route=ROUTE, run_id="run-died-mid-step", thread_id="t-mid")
                return agent.settle_script(await agent.resume("run-died-mid-step"))

    result = run(scenario())
    # Kept: the steps before the failure are not run again, and the run finishes with its answer
    # instead of being recorded as done with none.
    assert (result.status, result.answer) == ("answered", "Delivered.")


def test_two_questions_at_once_on_one_thread_run_one_at_a_time_and_the_other_is_refused_clearly(
    database_url, make_settings, write_script
):
    # langgraph issue 8115: concurrent writers to one thread raced and dropped checkpoint data.
    settings = make_settings(database_url, script=write_script({"repeat": True, "delay_s": 0.5, "text": "Done."}))

    async def scenario():
        async with Agent.open(settings) as agent:
            outcomes = await asyncio.gather(
                agent.ask("First question", route=ROUTE, thread_id="t-race"),
                agent.ask("Second question", route=ROUTE, thread_id="t-race"),
                return_exceptions=True,
            )
            state = await agent.graph.aget_state({"configurable": {"thread_id": "t-race"}})
            after = await agent.ask("Third question", route=ROUTE, thread_id="t-race")
            return outcomes, state, after, agent.services

    outcomes, state, after, services = run(scenario())
    answered = [o for o in outcomes if isinstance(o, RunResult)]
    refused = [o for o in outcomes if isinstance(o, ThreadBusy)]
    assert len(answered) == 1 and len(refused) == 1
    assert answered[0].run_id in str(refused[0]) and "busy" in str(refused[0])
    # Kept: the thread holds exactly the answered exchange; the refused question was never recorded.
    winner = services.runs.get(answered[0].run_id)
    assert [m.text for m in state.values["messages"]] == [winner.question, "Done."]
    assert len(services.runs.recent(thread_id="t-race")) == 2  # the answered one, and the third
    assert after.status == "answered"  # the thread is free again once its run is done


def test_a_thread_held_by_a_run_that_died_is_free_once_its_lease_runs_out(database_url, make_settings, write_script):
    settings = make_settings(database_url, script=write_script({"text": "Done."}))

    async def scenario():
        async with Agent.open(settings) as agent:
            leases = agent.services.threads
            # A run that took the thread and then died (its process killed) holds it until its lease ends.
            assert leases.acquire("t-dead", "run-died", now=0.0, ttl_s=60.0) is None
            return await agent.ask("Still there?", route=ROUTE, thread_id="t-dead")

    assert run(scenario()).answer == "Done."
