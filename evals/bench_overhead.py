"""Per-step overhead of the Firebreak graph against a raw LangGraph tool loop and a LangChain peer.

Three sides run the same scripted model (through LiteLLM), the same tool function and the same checkpointer
(LangGraph's SQLite saver as Firebreak opens it, durability "sync"), interleaved run by run, each round in
another order, so the machine's noise hits all alike:

- the raw loop, the baseline a team would write by hand: no spans, no audit rows, no budgets, no event
  history; it calls LiteLLM directly, which only a baseline may do;
- the peer, LangChain v1 ``create_agent`` with seven production middleware configured like Firebreak's
  guards (call limits, a human-in-the-loop gate that lets reads through, a summarizer the short run never
  triggers, a fallback route, model and tool retries), its model LangChain's ``ChatLiteLLM``;
- Firebreak's ``Agent``.

A separate pass, not timed, samples the event loop thread's stack while Firebreak's side runs and counts
the SQL statements and commits on its engine, to say where its step goes. Sampled rather than traced by
cProfile: cProfile keeps only caller-callee pairs, so time that reaches a store through a built-in (``next``,
``sum``, ``setattr``) or SQLAlchemy's generated wrappers is counted twice, and its cost per call inflates
call-heavy code unevenly.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypedDict

import litellm
from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    HumanInTheLoopMiddleware,
    ModelCallLimitMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
    SummarizationMiddleware,
    ToolCallLimitMiddleware,
    ToolRetryMiddleware,
)
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langchain_litellm import ChatLiteLLM
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.gateway.script import Script
from app.gateway.scripted import register_scripted_provider, script_handle
from core.config import Settings, load_settings
from core.status import RunStatus
from examples.support_desk.tools import knowledge_search
from graph.agent import Agent
from graph.messages import ai_message, to_openai
from memory.checkpointer import open_checkpointer

MODEL = "scripted/bench"
TOOL_STEPS = 3
QUESTION = "What do the refund, shipping and warranty articles say?"
QUERIES = ("refund policy", "shipping costs", "warranty claims")
SAMPLED_RUNS = 20
SAMPLE_EVERY_S = 0.0005
SAMPLED_SIDES = ("firebreak", "peer")  # the peer's samples say which waits any such graph has
# The peer's summarizer fires above this many prompt tokens; the bench's longest prompt is about 540 (its
# approximate count), as it stays under Firebreak's summarizer threshold (a share of the context window).
PEER_SUMMARY_TRIGGER_TOKENS = 4000
# Where Firebreak's step goes: a sample belongs to the innermost frame of its stack whose file is one of
# these (first match wins); "other stores" is every other memory.* module (thread leases, context
# checkpoints, escalations, idempotency keys, ...), helpers below excepted.
STORES: dict[str, tuple[str, ...]] = {
    "budget ledger (memory.ledger, app.limits)": ("/memory/ledger.py", "/app/limits/"),
    "run events, model-call audit (memory.runs, memory.events, memory.audit)": (
        "/memory/runs.py",
        "/memory/events.py",
        "/memory/audit.py",
    ),
    "spans (app.telemetry, OpenTelemetry SDK)": ("/app/telemetry.py", "/opentelemetry/"),
    "breakers (memory.breakers, app.resilience.breaker)": ("/memory/breakers.py", "/app/resilience/breaker.py"),
    "checkpointer (LangGraph saver and serializer)": ("/langgraph/checkpoint/",),
    "gateway's LiteLLM and the scripted model (litellm)": ("/litellm/",),
    "semantic cache (memory.cache, app.cache)": ("/memory/cache.py", "/app/cache/"),
    "other stores (memory.*)": ("/memory/",),
}
STORE_HELPERS = ("/memory/engine.py", "/memory/tables.py", "/memory/upsert.py")  # the stores' shared plumbing
IDLE = "event loop waiting (on the checkpointer's SQLite thread, timers)"
REST = "the rest (LangGraph's loop, the nodes, screens, asyncio)"
SQLALCHEMY = "SQLAlchemy (statement construction, ORM, execution)"
DRIVER = "sqlite3 driver (SQLite executing, committing)"
DRIVER_CALLS = frozenset({"do_execute", "do_executemany", "do_execute_no_params", "do_commit", "do_rollback"})
TABLE = re.compile(r"^\s*(?:(INSERT INTO|UPDATE|DELETE FROM)|SELECT\b.*?\bFROM)\s+\"?(\w+)", re.IGNORECASE | re.DOTALL)

Side = Callable[[int], Awaitable[None]]


def _script_lines(runs: int) -> list[str]:
    lines = []
    for _ in range(runs):
        for query in QUERIES[:TOOL_STEPS]:
            call = {"name": "knowledge_search", "arguments": {"query": query}}
            lines.append(json.dumps({"tool_calls": [call], "usage": {"input_tokens": 200, "output_tokens": 20}}))
        lines.append(json.dumps({"text": "Here is the summary.", "usage": {"input_tokens": 400, "output_tokens": 40}}))
    return lines


def _raw_graph(api_base: str, checkpointer: BaseCheckpointSaver[Any]) -> Any:
    tools = [knowledge_search.spec()]

    async def model(state: MessagesState) -> dict[str, Any]:
        response = await litellm.acompletion(
            model=MODEL, messages=to_openai(state["messages"]), tools=tools, api_base=api_base
        )
        message = response.choices[0].message
        calls = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]
        return {"messages": [_as_ai(message.content or "", calls)]}

    def run_tools(state: MessagesState) -> dict[str, Any]:
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        results = [
            ToolMessage(content=json.dumps(knowledge_search.fn(**call["args"])), tool_call_id=call["id"])
            for call in last.tool_calls
        ]
        return {"messages": results}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    graph = StateGraph(MessagesState)
    graph.add_node("model", model)
    graph.add_node("tools", run_tools)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route, ["tools", END])
    graph.add_edge("tools", "model")
    return graph.compile(checkpointer=checkpointer)


def _as_ai(text: str, calls: list[tuple[str, str, str]]) -> AIMessage:
    from app.gateway import ToolCall

    return ai_message(text, tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in calls))


class _Backoff(TypedDict):
    """``[retries]`` in the retry middleware's terms (attempts after the first, delays in seconds)."""

    max_retries: int
    initial_delay: float
    max_delay: float


