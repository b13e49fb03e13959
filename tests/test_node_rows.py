"""A node's run events and audit rows are committed together when the node ends, even when it fails.

These rows are the run's durable history. Written at the node's end, just before LangGraph's checkpoint,
a crash loses exactly the node that a resume runs again; written one commit per row, a resumed node wrote
them twice.
"""

from __future__ import annotations

import contextvars
import threading

import pytest
from conftest import run
from sqlalchemy import event

from app.services import build_services
from core.config import Settings, load_settings
from graph.agent import Agent
from graph.builder import default_builder
from memory import node_rows
from memory.breakers import BreakerStore, WindowTotals
from memory.runs import RunStore
from memory.tables import ModelCall, Run

ROUTE = "scripted/demo"


@pytest.fixture
def runs(sqlite_url: str) -> RunStore:
    store = build_services(load_settings(database_url=sqlite_url)).runs
    store.start(
        Run(id="run-1", thread_id="th", tenant_id="t", user_id="u", route=ROUTE, status="running", question="?")
    )
    return store


def _call(run_id: str) -> ModelCall:
    return ModelCall(
        run_id=run_id,
        tenant_id="t",
        task_class="answer",
        route=ROUTE,
        model=ROUTE,
        fallback_position=0,
        status="ok",
        input_tokens=1,
        output_tokens=1,
        cost_usd=0.0,
        latency_ms=1.0,
    )


def test_rows_written_in_a_block_are_stored_only_when_it_ends(runs: RunStore) -> None:
    with node_rows.together():
        runs.add_event("run-1", "decide", "decision", {"n": 1})
        runs.record_model_call(_call("run-1"))
        assert runs.events("run-1") == [] and runs.model_calls("run-1") == []

    assert [(e.seq, e.kind) for e in runs.events("run-1")] == [(1, "decision")]
    assert len(runs.model_calls("run-1")) == 1


def test_a_block_that_raises_still_stores_its_rows(runs: RunStore) -> None:
    with pytest.raises(RuntimeError), node_rows.together():
        runs.add_event("run-1", "act", "tool_error", {"why": "boom"})
        raise RuntimeError("the node failed")

    # Kept: the event that says why the node failed.
    assert [e.kind for e in runs.events("run-1")] == ["tool_error"]


def test_a_blocks_rows_commit_once_and_number_in_order(runs: RunStore) -> None:
    commits = []
    event.listen(runs.engine, "commit", lambda _connection: commits.append(1))
    with node_rows.together():
        for n in range(3):
            runs.add_event("run-1", "decide", "decision", {"n": n})
        runs.record_model_call(_call("run-1"))

    assert len(commits) == 1
    assert [(e.seq, e.payload["n"]) for e in runs.events("run-1")] == [(1, 0), (2, 1), (3, 2)]


def test_a_nested_block_writes_its_rows_when_it_ends(runs: RunStore) -> None:
    """A node that runs another agent's run: that run's nodes may read their rows back (the cache prices its
    answer from the run's audit rows) before the outer node ends."""
    with node_rows.together():
        runs.add_event("run-1", "team", "started", {})
        with node_rows.together():
            runs.record_model_call(_call("run-1"))
        assert len(runs.model_calls("run-1")) == 1
        assert runs.events("run-1") == []

    assert [e.kind for e in runs.events("run-1")] == ["started"]


def test_a_row_arriving_after_its_block_ended_is_written_at_once(runs: RunStore) -> None:
    with node_rows.together():
        left_behind = contextvars.copy_context()  # what a task the node started, and abandoned, runs in
    left_behind.run(runs.add_event, "run-1", "act", "late", {})

    assert [e.kind for e in runs.events("run-1")] == ["late"]


def test_every_run_event_and_audit_row_of_a_run_is_stored(database_url: str, make_settings, write_script) -> None:
    script = write_script(
        {"tool_calls": [{"name": "knowledge_search", "arguments": {"query": "refund policy"}}]},
        {"text": "Refunds are possible within 30 days."},
    )

    async def ask(settings: Settings) -> tuple[str, RunStore]:
        async with Agent.open(settings) as agent:
            result = await agent.ask("Can I get a refund?", route=ROUTE)
            agent.settle_script(result)
            return result.run_id, agent.services.runs

    run_id, stored = run(ask(make_settings(database_url, script=script)))

    assert [(e.node, e.kind) for e in stored.events(run_id)] == [
        ("decide", "decision"),
        ("act", "tool_result"),
        ("decide", "decision"),
        ("respond", "answer"),
    ]
    assert [call.status for call in stored.model_calls(run_id)] == ["ok", "ok"]


def test_routers_run_on_the_event_loop_thread(database_url: str, make_settings, write_script) -> None:
    """LangGraph would run a plain-function router in its thread pool: a thread hop for every edge taken."""
    seen: set[str] = set()
    builder = default_builder()
    original = builder.edges["decide"]
    assert hasattr(original, "router")

    def watching(state):  # type: ignore[no-untyped-def]
        seen.add(threading.current_thread().name)
        return original.router(state)

    builder.add_branch("decide", watching, original.targets)
    script = write_script({"text": "Hello."})

    async def ask(settings: Settings) -> str:
        async with Agent.open(settings, builder=builder) as agent:
            result = await agent.ask("Hi", route=ROUTE)
            agent.settle_script(result)
            return threading.current_thread().name

    loop_thread = run(ask(make_settings(database_url, script=script)))

    assert seen == {loop_thread}


def test_a_successful_calls_breaker_count_waits_for_the_node_and_a_bad_calls_does_not(sqlite_url: str) -> None:
    """A success can open nothing; a failure may trip the window read right after it, so it is counted at once."""
    store = BreakerStore(build_services(load_settings(database_url=sqlite_url)).engine)
    with node_rows.together():
        store.count("model:x", 100, failure=False, slow=False)
        assert store.window("model:x", 0, 200) == WindowTotals(calls=0, failures=0, slow=0)
        store.count("model:x", 100, failure=True, slow=False)
        assert store.window("model:x", 0, 200) == WindowTotals(calls=1, failures=1, slow=0)

    assert store.window("model:x", 0, 200) == WindowTotals(calls=2, failures=1, slow=0)
