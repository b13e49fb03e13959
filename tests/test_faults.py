"""Fault tests (issue 9): a dropped database connection, a provider that sends broken or empty replies, a huge
tool result, clocks that jump, workers killed again and again, a worker whose database drops it mid-statement.

Each test drives real components (the graph, the gateway, SQLite and PostgreSQL, LangGraph's checkpointers,
the queue) with fakes only at the edges, injected: the scripted model, a hand-moved clock
(``evals.scenario.SimulatedTime``), tools registered for the test. Each says what is kept: nothing lost,
nothing done twice, a clear outcome where a person must act.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from conftest import POSTGRES_URL, run
from sqlmodel import Session, func, select

from app.limits.ledger import Scope
from app.resilience.breaker import CircuitBreakers
from app.services import Services, build_services, prepare_database
from app.tools.registry import ToolContext, ToolRegistry, tool
from app.tools.runner import run_tool
from core.errors import BudgetExceeded, CircuitOpen
from evals.resilience import email_worker_config
from evals.scenario import SimulatedTime
from examples.support_desk import tools as demo
from examples.support_desk.tables import OutboxEmail
from graph.agent import Agent, RunResult
from graph.worker import Worker, submit
from memory.checkpointer import open_checkpointer
from memory.idempotency import OperationLog
from memory.queue import QueueStore
from memory.tables import DeadLetter, Operation
from memory.threads import ThreadLeases

ROUTE = "scripted/demo"
DAY_S = 86_400.0
EMAIL = {"to": "ada@example.com", "subject": "Order 42", "body": "It has shipped."}
# Every write is pre-approved: these tests are about faults, not the confidence gate (tests/test_containment.py).
UNGATED: dict[str, Any] = {"gate": {"estimator": "fixed", "fixed_default": 1.0}}
HUGE_CHARS = 50 * 1024 * 1024


# -- tools the tests register (the edge of the system: what a backend does) ---------------------------------------


@tool(kind="read", cost_class="db")
def drop_database_connections(ctx: ToolContext) -> str:
    """Terminate every other PostgreSQL connection of this process, as a failover or a server restart would."""
    application = ctx.engine.url.query["application_name"]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        (terminated,) = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application,),
        ).fetchone()
    return f"terminated {terminated} connections"


@tool(kind="read", cost_class="db")
def export_everything() -> str:
    """Export the whole table as text (a tool whose backend answers with 50 MB)."""
    return "x" * HUGE_CHARS


class Backend:
    """A read backend that counts its calls, behind a cached read tool."""

    def __init__(self) -> None:
        self.reads = 0

        @tool(kind="read", cost_class="db", cached=True)
        def exchange_rate(currency: str) -> str:
            """Today's exchange rate of a currency."""
            self.reads += 1
            return f"{currency}: 1.08"

        self.tool = exchange_rate


def _agent(settings: Any, *tools: Any, clock: Callable[[], float] = time.time) -> Any:
    """An agent with the given tools (the configured ones when none) and clock."""
    return Agent.open(
        settings, services=build_services(settings, tools=ToolRegistry(tools) if tools else None, clock=clock)
    )


def _emails(services: Services) -> int:
    with Session(services.engine) as session:
        return int(session.exec(select(func.count()).select_from(OutboxEmail)).one())


def _tool_results(services: Services, run_id: str) -> list[dict[str, Any]]:
    return [event.payload for event in services.runs.events(run_id) if event.kind == "tool_result"]


# -- 1. PostgreSQL drops its connections mid-run ------------------------------------------------------------------