def _peer_tool() -> BaseTool:
    """The same tool function, schema and JSON result as the other two sides, as a LangChain tool."""

    def search(**arguments: Any) -> str:
        return json.dumps(knowledge_search.fn(**arguments))

    return StructuredTool.from_function(
        func=search,
        name=knowledge_search.name,
        description=knowledge_search.description,
        args_schema=knowledge_search.args_model,
    )


def _peer_graph(api_base: str, spare_api_base: str, settings: Settings, checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """``create_agent`` with the seven middleware, each set as Firebreak's matching guard is configured."""
    # The fallback route and the summarizer: a second scripted route with an empty script, so a run that
    # called it would fail the script instead of being timed.
    spare = ChatLiteLLM(model=MODEL, api_base=spare_api_base)
    retries = _Backoff(
        max_retries=settings.retries.attempts - 1,
        initial_delay=settings.retries.base_delay_s,
        max_delay=settings.retries.max_delay_s,
    )
    middleware: list[AgentMiddleware[Any, Any, Any]] = [
        ModelCallLimitMiddleware(run_limit=settings.agent.max_steps + 1),
        ToolCallLimitMiddleware(
            thread_limit=int(settings.limits.session.tool_calls), run_limit=int(settings.limits.request.tool_calls)
        ),
        HumanInTheLoopMiddleware(interrupt_on={knowledge_search.name: False}),  # a read passes, as at the gate
        SummarizationMiddleware(
            spare, trigger=("tokens", PEER_SUMMARY_TRIGGER_TOKENS), keep=("messages", settings.context.keep_recent)
        ),
        ModelFallbackMiddleware(spare),
        ModelRetryMiddleware(**retries),
        ToolRetryMiddleware(**retries),
    ]
    model = ChatLiteLLM(model=MODEL, api_base=api_base)
    return create_agent(model, tools=[_peer_tool()], middleware=middleware, checkpointer=checkpointer)


def _bench_settings(folder: Path, script: Path) -> Settings:
    return load_settings(
        database_url=f"sqlite:///{folder / 'firebreak.db'}",
        script=str(script),
        agent={"run_wall_clock_s": 120.0},
        # Every run asks the same question: the cache would answer all but the first, leaving nothing to
        # measure. Its calls come faster than a user's default requests per minute; the limits are still
        # checked on every call, just out of reach.
        cache={"enabled": False},
        rate_limits={"tenant": {"requests": 1_000_000}, "user": {"requests": 1_000_000}},
    )


def _graph_side(graph: Any, name: str) -> Side:
    async def run(index: int) -> None:
        await graph.ainvoke(
            {"messages": [HumanMessage(content=QUESTION)]},
            config={"configurable": {"thread_id": f"{name}-{index}"}},
            durability="sync",
        )

    return run


def _firebreak_side(agent: Agent) -> Side:
    async def run(index: int) -> None:
        result = await agent.ask(QUESTION, route=MODEL, thread_id=f"firebreak-{index}")
        assert result.status == RunStatus.ANSWERED, result.error

    return run


async def _interleaved(sides: dict[str, Side], runs: int, warmup: int = 0, first: int = 0) -> dict[str, list[float]]:
    """Seconds per run of each side; round ``i`` starts at side ``i mod n`` so no side always goes first.

    Rounds are numbered from ``first`` (each round's conversations are new threads).
    """
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(first, first + runs + warmup):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            await sides[name](index)
            if index >= first + warmup:
                times[name].append(time.perf_counter() - started)
    return times


def _statement_kind(statement: str) -> str:
    """``INSERT budget_usage``, ``SELECT runs``...: the verb and the first table a statement names."""
    match = TABLE.match(statement)
    if match is None:
        return statement.split(None, 1)[0].upper()
    verb = (match.group(1) or "SELECT").split()[0].upper()
    return f"{verb} {match.group(2)}"


@contextmanager
def _counting_sql(engine: Engine) -> Iterator[dict[str, Any]]:
    """Count the statements (by verb and table) and the commits issued on ``engine`` inside the block."""
    counts: dict[str, Any] = {"statements": Counter(), "commits": 0}

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counts["statements"][_statement_kind(statement)] += 1

    def on_commit(conn: Any) -> None:
        counts["commits"] += 1

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)


