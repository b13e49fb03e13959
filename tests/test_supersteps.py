"""Supersteps: a same-step node runs in the superstep of the node that leads to it, with no checkpoint between.

What a checkpoint keeps is unchanged: every node still runs, writes its rows and has its span; a resume starts
again at the first node of the superstep it stopped in.
"""

from __future__ import annotations

import pytest
from conftest import run
from langgraph.graph import END
from sqlmodel import Session, select

from core.errors import ConfigError
from core.status import RunStatus
from examples.support_desk.tables import OutboxEmail
from graph.agent import Agent
from graph.builder import GraphBuilder, default_builder
from nodes.respond import respond

ROUTE = "scripted/demo"
SEARCH = {"tool_calls": [{"name": "knowledge_search", "arguments": {"query": "refund policy"}}]}
EMAIL = {"to": "ada@example.com", "subject": "Your order", "body": "It has shipped."}


async def _checkpoints(agent: Agent, thread_id: str) -> list[tuple[str, ...]]:
    """The node each checkpoint of the thread leads to, oldest first."""
    history = [
        snapshot async for snapshot in agent.graph.aget_state_history({"configurable": {"thread_id": thread_id}})
    ]
    return [tuple(snapshot.next) for snapshot in reversed(history)]


def _ask(settings, question: str, builder: GraphBuilder | None = None):
    async def ask():
        async with Agent.open(settings, builder=builder) as agent:
            result = agent.settle_script(await agent.ask(question, route=ROUTE, thread_id="t"))
            agent.services.telemetry.flush()
            spans = [span.name for span in agent.services.runs.spans(result.run_id)]
            return result, await _checkpoints(agent, "t"), spans

    return run(ask())


def test_a_tool_step_of_the_built_in_graph_takes_three_supersteps(database_url, make_settings, write_script):
    script = write_script(SEARCH, {"text": "Refunds are possible within 30 days."})

    result, checkpoints, spans = _ask(make_settings(database_url, script=script), "Can I get a refund?")

    assert result.status == RunStatus.ANSWERED
    assert checkpoints == [
        ("__start__",),
        ("screen_input",),  # + screen_triggers, cache_lookup
        ("summarize",),  # + decide, screen_actions
        ("confidence_gate",),
        ("act",),  # + observe
        ("summarize",),
        ("confidence_gate",),
        ("cache_store",),  # + respond
        (),
    ]
    # Every node still ran, each in its own span.
    for node in ("screen_triggers", "cache_lookup", "decide", "screen_actions", "observe", "respond"):
        assert f"node {node}" in spans


def test_a_node_inserted_without_same_step_gets_its_own_superstep(sqlite_url, make_settings, write_script):
    seen = []

    def audit(state):
        seen.append(state["messages"][-1].text)
        return {}

    builder = default_builder().insert("audit", audit, after="decide", before="screen_actions")
    script = write_script({"text": "Hello."})

    result, checkpoints, _ = _ask(make_settings(sqlite_url, script=script), "Hi", builder)

    assert result.answer == "Hello." and seen == ["Hello."]
    assert checkpoints[2:5] == [("summarize",), ("audit",), ("confidence_gate",)]  # screen_actions joins audit's


def test_a_same_step_node_sees_what_the_node_before_it_wrote(sqlite_url, make_settings, write_script):
    seen = []

    def after_decide(state):
        seen.append([message.type for message in state["messages"]])
        return {"stop_detail": "seen"}

    builder = default_builder().insert("peek", after_decide, after="decide", before="screen_actions", same_step=True)
    script = write_script({"text": "Hello."})

    result, checkpoints, spans = _ask(make_settings(sqlite_url, script=script), "Hi", builder)

    assert seen == [["human", "ai"]]  # the decision decide just made, before any checkpoint holds it
    assert ("peek",) not in checkpoints and "node peek" in spans
    assert result.answer == "Hello."


def test_a_node_that_returns_nothing_changes_nothing(sqlite_url, make_settings, write_script):
    """As in plain LangGraph, a node may return None (a node that only logs or audits)."""
    seen = []

    def log(state):
        seen.append(state["messages"][-1].text)

    for same_step in (False, True):
        builder = default_builder().insert("log", log, after="decide", before="screen_actions", same_step=same_step)
        result, _, _ = _ask(make_settings(sqlite_url, script=write_script({"text": "Hello."})), "Hi", builder)
        assert result.answer == "Hello."

    assert seen == ["Hello.", "Hello."]  # it ran, after decide, both ways


