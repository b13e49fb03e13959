"""What an MCP tool call costs through Firebreak, against the same call made directly with the MCP SDK.

Three sides call the same tool (``lookup`` of ``evals/bench_mcp_server.py``, a read that returns a small JSON
object) with the same arguments over the same transport, each with a server process of its own:

- ``direct``: the SDK's ``Client.call_tool`` on a client connected once (the call Firebreak's MCP session
  makes underneath, so the difference is Firebreak's own);
- ``runner``: ``app.tools.runner.run_tool`` on the Firebreak tool the MCP door built (argument validation,
  breaker, blast-radius reservation and settlement, timeout, render), as ``tests/test_mcp_tools.py`` calls it;
- ``firebreak``: the ``act`` node as the graph runs it (``graph.builder.guarded``: the run's wall clock, the
  ``node act`` span, the node's rows in one commit) deciding one call: its ``execute_tool`` span, ``run_tool``,
  the ``tool_result`` event and the tool message. That is what one tool call costs in a run, short of
  LangGraph's scheduling and the checkpoint.

The sides are interleaved call by call, each round starting with another side, so a busy machine slows them
alike. Over stdio (the server is a child process of each client) and streamable HTTP on 127.0.0.1. Every side's
server counts the calls it served and the bench checks that each timed call reached one.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime
from mcp import Client, StdioServerParameters

from app.services import Services, build_services
from app.tools.mcp_tools import attach_mcp_servers, tool_name
from app.tools.registry import ToolContext
from app.tools.runner import run_tool
from core.config import Settings, load_settings
from core.status import RunStatus
from graph.builder import guarded
from graph.state import AgentState, RunContext
from memory.tables import Run
from nodes.act import act

SERVER = Path(__file__).resolve().with_name("bench_mcp_server.py")
TOOL = "lookup"
ARGUMENTS = {"sku": "dock"}
SIDES = ("direct", "runner", "firebreak")
FIREBREAK_SIDES = ("runner", "firebreak")  # each the name of its own configured server
TRANSPORTS = ("stdio", "http")
TENANT, USER, ROUTE = "default", "bench", "scripted/bench"
QUESTION = "Is the USB-C dock in stock?"
SERVER_START_S = 30.0

Side = Callable[[int], Awaitable[str]]  # call number -> the text the caller got back


def server_command(*extra: str) -> list[str]:
    """The bench server's command; ``-P`` keeps the evals folder off its import path."""
    return [sys.executable, "-P", str(SERVER), *extra]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def http_servers(count: int) -> Iterator[list[str]]:
    """``count`` bench servers on streamable HTTP at 127.0.0.1, started and waited for: their URLs."""
    ports = [_free_port() for _ in range(count)]
    processes = [
        subprocess.Popen(
            server_command("--transport", "http", "--port", str(port)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + SERVER_START_S
        for port, process in zip(ports, processes, strict=True):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the bench MCP server on port {port} did not start") from None
                    time.sleep(0.1)
        yield [f"http://127.0.0.1:{port}/mcp" for port in ports]
    finally:
        for process in processes:
            process.kill()
            process.wait()


def bench_settings(database: Path, servers: dict[str, dict[str, Any]]) -> Settings:
    """Firebreak as configured, on ``database``, with ``servers`` as trusted MCP servers (their tool is a read)."""
    return load_settings(
        database_url=f"sqlite:///{database}",
        mcp={"servers": {name: {**server, "trusted": True} for name, server in servers.items()}},
        # Not what is measured, and it would load the embedding model: an MCP read is not cached anyway.
        cache={"enabled": False},
        # Every call is charged to the tenant's day as usual; hundreds of them would reach the day's cap.
        limits={"day": {"tool_calls": 1_000_000}},
    )


@asynccontextmanager
async def direct_client(server: dict[str, Any]) -> AsyncIterator[Client]:
    """The SDK's client on ``server``, connected and its tools listed, as Firebreak's session holds it."""
    transport = server.get("url") or StdioServerParameters(command=server["command"][0], args=server["command"][1:])
    async with Client(transport, cache=None) as client:
        await client.list_tools()
        yield client


def _direct_side(client: Client) -> Side:
    async def call(index: int) -> str:
        result = await client.call_tool(TOOL, dict(ARGUMENTS))
        if result.is_error:
            raise RuntimeError(f"the direct call failed: {result.content}")
        return str(getattr(result.content[0], "text", ""))

    return call


def _tool_context(services: Services, run_id: str) -> ToolContext:
    return ToolContext(
        run_id=run_id,
        tenant_id=TENANT,
        user_id=USER,
        engine=services.engine,
        settings=services.settings,
        thread_id=run_id,
    )


def _runner_side(services: Services) -> Side:
    item = services.tools.get(tool_name("runner", TOOL))
    timeout_s = services.budgets.timeout_for(item)

    async def call(index: int) -> str:
        context = _tool_context(services, f"mcp-runner-{index}")
        return await run_tool(item, dict(ARGUMENTS), context, timeout_s=timeout_s, runtime=services.tool_runtime)

    return call


def _act_side(services: Services, rounds: int) -> Side:
    """The act node deciding one call per round, each round a run of its own (its row written beforehand)."""
    name = tool_name("firebreak", TOOL)
    node = guarded("act", act)
    for index in range(rounds):
        services.runs.start(
            Run(
                id=f"mcp-act-{index}",
                thread_id=f"mcp-act-{index}",
                tenant_id=TENANT,
                user_id=USER,
                route=ROUTE,
                status=RunStatus.RUNNING,
                question=QUESTION,
            )
        )

    async def call(index: int) -> str:
        run_id = f"mcp-act-{index}"
        decision = AIMessage(content="", tool_calls=[{"id": f"call-{index}", "name": name, "args": dict(ARGUMENTS)}])
        state = AgentState(messages=[HumanMessage(content=QUESTION), decision], steps=1)
        wall_clock_s = services.settings.agent.run_wall_clock_s
        context = RunContext(
            services=services,
            run_id=run_id,
            thread_id=run_id,
            tenant_id=TENANT,
            user_id=USER,
            route=ROUTE,
            deadline=time.monotonic() + wall_clock_s,
        )
        update = await node(state, Runtime(context=context))
        message = update["messages"][0]
        if message.status != "success":
            raise RuntimeError(f"the act node's call failed: {message.content}")
        return str(message.content)

    return call


async def _interleaved(
    sides: dict[str, Side], calls: int, warmup: int
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Milliseconds per call of each side (after ``warmup`` rounds), and each side's last answer; round ``i``
    starts at side ``i mod n`` so no side always goes first."""
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    last: dict[str, str] = {}
    for index in range(warmup + calls):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            last[name] = await sides[name](index)
            if index >= warmup:
                times[name].append((time.perf_counter() - started) * 1000)
    return times, last


def _figures(times: dict[str, list[float]], last: dict[str, str], rounds: int) -> dict[str, Any]:
    """p50 and p95 per side, Firebreak's sides against the direct one, and the calls each server served."""
    answers = {name: json.loads(text) for name, text in last.items()}
    served = {name: answer.pop("served") for name, answer in answers.items()}
    if any(count != rounds for count in served.values()):
        raise RuntimeError(f"each side's server should have served {rounds} calls, they served {served}")
    if any(answer != answers["direct"] for answer in answers.values()):
        raise RuntimeError(f"the sides got different answers: {answers}")
    p50 = {name: statistics.median(values) for name, values in times.items()}
    figures: dict[str, Any] = {
        name: {"p50_ms": p50[name], "p95_ms": float(np.percentile(values, 95))} for name, values in times.items()
    }
    for name in FIREBREAK_SIDES:
        figures[f"{name}_vs_direct"] = p50[name] / p50["direct"]
        figures[f"{name}_added_ms"] = p50[name] - p50["direct"]
    return {**figures, "server_calls": served, "result_chars": len(last["direct"])}


async def measure_transport(
    database: Path, servers: dict[str, dict[str, Any]], calls: int, warmup: int
) -> dict[str, Any]:
    """The three sides on ``servers`` (one per side, by side name), on a fresh Firebreak over ``database``."""
    services = build_services(bench_settings(database, {name: servers[name] for name in FIREBREAK_SIDES}))
    async with AsyncExitStack() as stack:
        stack.callback(services.close)
        found = await attach_mcp_servers(services, stack)
        if found.unreachable:
            raise RuntimeError(f"the bench MCP servers did not start: {found.unreachable}")
        client = await stack.enter_async_context(direct_client(servers["direct"]))
        sides = {
            "direct": _direct_side(client),
            "runner": _runner_side(services),
            "firebreak": _act_side(services, warmup + calls),
        }
        times, last = await _interleaved(sides, calls, warmup)
    return _figures(times, last, warmup + calls)


async def measure_mcp(calls: int = 200, warmup: int = 10) -> dict[str, Any]:
    """Per-call latency of an MCP read through Firebreak and directly through the SDK, over stdio and HTTP.

    ``mcp_call_vs_direct_sdk`` is the stdio ratio of medians, the act node's call / the direct call.
    """
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-mcp-") as workdir, http_servers(len(SIDES)) as urls:
        servers: dict[str, dict[str, dict[str, Any]]] = {
            "stdio": {name: {"command": server_command()} for name in SIDES},
            "http": {name: {"url": url} for name, url in zip(SIDES, urls, strict=True)},
        }
        transports = {
            transport: await measure_transport(Path(workdir) / f"{transport}.db", servers[transport], calls, warmup)
            for transport in TRANSPORTS
        }
    stdio_figures = transports["stdio"]
    return {
        "mcp_call_vs_direct_sdk": stdio_figures["firebreak_vs_direct"],
        "mcp_call_added_ms": stdio_figures["firebreak_added_ms"],
        "calls": calls,
        "warmup": warmup,
        "tool": TOOL,
        "arguments": ARGUMENTS,
        **transports,
    }