def _store_of(filename: str) -> str | None:
    if any(helper in filename for helper in STORE_HELPERS):
        return None
    return next((name for name, parts in STORES.items() if any(part in filename for part in parts)), None)


def _where(frame: FrameType | None) -> list[str]:
    """What one sample of a stack is doing: its store (else idle or the rest), then the layers it is in."""
    frames = []
    while frame is not None:
        frames.append(frame.f_code)
        frame = frame.f_back
    if not frames:
        return [REST]
    innermost = frames[0]
    store = next((name for code in frames if (name := _store_of(code.co_filename)) is not None), None)
    idle = innermost.co_filename.endswith("selectors.py")
    labels = [store or (IDLE if idle else REST)]
    if any("sqlalchemy" in code.co_filename or "/sqlmodel/" in code.co_filename for code in frames):
        labels.append(SQLALCHEMY)
    if "sqlalchemy" in innermost.co_filename and innermost.co_name in DRIVER_CALLS:
        labels.append(DRIVER)
    return labels


@contextmanager
def _sampling(thread_id: int, seconds: defaultdict[str, float]) -> Iterator[None]:
    """Add to ``seconds`` the time the thread ``thread_id`` spends per label of :func:`_where`, from stack samples.

    Each sample weighs the time since the previous one. The interpreter's switch interval is shortened
    meanwhile, so the sampler gets the GIL about when it asks for it.
    """
    stop = threading.Event()

    def sample() -> None:
        last = time.perf_counter()
        while not stop.wait(SAMPLE_EVERY_S):
            labels = _where(sys._current_frames().get(thread_id))
            now = time.perf_counter()
            for label in labels:
                seconds[label] += now - last
            last = now

    switch = sys.getswitchinterval()
    sys.setswitchinterval(SAMPLE_EVERY_S / 5)
    sampler = threading.Thread(target=sample, name="bench-stack-sampler", daemon=True)
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join()
        sys.setswitchinterval(switch)


