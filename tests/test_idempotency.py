"""Idempotent write tools: the operation log, dedup keys, and retries that never repeat a side effect."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import run
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from app.faults import FaultPlan
from app.services import build_services
from app.tools.registry import ToolContext, tool
from app.tools.runner import run_tool
from core.config import FaultSettings, load_settings
from core.errors import IdempotencyConflict, ToolFailed, ToolTimeout
from examples.support_desk import tools as demo
from examples.support_desk.tables import DemoOrder, OutboxEmail
from graph.agent import Agent
from memory.engine import make_engine
from memory.idempotency import OperationLog

EMAIL = {"to": "ada@example.com", "subject": "Your order", "body": "It has shipped."}


def services_for(make_settings, database_url, faults=None, attempts=3):
    settings = make_settings(database_url, retries={"attempts": attempts, "base_delay_s": 0.0, "max_delay_s": 0.0})
    return build_services(settings, faults=FaultPlan(faults or {}))


def send(services, op_id: str, arguments=EMAIL, timeout_s: float = 1.0, item=demo.send_email) -> str:
    context = ToolContext(
        run_id="r1", tenant_id="acme", user_id="u1", engine=services.engine, settings=services.settings, op_id=op_id
    )
    return run(run_tool(item, arguments, context, timeout_s=timeout_s, runtime=services.tool_runtime))


def outbox(services) -> list[OutboxEmail]:
    with Session(services.engine) as session:
        return list(session.exec(select(OutboxEmail)).all())


def test_a_repeated_op_id_returns_the_stored_result_without_sending_again(make_settings, database_url):
    services = services_for(make_settings, database_url)
    first = send(services, "op-1")
    second = send(services, "op-1")

    assert first == second
    assert len(outbox(services)) == 1
    assert services.tool_runtime.operations.get("op-1").status == "completed"


def test_the_same_op_id_with_other_arguments_is_an_error(make_settings, database_url):
    services = services_for(make_settings, database_url)
    send(services, "op-1")

    with pytest.raises(IdempotencyConflict, match="already used for send_email with other arguments"):
        send(services, "op-1", {**EMAIL, "subject": "Something else"})
    assert len(outbox(services)) == 1


def test_a_timed_out_email_is_retried_with_its_op_id_and_sent_exactly_once(make_settings, database_url):
    # The email is written, then the answer is lost: every attempt times out after doing its work.
    lost_answer = {"send_email": FaultSettings(latency_after_ms=500)}
    services = services_for(make_settings, database_url, faults=lost_answer)

    with pytest.raises(ToolTimeout):
        send(services, "op-7", timeout_s=0.2)
    assert len(outbox(services)) == 1
    operation = services.tool_runtime.operations.get("op-7")
    assert (operation.status, operation.attempts) == ("unknown", 1)

    healthy = services_for(make_settings, database_url)
    result = send(healthy, "op-7")  # a later retry (same op_id) settles the unknown outcome
    assert '"already_sent": true' in result
    assert len(outbox(healthy)) == 1
    assert healthy.tool_runtime.operations.get("op-7").status == "completed"


def test_a_retried_order_update_applies_once(make_settings, database_url):
    lost_answer = {"update_order": FaultSettings(latency_after_ms=500)}
    services = services_for(make_settings, database_url, faults=lost_answer)
    with pytest.raises(ToolTimeout):
        send(services, "op-9", {"order_id": 1, "status": "delivered"}, timeout_s=0.2, item=demo.update_order)

    healthy = services_for(make_settings, database_url)
    result = send(healthy, "op-9", {"order_id": 1, "status": "delivered"}, item=demo.update_order)
    assert '"already_applied": true' in result
    with Session(healthy.engine) as session:
        assert session.get(DemoOrder, 1).status == "delivered"


def test_a_duplicate_while_the_first_is_in_flight_does_not_run(make_settings, database_url):
    services = services_for(make_settings, database_url, attempts=1)
    entered, release = threading.Event(), threading.Event()
    effects: list[str] = []

    @tool(kind="write", cost_class="db", timeout_s=10)
    def charge_card(amount: int) -> str:
        """Charge the card."""
        effects.append("charged")
        entered.set()
        release.wait(5)
        return "charged"

    first = threading.Thread(target=send, args=(services, "op-c", {"amount": 5}), kwargs={"item": charge_card})
    first.start()
    entered.wait(5)
    with pytest.raises(ToolFailed, match="already in progress"):
        send(services, "op-c", {"amount": 5}, item=charge_card)
    release.set()
    first.join()
    assert effects == ["charged"]


def test_a_started_operation_whose_worker_died_is_taken_over_after_its_lease(database_url, make_settings):
    engine = build_services(make_settings(database_url)).engine
    log = OperationLog(engine, ttl_s=3600, in_flight_lease_s=60)
    assert log.claim("op-x", tool="t", args_hash="h", tenant_id="a", run_id=None, now=1000.0).kind == "run"

    assert log.claim("op-x", tool="t", args_hash="h", tenant_id="a", run_id=None, now=1059.0).kind == "in_progress"
    assert log.claim("op-x", tool="t", args_hash="h", tenant_id="a", run_id=None, now=1061.0).kind == "run"
    assert log.get("op-x").attempts == 2


def test_keys_are_forgotten_after_their_ttl(database_url, make_settings):
    engine = build_services(make_settings(database_url)).engine
    log = OperationLog(engine, ttl_s=10, in_flight_lease_s=5)
    log.claim("op-y", tool="t", args_hash="h", tenant_id="a", run_id=None, now=0.0)
    log.finish("op-y", "completed", result="done", now=1.0)

    assert log.claim("op-y", tool="t", args_hash="other", tenant_id="a", run_id=None, now=11.0).kind == "run"


def test_a_run_killed_after_its_email_went_out_resumes_without_sending_it_again(tmp_path, write_script):
    database_url = f"sqlite:///{tmp_path / 'fb.db'}"
    script = write_script(
        {"tool_calls": [{"name": "send_email", "arguments": EMAIL}]}, {"text": "0.95"}, name="worker.jsonl"
    )
    # The resumed run continues at the interrupted tool call: its only model call sees the replayed result.
    rest = write_script({"expect": '"already_sent": true', "text": "Sent."}, name="resume.jsonl")
    # The worker sends the email, then hangs before recording the step; the test kills it with SIGKILL.
    worker = textwrap.dedent(f"""
        import asyncio
        from core.config import load_settings
        from graph.agent import Agent
        settings = load_settings(database_url={database_url!r}, script={script!r},
                                 faults={{"send_email": {{"latency_after_ms": 60000}}}},
                                 tools={{"timeouts_s": {{"send_email": 120}}}})
        async def main():
            async with Agent.open(settings) as agent:
                await agent.ask("Email Ada", route="scripted/demo", thread_id="t-crash")
        asyncio.run(main())
    """)
    process = subprocess.Popen([sys.executable, "-c", worker], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    engine = make_engine(database_url)
    try:
        wait_for(lambda: _emails(engine) == 1, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    settings = load_settings(database_url=database_url, script=rest, idempotency={"in_flight_lease_s": 0.5})

    async def resume():
        async with Agent.open(settings) as agent:
            (interrupted,) = agent.services.runs.recent(thread_id="t-crash")
            assert interrupted.status == "running"  # the killed worker never finished it
            await asyncio.sleep(0.6)  # the dead worker's in-flight lease runs out
            result = await agent.resume(interrupted.id)
            return agent.settle_script(result)

    result = run(resume())
    assert (result.status, result.answer) == ("answered", "Sent.")
    assert _emails(engine) == 1


def _emails(engine) -> int:
    with Session(engine) as session:
        try:
            return len(session.exec(select(OutboxEmail)).all())
        except OperationalError:  # the worker has not migrated the database yet
            return 0


def wait_for(condition, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"worker exited early: {process.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker")
        time.sleep(0.1)
