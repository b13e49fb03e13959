"""MCP tool servers as Firebreak tools, against a real MCP server (tests/mcp_test_server.py) started by each test.

Over stdio (the server is the agent's child process) and streamable HTTP on 127.0.0.1 (the test runs the server):
the agent calls its tools through the tool runner, so timeouts, breakers, idempotent writes and spans hold.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import run
from mcp_types import Tool as McpTool

from app.services import Services, build_services
from app.tools.mcp_session import McpSession
from app.tools.mcp_tools import McpTools, connect_servers, tool_name, tools_of
from app.tools.registry import ToolContext
from app.tools.runner import run_tool
from core.config import McpServerSettings, Settings
from core.errors import CircuitOpen, ToolFailed, ToolTimeout, ToolUnavailable
from graph.agent import Agent
from memory.queue import QueueStore

SERVER = Path(__file__).resolve().parent / "mcp_test_server.py"
ROUTE = "scripted/demo"


def stdio_server(calls: Path, script: Path = SERVER, **extra: Any) -> dict[str, Any]:
    return {"command": [sys.executable, str(script), "--calls", str(calls)], **extra}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    """The file the server's write tool appends one line to per call that reached it."""
    return tmp_path / "calls.txt"


@pytest.fixture
def http_server(calls: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The test server on streamable HTTP at 127.0.0.1: its URL and its process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--transport", "http", "--port", str(port), "--calls", str(calls)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "the MCP test server did not start"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp", process
    process.kill()
    process.wait()


def context(services: Services, op_id: str | None = None) -> ToolContext:
    return ToolContext(
        run_id="run-1",
        tenant_id="default",
        user_id="ada",
        engine=services.engine,
        settings=services.settings,
        op_id=op_id,
        thread_id="thread-1",
    )


@asynccontextmanager
async def connected(settings: Settings):  # type: ignore[no-untyped-def]
    """Services and the configured servers' tools, both closed at the end."""
    services = build_services(settings)
    found = await connect_servers(settings, services.alert)
    try:
        yield services, found
    finally:
        await found.aclose()
        services.close()


async def call(services: Services, found: McpTools, name: str, arguments: dict[str, Any], **kwargs: Any) -> str:
    item = next(item for item in found.tools if item.name == name)
    return await run_tool(
        item,
        arguments,
        context(services, kwargs.pop("op_id", None)),
        timeout_s=services.budgets.timeout_for(item),
        runtime=services.tool_runtime,
    )


def child_pids(script: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", str(script)], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


# --- naming and policy -------------------------------------------------------------------------------------------


def test_tool_names_carry_the_server_and_fit_an_openai_function_name():
    assert tool_name("shop", "price") == "shop__price"
    assert tool_name("my.shop", "get price!") == "my_shop__get_price_"
    long_one, long_two = tool_name("warehouse", "x" * 80 + "a"), tool_name("warehouse", "x" * 80 + "b")
    assert len(long_one) == 64 and len(long_two) == 64
    assert long_one != long_two


def test_read_only_hint_makes_a_read_only_on_a_trusted_server(make_settings, sqlite_url, calls):
    settings = make_settings(
        sqlite_url,
        mcp={"servers": {"mine": stdio_server(calls, trusted=True), "theirs": stdio_server(calls)}},
        tools={"external": {"theirs__wait": {"kind": "read"}}},
    )

    async def kinds() -> dict[str, str]:
        async with connected(settings) as (_, found):
            return {item.name: item.kind for item in found.tools}

    assert run(kinds()) == {
        "mine__price": "read",  # annotated readOnlyHint, and the server is trusted
        "mine__place_order": "write",
        "mine__wait": "read",
        "mine__broken": "read",
        "theirs__price": "write",  # the same annotation from a server not trusted is not believed
        "theirs__place_order": "write",
        "theirs__wait": "read",  # the deployment's own [tools.external] says so
        "theirs__broken": "write",
    }


def test_mcp_output_is_untrusted_unless_configured(make_settings, sqlite_url, calls):
    settings = make_settings(
        sqlite_url,
        mcp={"servers": {"shop": stdio_server(calls, trusted=True)}},
        tools={"external": {"shop__price": {"trusted_output": True}}},
    )

    async def trusted() -> dict[str, bool]:
        async with connected(settings) as (_, found):
            return {item.name: item.trusted_output for item in found.tools}

    assert run(trusted()) == {
        "shop__price": True,
        "shop__place_order": False,
        "shop__wait": False,
        "shop__broken": False,
    }


def test_a_tool_whose_schema_is_invalid_is_left_out_alone(make_settings, sqlite_url):
    settings = make_settings(sqlite_url)
    session = McpSession("shop", McpServerSettings(url="http://127.0.0.1:9/mcp"))
    listed = [
        McpTool(name="price", input_schema={"type": "object", "properties": {"sku": {"type": "string"}}}),
        McpTool(name="odd", input_schema={"type": "object", "properties": {"sku": {"type": 42}}}),
    ]
    found = McpTools()

    tools = tools_of(session, listed, settings, found)

    assert [item.name for item in tools] == ["shop__price"]
    assert "not a valid JSON schema" in found.unreachable["shop__odd"]


# --- end to end --------------------------------------------------------------------------------------------------


def test_the_agent_calls_an_mcp_read_tool_end_to_end(make_settings, sqlite_url, write_script, calls):
    script = write_script(
        {"tool_calls": [{"name": "shop__price", "arguments": {"sku": "dock"}}]},
        {"expect": "129", "text": "The dock costs 129 EUR."},
    )
    settings = make_settings(sqlite_url, script=script, mcp={"servers": {"shop": stdio_server(calls, trusted=True)}})

    async def ask() -> Any:
        async with Agent.open(settings) as agent:
            assert "shop__price" in agent.services.tools and "shop__price" in agent.services.team_tools
            result = agent.settle_script(await agent.ask("How much is the dock?", route=ROUTE))
            return result, agent.services.runs.events(result.run_id)

    result, events = run(ask())

    assert result.status == "answered", result.error
    assert result.answer == "The dock costs 129 EUR."
    assert [(event.node, event.kind) for event in events].count(("act", "tool_result")) == 1


def test_the_tool_span_names_the_mcp_server(make_settings, sqlite_url, write_script, http_server):
    url, _ = http_server
    script = write_script(
        {"tool_calls": [{"name": "shop__price", "arguments": {"sku": "cable"}}]},
        {"expect": "9.5", "text": "A cable costs 9.50 EUR."},
    )
    settings = make_settings(sqlite_url, script=script, mcp={"servers": {"shop": {"url": url, "trusted": True}}})

    async def spans() -> list[Any]:
        async with Agent.open(settings) as agent:
            result = agent.settle_script(await agent.ask("How much is a cable?", route=ROUTE))
            assert result.status == "answered", result.error
            return list(agent.services.runs.spans(result.run_id))

    span = next(span for span in run(spans()) if span.name == "execute_tool shop__price")

    assert span.attributes["firebreak.mcp.server"] == "shop"
    assert span.attributes["firebreak.mcp.tool"] == "price"
    assert span.attributes["firebreak.tool.kind"] == "read"


def test_an_unreachable_server_is_left_out_with_an_alert_and_the_agent_still_answers(
    make_settings, sqlite_url, write_script, calls
):
    script = write_script({"text": "Hello."})
    closed = f"http://127.0.0.1:{free_port()}/mcp"  # nothing listens there
    servers = {"shop": stdio_server(calls), "gone": {"url": closed, "connect_timeout_s": 5}}
    settings = make_settings(sqlite_url, script=script, mcp={"servers": servers})

    async def ask() -> Any:
        async with Agent.open(settings) as agent:
            names = {item.name for item in agent.services.tools}
            result = agent.settle_script(await agent.ask("Hi", route=ROUTE))
            return names, result, QueueStore(agent.services.engine).alerts()

    names, result, alerts = run(ask())

    assert "shop__price" in names
    assert not any(name.startswith("gone__") for name in names)
    assert result.status == "answered"
    alert = next(alert for alert in alerts if alert.kind == "mcp_unreachable")
    assert alert.payload["server"] == "gone" and "ConnectError" in alert.payload["error"]


def test_sessions_opened_in_one_task_serve_and_close_from_others_and_stop_the_server(
    make_settings, sqlite_url, calls, tmp_path
):
    # The UI opens its agent in one request's task and closes it in the server's lifespan: anyio's task groups
    # inside the SDK's client must not see that.
    script = tmp_path / "task_server.py"
    shutil.copy(SERVER, script)
    settings = make_settings(sqlite_url, mcp={"servers": {"shop": stdio_server(calls, script, trusted=True)}})

    async def across_tasks() -> tuple[str, list[int], list[int]]:
        services = build_services(settings)
        found = await asyncio.create_task(connect_servers(settings))
        running = child_pids(script)
        output = await asyncio.create_task(call(services, found, "shop__price", {"sku": "dock"}))
        await asyncio.create_task(found.aclose())
        services.close()
        return output, running, child_pids(script)

    output, running, after_close = run(across_tasks())

    assert '"price": 129.0' in output
    assert len(running) == 1
    assert after_close == []


# --- the guards --------------------------------------------------------------------------------------------------


def test_a_slow_mcp_tool_hits_the_firebreak_timeout_and_the_session_survives(make_settings, sqlite_url, calls):
    settings = make_settings(
        sqlite_url,
        mcp={"servers": {"shop": stdio_server(calls, trusted=True)}},
        tools={"external": {"shop__wait": {"kind": "read", "timeout_s": 0.5, "retries": 1}}},
    )

    async def slow_then_fast() -> tuple[float, str]:
        async with connected(settings) as (services, found):
            started = time.monotonic()
            with pytest.raises(ToolTimeout, match=r"shop__wait did not finish within 0.5s"):
                await call(services, found, "shop__wait", {"seconds": 10})
            waited = time.monotonic() - started
            return waited, await call(services, found, "shop__price", {"sku": "dock"})

    waited, after = run(slow_then_fast())

    assert waited < 3
    assert '"price": 129.0' in after  # the cancelled call did not break the session


def test_a_dead_http_server_opens_the_breaker_after_the_configured_failures(make_settings, sqlite_url, http_server):
    url, process = http_server
    settings = make_settings(
        sqlite_url,
        mcp={"servers": {"shop": {"url": url, "trusted": True}}},
        retries={"attempts": 1},
        breakers={"overrides": {"mcp:shop": {"minimum_calls": 2, "failure_threshold": 2}}},
    )

    async def outcomes() -> list[str]:
        seen = []
        async with connected(settings) as (services, found):
            await call(services, found, "shop__price", {"sku": "dock"})
            process.kill()
            process.wait()
            # Two tools of the dead server: the breaker is the server's, so the second tool finds it open.
            for name, arguments in (("shop__price", {"sku": "dock"}),) * 2 + (("shop__wait", {"seconds": 0}),):
                try:
                    await call(services, found, name, arguments)
                    seen.append("ok")
                except (ToolUnavailable, CircuitOpen) as exc:
                    seen.append(type(exc).__name__)
        return seen

    assert run(outcomes()) == ["ToolUnavailable", "ToolUnavailable", "CircuitOpen"]


def test_a_stdio_server_that_cannot_start_again_opens_the_breaker(make_settings, sqlite_url, calls, tmp_path):
    script = tmp_path / "doomed_server.py"
    shutil.copy(SERVER, script)
    settings = make_settings(
        sqlite_url,
        mcp={"servers": {"shop": stdio_server(calls, script, trusted=True)}},
        retries={"attempts": 1},
        breakers={"overrides": {"mcp:shop": {"minimum_calls": 2, "failure_threshold": 2}}},
    )

    async def outcomes() -> list[str]:
        seen = []
        async with connected(settings) as (services, found):
            for pid in child_pids(script):
                os.kill(pid, signal.SIGKILL)
            script.unlink()  # its command now fails: every reconnection fails too
            for _ in range(3):
                try:
                    await call(services, found, "shop__price", {"sku": "dock"})
                    seen.append("ok")
                except (ToolUnavailable, CircuitOpen) as exc:
                    seen.append(type(exc).__name__)
        return seen

    assert run(outcomes()) == ["ToolUnavailable", "ToolUnavailable", "CircuitOpen"]


def test_a_crashed_stdio_server_is_started_again_by_the_next_call(make_settings, sqlite_url, calls, tmp_path):
    script = tmp_path / "crashing_server.py"
    shutil.copy(SERVER, script)
    settings = make_settings(
        sqlite_url,
        mcp={"servers": {"shop": stdio_server(calls, script, trusted=True)}},
        tools={"external": {"shop__price": {"timeout_s": 20}}},  # a Python process takes a while to start
    )

    async def crash_and_call() -> tuple[list[int], list[int], str]:
        async with connected(settings) as (services, found):
            before = child_pids(script)
            for pid in before:
                os.kill(pid, signal.SIGKILL)
            # The broken pipe fails the first attempt (a transient failure); its retry starts the server again.
            output = await call(services, found, "shop__price", {"sku": "cable"})
            return before, child_pids(script), output

    before, after, output = run(crash_and_call())

    assert len(before) == 1 and len(after) == 1 and after != before
    assert '"price": 9.5' in output


def test_a_failing_mcp_tool_is_told_to_the_model_and_not_counted_by_the_breaker(make_settings, sqlite_url, calls):
    settings = make_settings(
        sqlite_url,
        mcp={"servers": {"shop": stdio_server(calls, trusted=True)}},
        breakers={"overrides": {"mcp:shop": {"minimum_calls": 1, "failure_threshold": 1}}},
        tools={"external": {"shop__broken": {"timeout_s": 20}}},  # the subject is the error, not the clock
    )

    async def fail_twice() -> str:
        async with connected(settings) as (services, found):
            for _ in range(2):  # a second call is still made: the breaker did not open
                with pytest.raises(ToolFailed, match="shop__broken failed: Error executing tool broken"):
                    await call(services, found, "shop__broken", {})
            return services.breakers.store.get("mcp:shop", time.time()).state

    assert run(fail_twice()) == "closed"


def test_a_write_retried_with_the_same_op_id_runs_once_on_the_server(make_settings, sqlite_url, calls):
    settings = make_settings(sqlite_url, mcp={"servers": {"shop": stdio_server(calls, trusted=True)}})

    async def order_twice_then_once_more() -> list[str]:
        async with connected(settings) as (services, found):
            arguments = {"sku": "dock", "quantity": 2}
            first = await call(services, found, "shop__place_order", arguments, op_id="op-1")
            again = await call(services, found, "shop__place_order", arguments, op_id="op-1")
            other = await call(services, found, "shop__place_order", arguments, op_id="op-2")
            return [first, again, other]

    first, again, other = run(order_twice_then_once_more())

    assert first == again == "order 1 placed: 2 x dock"  # the retry was answered from the operation log
    assert other == "order 2 placed: 2 x dock"  # a new operation does reach the server
    # One line per call that reached the server, each with the op_id it was sent in the request's _meta.
    assert calls.read_text(encoding="utf-8").splitlines() == ["dock 2 op-1", "dock 2 op-2"]
