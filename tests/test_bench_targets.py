"""docs/benchmarks.md opens with DESIGN.md's numbers: every target, the figure of this run, met or not."""

from __future__ import annotations

from typing import Any

from evals.bench import targets_section


def figures(*, ratio_2_workers: float, lost_runs: int) -> tuple[dict[str, Any], ...]:
    model = {"tokens_per_s": 43.0, "first_token_s": 0.127}
    overhead = {"ratio": 1.4}
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
    assert table["guarded step overhead vs raw LangGraph loop"] == [
        "≤ 1.5×",
        "1.40×",
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