@pytest.fixture
def dropped_postgres_url(postgres_admin: str) -> Iterator[str]:
    """A private schema whose connections carry their own application_name, so that the test terminates its
    own connections and never those of anyone else using the server."""
    schema = f"fb_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    options = quote(f"-csearch_path={schema}")
    try:
        yield f"{postgres_admin}?options={options}&application_name=firebreak-{schema}"
    finally:
        with psycopg.connect(postgres_admin, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_postgres_dropping_every_connection_mid_run_and_between_turns_loses_nothing_and_sends_once(
    dropped_postgres_url, make_settings, write_script
):
    script = write_script(
        {
            "tool_calls": [
                {"name": "send_email", "arguments": EMAIL},
                {"name": "drop_database_connections", "arguments": {}},
            ]
        },
        {"expect": "terminated", "text": "Sent."},
        {"expect": "Email Ada that order 42 shipped", "text": "Yes, the email went out."},
    )
    settings = make_settings(dropped_postgres_url, script=script, **UNGATED)

    async def scenario() -> tuple[RunResult, RunResult, Services, list[dict[str, Any]]]:
        async with _agent(settings, demo.send_email, drop_database_connections) as agent:
            first = await agent.ask("Email Ada that order 42 shipped", route=ROUTE)
            drop_database_connections.fn(ctx=_context(agent.services))  # between turns
            second = await agent.ask("Did it go out?", route=ROUTE, thread_id=first.thread_id)
            return first, agent.settle_script(second), agent.services, _tool_results(agent.services, first.run_id)

    first, second, services, results = run(scenario())

    assert (first.status, first.answer) == ("answered", "Sent."), first.error
    assert results[1]["output"].startswith("terminated") and results[1]["output"] != "terminated 0 connections"
    # Kept: the conversation (the second turn's prompt held the first question) and exactly one email.
    assert (second.status, second.answer) == ("answered", "Yes, the email went out."), second.error
    assert _emails(services) == 1


def _context(services: Services) -> ToolContext:
    return ToolContext(run_id="test", tenant_id="t", user_id="u", engine=services.engine, settings=services.settings)


class LedgerStall:
    """A read tool whose first call locks the budget table from a connection of its own and, as soon as one of
    this process's statements waits for that lock, terminates the waiting statement's connection: the server
    drops a connection in the middle of a statement, at a known point (settling the tool's own budget
    reservation, a store write outside any tool, which no tool error handling may absorb)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.calls = 0
        self.dropped: list[str] = []  # the statements whose connection was terminated
        self.failure: BaseException | None = None
        self.thread: threading.Thread | None = None

        @tool(kind="read", cost_class="db")
        def check_stock(sku: str) -> str:
            """Whether a product is in stock."""
            self.calls += 1
            if self.calls == 1:
                locked = threading.Event()
                self.thread = threading.Thread(target=self._drop_the_waiting_statement, args=(locked,), daemon=True)
                self.thread.start()
                assert locked.wait(10), "the budget table was never locked"
            return f"{sku}: in stock"

        self.tool = check_stock

    def _drop_the_waiting_statement(self, locked: threading.Event) -> None:
        application = psycopg.conninfo.conninfo_to_dict(self.database_url)["application_name"]
        try:
            with psycopg.connect(self.database_url) as holder, psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                holder.execute("LOCK TABLE budget_usage IN EXCLUSIVE MODE")  # held until the rollback below
                locked.set()
                deadline = time.monotonic() + 30
                while not self.dropped:
                    assert time.monotonic() < deadline, "no statement of the worker ever waited for the lock"
                    waiting = admin.execute(
                        "SELECT pid FROM pg_stat_activity"
                        " WHERE application_name = %s AND %s = ANY(pg_blocking_pids(pid))",
                        (application, holder.info.backend_pid),
                    ).fetchall()
                    for (pid,) in waiting:
                        # Read again: a row of pg_stat_activity pairs the query text of one moment with the wait of
                        # a later one, so the statement before the blocked one could be named. The backend is
                        # still blocked now, so this read names the statement that waits.
                        (query,) = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
                        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                        self.dropped.append(query)
                    time.sleep(0.01)
                holder.rollback()
        except BaseException as exc:  # reported by the test, which would otherwise only see a worker that hangs
            self.failure = exc
            locked.set()


def test_a_worker_whose_connection_is_dropped_mid_statement_logs_it_backs_off_and_resumes_the_run_once(
    dropped_postgres_url, make_settings, write_script, caplog
):
    script = write_script(
        {"tool_calls": [{"name": "send_email", "arguments": EMAIL}]},
        {"expect": "queued", "tool_calls": [{"name": "check_stock", "arguments": {"sku": "dock"}}]},
        {"expect": "in stock", "text": "Sent; the dock is in stock."},
    )
    settings = make_settings(
        dropped_postgres_url, script=script, queue={"poll_s": 0.05, "retry_base_delay_s": 0.0}, **UNGATED
    )
    stall = LedgerStall(dropped_postgres_url)
    store = QueueStore(prepare_database(settings))
    job = submit(store, settings, "Email Ada that order 42 shipped, then check the dock's stock", route=ROUTE)

    async def scenario() -> tuple[RunResult, Services]:
        async with _agent(settings, demo.send_email, stall.tool) as agent:
            stop = asyncio.Event()
            worker = asyncio.create_task(Worker(agent, store).run_forever(stop))  # the loop `firebreak worker` runs
            while store.get(job.id).status != "completed":
                assert not worker.done(), "the worker stopped"
                await asyncio.sleep(0.02)
            stop.set()
            await worker
            record = agent.services.runs.get(job.id)
            return agent.settle_script(agent._result(record)), agent.services

    with caplog.at_level(logging.WARNING, logger="firebreak.queue"):
        result, services = run(scenario())

    assert stall.failure is None, stall.failure
    assert len(stall.dropped) == 1 and "budget_usage" in stall.dropped[0], stall.dropped  # the settlement
    # One clear line naming the run and the cause; the worker went on and took the run up again.
    (line,) = [record.getMessage() for record in caplog.records if record.name == "firebreak.queue"]
    assert f"run {job.id}" in line and "terminating connection due to administrator command" in line, line
    assert "released to the queue" in line, line
    # Kept: the run, neither failed nor dead-lettered for the worker's own trouble, its attempt not counted,
    # resumed from its checkpoint to one answer; each model reply used once (the script is used up exactly),
    # the email sent once. Only the read whose step was cut short ran again.
    queued = store.get(job.id)
    assert (queued.status, queued.attempts, queued.last_error) == ("completed", 1, None)
    assert (result.status, result.answer) == ("answered", "Sent; the dock is in stock."), result.error
    with Session(services.engine) as session:
        assert session.exec(select(func.count()).select_from(DeadLetter)).one() == 0
    assert _emails(services) == 1
    assert stall.calls == 2


# -- 2. a provider that sends nothing, or a tool call cut mid-way while streaming ---------------------------------


def test_a_reply_with_no_text_and_no_tool_call_ends_the_run_as_empty_reply_and_the_thread_goes_on(
    database_url, make_settings, write_script
):
    script = write_script({"text": ""}, {"expect": "Capital of France?", "text": "Paris."})
    settings = make_settings(database_url, script=script)

    async def scenario() -> tuple[RunResult, RunResult, list[Any]]:
        async with Agent.open(settings) as agent:
            empty = await agent.ask("Capital of France?", route=ROUTE)
            again = await agent.ask("Please answer: capital of France?", route=ROUTE, thread_id=empty.thread_id)
            state = await agent.graph.aget_state({"configurable": {"thread_id": empty.thread_id}})
            return empty, agent.settle_script(again), state.values["messages"]

    empty, again, messages = run(scenario())

    # A clear outcome, not an "answered" run with an empty answer.
    assert empty.status == "empty_reply"
    assert empty.answer is not None and "replied with nothing" in empty.answer
    # Kept: the thread, without the empty assistant turn a provider would refuse on the next call.
    assert (again.status, again.answer) == ("answered", "Paris.")
    assert [(m.type, m.text) for m in messages] == [
        ("human", "Capital of France?"),
        ("ai", empty.answer),
        ("human", "Please answer: capital of France?"),
        ("ai", "Paris."),
    ]


def test_a_streamed_tool_call_cut_mid_json_is_explained_to_the_model_which_then_answers(
    database_url, make_settings, write_script
):
    script = write_script(
        {"tool_calls": [{"name": "sql_lookup", "arguments": '{"order_id": 4'}]},
        {"expect": "not valid JSON", "text": "I could not look that order up."},
    )
    settings = make_settings(database_url, script=script)

    async def scenario() -> tuple[RunResult, list[str], list[dict[str, Any]]]:
        async with Agent.open(settings) as agent:
            items = [item async for item in agent.stream("Where is order 4?", route=ROUTE)]
            result = agent.settle_script(items[-1])
            tokens = [item.text for item in items[:-1]]
            return result, tokens, _tool_results(agent.services, result.run_id)

    result, tokens, results = run(scenario())

    assert (result.status, result.answer) == ("answered", "I could not look that order up."), result.error
    assert "".join(tokens) == result.answer
    assert [(r["tool"], r["error_type"]) for r in results] == [("sql_lookup", "InvalidToolArguments")]


# -- 3. a tool that answers with 50 MB ----------------------------------------------------------------------------


def test_a_50_mb_tool_result_is_cut_with_a_marker_everywhere_it_is_kept_and_the_run_finishes(
    database_url, make_settings, write_script
):
    marker = f"[truncated: {HUGE_CHARS} characters"
    script = write_script(
        {"tool_calls": [{"name": "export_everything", "arguments": {}}]},
        {"expect": marker, "text": "The export is too large to read in full; here is its start."},
    )
    settings = make_settings(database_url, script=script, telemetry={"record_content": True})
    bound = settings.tools.max_result_chars + 200  # the cut text and its marker

    async def scenario() -> tuple[RunResult, list[Any], list[dict[str, Any]], list[Any], int]:
        async with _agent(settings, export_everything) as agent:
            tracemalloc.start()
            try:
                result = agent.settle_script(await agent.ask("Export everything", route=ROUTE))
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            state = await agent.graph.aget_state({"configurable": {"thread_id": result.thread_id}})
            spans = list(agent.services.runs.spans(result.run_id))
            return result, state.values["messages"], _tool_results(agent.services, result.run_id), spans, peak

    result, messages, results, spans, peak = run(scenario())

    assert result.status == "answered", result.error
    (output,) = [r["output"] for r in results]
    assert marker in output and len(output) <= bound, "the run event keeps the cut result with its marker"
    assert max(len(m.text) for m in messages) <= bound, "the checkpoint keeps the cut result, not 50 MB"
    longest = max(len(json.dumps(span.attributes)) for span in spans)
    assert longest <= 2 * bound, "the trace keeps the cut result, not 50 MB"
    # The 50 MB string exists once while the tool answers; no layer copies it again.
    assert peak < 2 * HUGE_CHARS, f"peak traced memory {peak / 2**20:.0f} MiB for a 50 MiB result"


# -- 4. clocks that jump -------------------------------------------------------------------------------------------


def test_a_queue_lease_granted_before_the_clock_jumped_back_a_day_ends_one_lease_after_the_jump(
    database_url, make_settings
):
    settings = make_settings(database_url)
    store = QueueStore(prepare_database(settings))
    clock = SimulatedTime()
    job = submit(store, settings, "question", clock=clock)
    lease = settings.queue.lease_s
    assert store.claim("dead-worker", now=clock(), lease_s=lease) is not None

    clock.now -= DAY_S  # NTP corrects a clock that was a day ahead
    assert store.claim("rescuer", now=clock(), lease_s=lease) is None, "a live worker keeps a full lease"
    clock.now += lease + 1
    rescued = store.claim("rescuer", now=clock(), lease_s=lease)

    # Kept: the run, rescued one lease after the jump rather than a day later, and only by one worker.
    assert rescued is not None and (rescued.id, rescued.lease_owner, rescued.attempts) == (job.id, "rescuer", 2)
    assert not store.settle(job.id, "dead-worker", now=clock(), status="completed")


def test_a_forward_clock_jump_rescues_exactly_the_runs_whose_leases_ended(database_url, make_settings):
    settings = make_settings(database_url)
    store = QueueStore(prepare_database(settings))
    clock = SimulatedTime()
    early = submit(store, settings, "question 1", clock=clock)
    clock.now += 1
    late = submit(store, settings, "question 2", clock=clock)
    assert store.claim("w1", now=clock(), lease_s=60).id == early.id
    clock.now += 30
    assert store.claim("w2", now=clock(), lease_s=60).id == late.id

    clock.now += 30  # exactly the end of the first lease: not yet over
    assert store.claim("rescuer", now=clock(), lease_s=60) is None
    clock.now += 0.5
    first = store.claim("rescuer", now=clock(), lease_s=60)
    assert first is not None and first.id == early.id
    assert store.claim("rescuer", now=clock(), lease_s=60) is None, f"{late.id} still has 29.5 s of its lease"


def _breakers(database_url: str, make_settings: Callable[..., Any], clock: SimulatedTime) -> CircuitBreakers:
    return build_services(make_settings(database_url), clock=clock).breakers


def _fail(breakers: CircuitBreakers, times: int) -> None:
    for _ in range(times):
        breakers.record(breakers.acquire("tool:pricing_api"), "failure")


def test_a_breaker_opened_before_the_clock_jumped_back_a_day_probes_one_cooldown_after_the_jump(
    database_url, make_settings
):
    clock = SimulatedTime()
    breakers = _breakers(database_url, make_settings, clock)
    _fail(breakers, 5)
    cooldown = make_settings(database_url).breakers.cooldown_s

    clock.now -= DAY_S
    with pytest.raises(CircuitOpen):
        breakers.acquire("tool:pricing_api")
    clock.now += cooldown + 0.1
    probe = breakers.acquire("tool:pricing_api")

    assert probe.probe, "one probe is admitted a cooldown after the jump, not a day later"
    with pytest.raises(CircuitOpen):
        breakers.acquire("tool:pricing_api")  # and only one


def test_failures_counted_before_the_clock_jumped_back_do_not_count_again_when_it_catches_up(
    database_url, make_settings
):
    clock = SimulatedTime()
    breakers = _breakers(database_url, make_settings, clock)
    _fail(breakers, 4)
    clock.now -= 30  # the clock jumps back; one more failure
    _fail(breakers, 1)

    clock.now += 61  # 61 real seconds after the first four: out of any 60 s window
    _fail(breakers, 1)

    assert breakers.store.get("tool:pricing_api", clock()).state == "closed"


def test_an_escalation_opened_before_the_clock_jumped_back_a_day_is_passed_up_one_timeout_after_the_jump(
    database_url, make_settings, write_script
):
    cancel = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]}
    script = write_script(cancel, {"text": "0.4"})
    settings = make_settings(database_url, script=script)
    timeout = settings.escalation.policies["targeted"].timeout_s
    clock = SimulatedTime()

    async def scenario() -> list[str]:
        async with _agent(settings, clock=clock) as agent:
            waiting = await agent.ask("Cancel order 2", route=ROUTE)
            assert waiting.status == "waiting", waiting
            clock.now -= DAY_S
            assert await agent.sweep() == []
            clock.now += timeout + 1
            return [action for _, action in await agent.sweep()]

    # Kept: the reviewer's question, passed up on time rather than left unanswered for a day.
    assert run(scenario()) == ["escalated"]


def test_a_forward_clock_jump_passes_up_exactly_the_escalations_that_are_due(database_url, make_settings, write_script):
    cancel = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]}
    script = write_script(cancel, {"text": "0.4"}, cancel, {"text": "0.4"})
    settings = make_settings(database_url, script=script)
    timeout = settings.escalation.policies["targeted"].timeout_s
    clock = SimulatedTime()

    async def scenario() -> tuple[list[str], list[str], str]:
        async with _agent(settings, clock=clock) as agent:
            first = await agent.ask("Cancel order 2", route=ROUTE)
            clock.now += 100
            await agent.ask("Cancel order 2 please", route=ROUTE)
            clock.now += timeout - 100  # exactly the first one's deadline: not yet overdue
            at_deadline = await agent.sweep()
            clock.now += 1
            after = await agent.sweep()
            return [row.run_id for row, _ in at_deadline], [row.run_id for row, _ in after], first.run_id

    at_deadline, after, first = run(scenario())
    assert at_deadline == []
    assert after == [first]


def test_a_cached_read_stored_before_the_clock_jumped_back_is_not_served_after_the_jump(database_url, make_settings):
    backend = Backend()
    clock = SimulatedTime()
    services = build_services(make_settings(database_url), tools=ToolRegistry([backend.tool]), clock=clock)

    def read() -> str:
        return run(
            run_tool(
                backend.tool, {"currency": "EUR"}, _context(services), timeout_s=5.0, runtime=services.tool_runtime
            )
        )

    read()
    read()
    assert backend.reads == 1  # cached
    clock.now -= DAY_S
    read()

    # A result stored by a clock a day ahead would otherwise be served for a day past its TTL.
    assert backend.reads == 2


def test_an_operation_started_before_the_clock_jumped_back_is_taken_over_one_lease_after_the_jump(
    database_url, make_settings
):
    log = OperationLog(prepare_database(make_settings(database_url)), ttl_s=DAY_S * 2, in_flight_lease_s=60)
    clock = SimulatedTime()
    claim = {"tool": "send_email", "args_hash": "h", "tenant_id": "t", "run_id": "r"}
    assert log.claim("op-1", **claim, now=clock()).kind == "run"

    clock.now -= DAY_S
    assert log.claim("op-1", **claim, now=clock()).kind == "in_progress"
    clock.now += 61

    # Kept: the write, taken over (and deduplicated by its op_id) one lease after the jump, not a day later.
    assert log.claim("op-1", **claim, now=clock()).kind == "run"


def test_a_budget_reservation_taken_before_the_clock_jumped_back_a_day_is_given_back_one_ttl_after_the_jump(
    database_url, make_settings
):
    settings = make_settings(database_url, limits={"session": {"emails": 1}})
    clock = SimulatedTime()
    limits = build_services(settings, clock=clock).limits
    ttl = settings.limits.reservation_ttl_s
    dead, live = Scope("run-1", "session-1", "t"), Scope("run-2", "session-1", "t")
    limits.reserve(dead, {"emails": 1})  # its worker dies before settling

    clock.now -= DAY_S
    with pytest.raises(BudgetExceeded):
        limits.reserve(live, {"emails": 1})  # a call that may still be running keeps a full reservation
    clock.now += ttl + 1
    limits.reserve(live, {"emails": 1})

    # Kept: the session's cap, held by the dead worker for one TTL after the jump rather than a day, and what
    # it held given back, never counted as sent.
    (usage,) = [row for row in limits.store.usage("session:session-1") if row.resource == "emails"]
    assert (usage.used, usage.reserved) == (0.0, 1.0)


# -- 5. the same run's worker killed with SIGKILL three times -----------------------------------------------------


# The outbox answers a minute after the email is written: every worker dies in that minute.
KILLED_WORKER_TIMING = (
    "[agent]\nrun_wall_clock_s = 20.0\n[queue]\nlease_s = 6.0\npoll_s = 0.2\nretry_base_delay_s = 0.0\n"
    "[tools.timeouts_s]\nsend_email = 20.0\n[faults.send_email]\nlatency_after_ms = 60000\n"
)


def _wait_until(condition: Callable[[], bool], process: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, f"the worker exited early: {process.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the worker never reached the email"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_run_whose_worker_is_killed_three_times_is_dead_lettered_then_requeued_and_sends_one_email(
    tmp_path, make_settings
):
    database_url = f"sqlite:///{tmp_path / 'killed.db'}"
    config = email_worker_config(tmp_path, database_url, KILLED_WORKER_TIMING)
    # The rescuing worker: the same script and lease, and an outbox that answers at once.
    settings = make_settings(
        database_url, script=str(tmp_path / "email.jsonl"), idempotency={"in_flight_lease_s": 1.0}, **UNGATED
    )
    store = QueueStore(prepare_database(settings))
    job = submit(store, settings, "Email Ada that order 42 shipped", route=ROUTE)
    operations = OperationLog(store.engine, ttl_s=DAY_S, in_flight_lease_s=1.0)
    firebreak = str(Path(sys.executable).parent / "firebreak")
    env = {**os.environ, "FIREBREAK_CONFIG": str(config)}

    for kill in range(1, 4):
        worker = subprocess.Popen([firebreak, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # Killed right after its email went out, before the step was recorded: the worst moment.
            _wait_until(lambda kill=kill: _attempts(operations, job.id) == kill, worker)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
    time.sleep(settings.queue.lease_s)  # the last killed worker's lease runs out

    async def rescue() -> tuple[Any, Any, Any, list[dict[str, Any]]]:
        async with Agent.open(settings) as agent:
            await Worker(agent, store).run_until_idle()  # claims it a fourth time: dead-lettered
            buried, letters = store.get(job.id), list(store.dead_letters())
            assert store.requeue(job.id, now=time.time())
            await Worker(agent, store).run_until_idle()
            return buried, letters, agent.services.runs.get(job.id), _tool_results(agent.services, job.id)

    buried, letters, record, results = run(rescue())

    assert buried.status == "dead" and "every attempt's worker died" in buried.last_error
    assert [letter.run_id for letter in letters] == [job.id], "a clear dead letter for a person to requeue"
    assert (store.get(job.id).status, record.status, record.answer) == ("completed", "answered", "Sent.")
    assert '"already_sent": true' in results[-1]["output"], "the fourth execution found the first one's email"
    with Session(store.engine) as session:
        assert session.exec(select(func.count()).select_from(OutboxEmail)).one() == 1, "sent exactly once"


def _attempts(operations: OperationLog, run_id: str) -> int:
    with Session(operations.engine) as session:
        row = session.exec(select(Operation).where(Operation.run_id == run_id)).first()
    return 0 if row is None else row.attempts


def test_a_thread_lease_taken_before_the_clock_jumped_back_a_day_frees_the_thread_one_ttl_after_the_jump(
    database_url, make_settings
):
    leases = ThreadLeases(prepare_database(make_settings(database_url)))
    clock, ttl = SimulatedTime(), 60.0
    assert leases.acquire("thread-1", "dead-run", now=clock(), ttl_s=ttl) is None

    clock.now -= DAY_S
    held = leases.acquire("thread-1", "next-run", now=clock(), ttl_s=ttl)
    clock.now += ttl + 1
    taken = leases.acquire("thread-1", "next-run", now=clock(), ttl_s=ttl)

    # Kept: the conversation, one run at a time; a dead run's lease no longer blocks it for the day of the jump.
    assert held is not None and held.run_id == "dead-run", "a live run keeps a full lease"
    assert taken is None


def test_workers_starting_together_on_a_fresh_postgresql_schema_both_set_up_their_checkpoints(
    dropped_postgres_url,
):
    """N workers on N machines start at once against an empty database: each sets up LangGraph's checkpoint
    tables; without a lock around it one fails on a duplicate table type. Kept: both checkpointers, usable."""

    async def open_one() -> bool:
        async with open_checkpointer(dropped_postgres_url) as saver:
            return await saver.aget_tuple({"configurable": {"thread_id": "none", "checkpoint_ns": ""}}) is None

    async def start_together() -> list[bool]:
        return list(await asyncio.gather(*(open_one() for _ in range(4))))

    assert run(start_together()) == [True, True, True, True]
