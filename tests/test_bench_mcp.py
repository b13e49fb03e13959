"""The MCP call benchmark at a tiny size: every side reaches its own real MCP server on every call.

Speed is never asserted (these machines are noisy); only the figures' shape, that each timed call reached a
server, and that the Firebreak side is the act node's real path (its event and its spans are written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import run
from sqlmodel import Session, select

from evals.bench import speed_report
from evals.bench_mcp import SIDES, TRANSPORTS, measure_mcp, measure_transport, server_command
from evals.bench_sections import mcp_section
from memory.engine import make_engine
from memory.tables import RunEvent, SpanRecord

CALLS, WARMUP = 4, 1


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    return run(measure_mcp(calls=CALLS, warmup=WARMUP))


def test_every_side_reached_its_server_on_every_call_over_both_transports(figures):
    served = {transport: figures[transport]["server_calls"] for transport in TRANSPORTS}

    assert served == {transport: dict.fromkeys(SIDES, CALLS + WARMUP) for transport in TRANSPORTS}


def test_each_side_has_a_median_and_a_95th_percentile_per_transport(figures):
    for transport in TRANSPORTS:
        for side in SIDES:
            latency = figures[transport][side]
            assert 0 < latency["p50_ms"] <= latency["p95_ms"], (transport, side)


def test_the_ratio_is_the_act_nodes_median_over_the_direct_sdks_and_the_added_time_their_difference(figures):
    stdio = figures["stdio"]
    act, direct = stdio["firebreak"]["p50_ms"], stdio["direct"]["p50_ms"]

    assert figures["mcp_call_vs_direct_sdk"] == pytest.approx(act / direct)
    assert figures["mcp_call_added_ms"] == pytest.approx(act - direct)


def test_bench_json_puts_the_ratio_among_the_headline_figures(figures):
    report = speed_report({"mcp": figures})

    assert report["mcp_call_vs_direct_sdk"] == figures["mcp_call_vs_direct_sdk"]
    assert report["mcp"] is figures


def test_the_benchmarks_page_shows_every_side_on_both_transports(figures):
    section = mcp_section(figures)

    row = next(line for line in section.splitlines() if line.startswith("| the `act` node / direct"))
    assert row.count("×") == 2  # stdio and HTTP
    assert f"counted {CALLS + WARMUP} calls" in section


def test_the_firebreak_side_writes_a_tool_result_event_and_tool_spans_for_every_call(tmp_path: Path):
    database = tmp_path / "bench.db"
    servers = {side: {"command": server_command()} for side in SIDES}

    run(measure_transport(database, servers, calls=2, warmup=1))

    engine = make_engine(f"sqlite:///{database}")
    with Session(engine) as session:
        events = session.exec(select(RunEvent).where(RunEvent.kind == "tool_result")).all()
        spans = session.exec(select(SpanRecord)).all()
    engine.dispose()
    assert sorted(event.run_id for event in events) == ["mcp-act-0", "mcp-act-1", "mcp-act-2"]
    assert all(event.payload["status"] == "success" for event in events)
    names = [span.name for span in spans]
    assert names.count("execute_tool firebreak__lookup") == 3
    assert names.count("execute_tool runner__lookup") == 0  # run_tool alone opens no span of its own
    assert names.count("node act") == 3