def _shares(seconds: defaultdict[str, float], times: list[float]) -> dict[str, Any]:
    """Each label's share of one side's samples, in milliseconds of that side's mean sampled step."""
    step_ms = statistics.mean(times) / (TOOL_STEPS + 1) * 1000
    sampled_s = sum(seconds[name] for name in (*STORES, IDLE, REST))
    labels = (*STORES, IDLE, REST, SQLALCHEMY, DRIVER)
    return {
        "sampled_ms_per_step": step_ms,
        "ms_per_step": {name: seconds[name] / sampled_s * step_ms for name in labels},
    }


async def _breakdown(agent: Agent, sides: dict[str, Side], runs: int, first: int) -> dict[str, Any]:
    """Firebreak's side and the peer's sampled, Firebreak's SQL counted, interleaved as when timed."""
    seconds: dict[str, defaultdict[str, float]] = {name: defaultdict(float) for name in SAMPLED_SIDES}

    def sampled(name: str) -> Side:
        async def run(index: int) -> None:
            with _sampling(threading.get_ident(), seconds[name]):
                await sides[name](index)

        return run

    with _counting_sql(agent.services.engine) as counts:
        times = await _interleaved({**sides, **{name: sampled(name) for name in SAMPLED_SIDES}}, runs, first=first)
    per_run = sorted(counts["statements"].items(), key=lambda item: (-item[1], item[0]))
    return {
        "sampled_runs": runs,
        **{name: _shares(seconds[name], times[name]) for name in SAMPLED_SIDES},
        "sql_statements_per_run": sum(counts["statements"].values()) / runs,
        "commits_per_run": counts["commits"] / runs,
        "statements_per_run": {kind: count / runs for kind, count in per_run},
    }


async def measure_overhead(runs: int = 30, warmup: int = 3, sampled_runs: int = SAMPLED_RUNS) -> dict[str, Any]:
    """Milliseconds per graph step of the three sides, their ratios, and Firebreak's step by store.

    ``runs`` timed rounds after ``warmup`` ones, then ``sampled_runs`` rounds with Firebreak's side sampled.
    """
    total = runs + warmup
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-") as workdir:
        folder = Path(workdir)
        firebreak_script = _write(folder / "firebreak.jsonl", _script_lines(total + sampled_runs))
        raw_script = Script.load(_write(folder / "raw.jsonl", _script_lines(total + sampled_runs)))
        peer_script = Script.load(_write(folder / "peer.jsonl", _script_lines(total + sampled_runs)))
        spare_script = Script.load(_write(folder / "spare.jsonl", []))
        register_scripted_provider()
        settings = _bench_settings(folder, firebreak_script)
        async with (
            Agent.open(settings) as agent,
            open_checkpointer(f"sqlite:///{folder / 'raw.db'}") as raw_saver,
            open_checkpointer(f"sqlite:///{folder / 'peer.db'}") as peer_saver,
        ):
            raw = _raw_graph(script_handle(raw_script), raw_saver)
            peer = _peer_graph(script_handle(peer_script), script_handle(spare_script), settings, peer_saver)
            sides = {
                "raw": _graph_side(raw, "raw"),
                "peer": _graph_side(peer, "peer"),
                "firebreak": _firebreak_side(agent),
            }
            times = await _interleaved(sides, runs, warmup)
            breakdown = await _breakdown(agent, sides, sampled_runs, first=total)
            agent.services.gateway.verify_script_consumed()
            for script in (raw_script, peer_script, spare_script):
                script.verify_consumed()
    return {"runs": runs, "model_calls_per_run": TOOL_STEPS + 1, **_ratios(times), "breakdown": breakdown}


def _ratios(times: dict[str, list[float]]) -> dict[str, float]:
    """Median milliseconds per step of each side; each ratio is the median of its rounds' ratios, since a
    round's sides ran seconds apart and a busy machine slows them alike."""
    steps = TOOL_STEPS + 1

    def ratio(side: str, anchor: str) -> float:
        return statistics.median(mine / theirs for mine, theirs in zip(times[side], times[anchor], strict=True))

    return {
        **{f"{name}_ms_per_step": statistics.median(seconds) / steps * 1000 for name, seconds in times.items()},
        "step_overhead_vs_raw": ratio("firebreak", "raw"),
        "step_overhead_vs_peer": ratio("firebreak", "peer"),
        "peer_vs_raw": ratio("peer", "raw"),
    }


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path