def test_a_node_that_returns_a_key_the_state_lacks_fails_the_run_naming_it(sqlite_url, make_settings, write_script):
    """LangGraph would drop the key without a word; the run fails instead, naming the node, the key and the state's
    keys. Kept: the run row, failed with that error, and the node's span."""

    def tag(state):
        return {"answer": state["answer"], "tags": ["greeting"]}

    for same_step in (False, True):
        builder = default_builder().insert("tag", tag, after="respond", before=END, same_step=same_step)
        result, _, spans = _ask(make_settings(sqlite_url, script=write_script({"text": "Hello."})), "Hi", builder)

        assert result.status == RunStatus.FAILED
        assert result.error.startswith("node tag returned ['tags'], which the state does not have; a node returns")
        assert "answer, breach, cache" in result.error and "node tag" in spans


def test_same_step_nodes_in_a_loop_run_once_per_superstep(sqlite_url, make_settings, write_script):
    """A loop of same-step nodes still ends its superstep when it comes back round: each round is checkpointed
    and counts against LangGraph's recursion limit."""

    def tick(state):
        return {"steps": state.get("steps", 0) + 1}

    builder = GraphBuilder()
    builder.add_node("tick", tick, same_step=True).add_node("tock", lambda state: {}, same_step=True)
    builder.add_node("respond", respond, same_step=True)
    builder.add_edge("__start__", "tick").add_edge("tick", "tock").add_edge("respond", "__end__")
    builder.add_branch(
        "tock", lambda state: "again" if state["steps"] < 3 else "done", {"again": "tick", "done": "respond"}
    )

    result, checkpoints, spans = _ask(make_settings(sqlite_url, script=write_script()), "Count", builder)

    assert result.status == RunStatus.ANSWERED
    assert checkpoints == [("__start__",), ("tick",), ("tick",), ("tick",), ()]
    assert spans.count("node tick") == spans.count("node tock") == 3


def test_the_drawn_graph_has_the_edges_as_built():
    """LangGraph Studio and ``get_graph`` draw the builder's edges, same-step nodes included."""
    drawn = default_builder().compile().get_graph()

    edges = {(edge.source, edge.target) for edge in drawn.edges}
    assert {("decide", "screen_actions"), ("screen_actions", "confidence_gate"), ("act", "observe")} <= edges
    assert ("__start__", "screen_input") in edges and ("respond", "__end__") in edges


def test_a_failure_in_a_same_step_node_resumes_at_its_superstep_without_repeating_the_side_effect(
    sqlite_url, make_settings, write_script
):
    """observe's superstep starts at act: the resume runs act again, and the email goes out once."""
    failures = []

    def flaky(state):
        if not failures:
            failures.append("once")
            raise RuntimeError("the worker lost its footing after the tool ran")
        return {}

    builder = default_builder().insert("flaky", flaky, after="act", before="observe", same_step=True)
    script = write_script(
        {"tool_calls": [{"name": "send_email", "arguments": EMAIL}]}, {"text": "0.95"}, {"text": "Sent."}
    )

    async def scenario():
        async with Agent.open(make_settings(sqlite_url, script=script), builder=builder) as agent:
            with pytest.raises(RuntimeError, match="lost its footing"):
                await agent.ask("Email Ada", route=ROUTE, thread_id="t")
            (failed,) = agent.services.runs.recent(thread_id="t")
            resumed = agent.settle_script(await agent.resume(failed.id))
            with Session(agent.services.engine) as session:
                return failed, resumed, len(session.exec(select(OutboxEmail)).all())

    failed, resumed, emails = run(scenario())

    assert failed.status == RunStatus.FAILED
    assert (resumed.run_id, resumed.status, resumed.answer) == (failed.id, RunStatus.ANSWERED, "Sent.")
    assert emails == 1


def test_a_graph_with_no_entry_an_unknown_target_or_a_dead_end_does_not_compile():
    def noop(state):
        return {}

    no_entry = GraphBuilder().add_node("a", noop).add_edge("a", "__end__")
    unknown = GraphBuilder().add_node("a", noop).add_edge("__start__", "a").add_edge("a", "b")
    dead_end = GraphBuilder().add_node("a", noop).add_edge("__start__", "a")

    with pytest.raises(ConfigError, match="starts at one node"):
        no_entry.compile()
    with pytest.raises(ConfigError, match=r"unknown nodes: \['b'\]"):
        unknown.compile()
    with pytest.raises(ConfigError, match=r"without an edge out: \['a'\]"):
        dead_end.compile()
