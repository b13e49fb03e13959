"""docs/benchmarks.md opens with the speed targets, then DESIGN.md's numbers: every target, the figure of
this run, met or not; ``python -m evals.bench --json`` prints the speed figures as one object."""

from __future__ import annotations

import json
from typing import Any

from evals.bench import speed_report, speed_targets_section, targets_section


def figures(*, ratio_2_workers: float, lost_runs: int) -> tuple[dict[str, Any], ...]:
    model = {"tokens_per_s": 43.0, "first_token_s": 0.127}
    overhead = {"step_overhead_vs_raw": 1.4, "step_overhead_vs_peer": 0.7}
    cache = {
        "search": {
            "10000": {
                "entries": 10_000,
                "search": {"p50_ms": 0.6},
                "lookup_fresh": {"p50_ms": 15.0},
                "lookup_fresh_verified": {"p50_ms": 30.0},
                "new_process": {"saved_s": 0.1},
            },
            "100000": {
                "entries": 100_000,
                "search": {"p50_ms": 1.2},
                "lookup_fresh": {"p50_ms": 15.5},
                "lookup_fresh_verified": {"p50_ms": 31.5},
                "new_process": {"saved_s": 0.3},
            },
        }
    }
    workers = {"backends": {"postgresql": {"workers": {"2": {"ratio_to_1": ratio_2_workers}}}}}
    dead = {"requests": 4000, "dead_api_backend_calls": 6, "passed": True}
    suites = {
        "suites": [
            {
                "suite": "resilience",
                "scenarios": [
                    {"name": "dead_tool_4000_requests", **dead},
                    {"name": "dead_model_4000_requests", **dead},
                    {
                        "name": "workers_killed_mid_run",
                        "passed": lost_runs == 0,
                        "runs": 100,
                        "workers_killed": 3,
                        "lost_runs": lost_runs,
                        "duplicate_side_effects": 0,
                    },
                ],
            },
            {
                "suite": "containment",
                "scenarios": [
                    {
                        "name": "runaway_spend_one_request",
                        "passed": True,
                        "cap_usd": 0.5,
                        "max_request_cost_usd": 0.31,
                        "overshoot_usd": 0,
                    }
                ],
            },
            {
                "suite": "cache",
                "scenarios": [
                    {"name": "precision_on_frozen_test_split", "passed": True, "precision": 0.972},
                    {"name": "recall_on_frozen_test_split", "passed": True, "recall": 0.747},
                    {"name": "precision_on_public_stsb", "passed": False, "precision": 0.9},
                    {"name": "recall_on_public_stsb", "passed": True, "recall": 0.8},
                ],
            },
        ]
    }
    return model, overhead, cache, workers, suites


def rows(section: str) -> dict[str, list[str]]:
    table = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in table)}


def test_every_design_target_has_a_row_with_its_figure_and_where_it_was_measured() -> None:
    table = rows(targets_section(*figures(ratio_2_workers=1.7, lost_runs=0)))

    assert len(table) == 10  # DESIGN.md's "Numbers the project must reach", and issue 17's cache targets
    assert table["guarded step overhead vs LangChain `create_agent` + equivalent middleware"] == [
        "≤ 1.0× the peer (stretch ≤ 1.5× raw)",
        "0.70× the peer, 1.40× raw",
        "yes",
        "make bench (per-step overhead, below)",
    ]
    assert table["semantic cache, 100,000 entries"][1] == "search 1.20 ms; embed + search 15.50 ms"
    assert table["semantic cache with its verifier, 100,000 entries"][1:3] == [
        "embed + search + verify 31.50 ms; first lookup 0.30 s",
        "yes",
    ]
    assert table["semantic cache quality, public set STS-B test (thresholded)"][2] == "**no**"
    assert table["dead backend, 4,000 requests"][1] == "6 calls (tool) / 6 calls (model)"
    assert all(row[3] for row in table.values())


def test_a_missed_target_is_marked_in_bold_not_hidden() -> None:
    table = rows(targets_section(*figures(ratio_2_workers=1.2, lost_runs=1)))

    assert table["PostgreSQL, 2 workers vs 1"][1:3] == ["1.20×", "**no**"]
    assert table["worker killed mid-run (kill -9), 100 runs"][2] == "**no**"
    assert table["embedded chat model (Qwen 0.5B) on 2 cores"][2] == "yes"


def speed(*, vs_peer: float, cold_ask_s: float) -> dict[str, dict[str, Any]]:
    return {
        "overhead": {
            "raw_ms_per_step": 8.0,
            "peer_ms_per_step": 16.0,
            "firebreak_ms_per_step": 16.0 * vs_peer,
            "step_overhead_vs_raw": 2.0 * vs_peer,
            "step_overhead_vs_peer": vs_peer,
            "peer_vs_raw": 2.0,
        },
        "chat": {
            "chat_turn_s": 0.6,
            "chat_bare_s": 0.5,
            "chat_turn_vs_bare_model": 1.2,
            "tool_turn_s": 1.4,
            "tool_bare_s": 1.0,
            "tool_turn_vs_bare_model": 1.4,
            "prompt_tokens": 1144,
        },
        "cold_ask": {"cold_ask_first_token_s": cold_ask_s},
        "ui": {"ui_first_token_s": 0.25, "rounds": 5},
    }


def test_the_speed_table_gives_each_target_its_anchor_ratio_and_verdict_with_machine_and_date() -> None:
    section = speed_targets_section(speed(vs_peer=1.25, cold_ask_s=2.4), "Linux x86_64, 2 cores, 2026-12-04 22:00 UTC")
    table = rows(section)

    assert "Linux x86_64, 2 cores, 2026-12-04 22:00 UTC" in section
    assert len(table) == 5
    step = next(row for what, row in table.items() if what.startswith("1. guarded step overhead"))
    assert step == [
        "≤ 1.0× the peer",
        "LangChain `create_agent` + 7 middleware: 16.00 ms (raw LangGraph loop 8.00 ms)",
        "20.00 ms (2.50× raw)",
        "1.25×",
        "**no**",
    ]
    assert table["2. warm chat turn on the embedded model, no tool"][2:] == ["0.60 s", "1.20×", "yes"]
    assert table["2. warm chat turn on the embedded model, one tool"][2:] == ["1.40 s", "1.40×", "**no**"]
    cold = next(row for what, row in table.items() if what.startswith("3. new process"))
    assert cold[2:] == ["2.40 s", "0.80×", "yes"]
    ui = next(row for what, row in table.items() if what.startswith("4. first answer token in the UI"))
    assert ui[2:] == ["0.250 s", "0.50×", "yes"]


def test_json_output_has_the_issue_figures_as_numbers_and_each_parts_raw_figures() -> None:
    figures = speed(vs_peer=0.9, cold_ask_s=2.4)

    printed = json.loads(json.dumps(speed_report(figures)))

    headline = ("step_overhead_vs_raw", "step_overhead_vs_peer", "chat_turn_vs_bare_model", "tool_turn_vs_bare_model")
    for key in (*headline, "cold_ask_first_token_s", "ui_first_token_s"):
        assert isinstance(printed[key], float), key
    assert printed["step_overhead_vs_peer"] == 0.9
    assert printed["cold_ask_first_token_s"] == 2.4
    assert printed["overhead"]["peer_vs_raw"] == 2.0


def test_json_of_one_part_has_only_that_parts_figures() -> None:
    printed = speed_report({"overhead": speed(vs_peer=0.9, cold_ask_s=2.4)["overhead"]})

    assert set(printed) == {"step_overhead_vs_raw", "step_overhead_vs_peer", "overhead"}
