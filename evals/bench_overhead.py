"""Per-step overhead of the Firebreak graph against a raw LangGraph tool loop.

Both sides run the same scripted model, the same tool function and the same
checkpointer (LangGraph's SQLite saver as Firebreak opens it, durability "sync"), interleaved run by run so the
machine's noise hits both alike. The raw loop is the baseline a team would
write by hand: no spans, no audit rows, no budgets, no event history. It calls
LiteLLM directly, which only a baseline may do.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import litellm
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph

from app.config import load_settings
from app.gateway.script import Script
from app.gateway.scripted import register_scripted_provider, script_handle
from app.tools.demo import knowledge_search
from graph.agent import Agent
from graph.messages import ai_message, to_openai
from memory.checkpointer import open_checkpointer

MODEL = "scripted/bench"
TOOL_STEPS = 3
QUESTION = "What do the refund, shipping and warranty articles say?"
QUERIES = ("refund policy", "shipping costs", "warranty claims")


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


async def measure_overhead(runs: int = 30, warmup: int = 3) -> dict[str, Any]:
    """Seconds per graph step for both sides and their ratio (Firebreak / raw)."""
    total = runs + warmup
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-") as workdir:
        folder = Path(workdir)
        (folder / "firebreak.jsonl").write_text("\n".join(_script_lines(total)) + "\n")
        raw_script = Script.load(_write(folder / "raw.jsonl", _script_lines(total)))
        register_scripted_provider()
        raw_api_base = script_handle(raw_script)
        settings = load_settings(
            database_url=f"sqlite:///{folder / 'firebreak.db'}",
            script=str(folder / "firebreak.jsonl"),
            agent={"run_wall_clock_s": 120.0},
            # Every run asks the same question: the cache would answer all but the first, leaving nothing to
            # measure. Its calls come faster than a user's default requests per minute; the limits are still
            # checked on every call, just out of reach.
            cache={"enabled": False},
            rate_limits={"tenant": {"requests": 1_000_000}, "user": {"requests": 1_000_000}},
        )
        firebreak_times, raw_times = [], []
        async with (
            Agent.open(settings) as agent,
            open_checkpointer(f"sqlite:///{folder / 'raw.db'}") as saver,
        ):
            raw = _raw_graph(raw_api_base, saver)
            for index in range(total):
                started = time.perf_counter()
                result = await agent.ask(QUESTION, route=MODEL, thread_id=f"fb-{index}")
                firebreak_elapsed = time.perf_counter() - started
                assert result.status == "answered", result.error
                started = time.perf_counter()
                await raw.ainvoke(
                    {"messages": [("user", QUESTION)]},
                    config={"configurable": {"thread_id": f"raw-{index}"}},
                    durability="sync",
                )
                raw_elapsed = time.perf_counter() - started
                if index >= warmup:
                    firebreak_times.append(firebreak_elapsed)
                    raw_times.append(raw_elapsed)
            agent.services.gateway.verify_script_consumed()
            raw_script.verify_consumed()
    steps = TOOL_STEPS + 1
    firebreak_step = statistics.median(firebreak_times) / steps
    raw_step = statistics.median(raw_times) / steps
    return {
        "runs": runs,
        "model_calls_per_run": steps,
        "firebreak_ms_per_step": firebreak_step * 1000,
        "raw_ms_per_step": raw_step * 1000,
        "ratio": firebreak_step / raw_step,
    }


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path
