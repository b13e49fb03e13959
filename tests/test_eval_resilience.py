"""The seed's first failure story as an acceptance test: a dead API is never hammered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run

from evals.resilience import run_resilience


def test_a_dead_backend_sees_at_most_ten_of_4000_requests_and_recovers(database_url, make_settings):
    report = run(run_resilience(make_settings(database_url), include_process_kills=False))

    by_name = {scenario["name"]: scenario for scenario in report["scenarios"]}
    assert set(by_name) == {"dead_tool_4000_requests", "dead_model_4000_requests"}
    for scenario in by_name.values():
        assert scenario["dead_api_backend_calls"] <= 10
        assert scenario["failed_fast"] >= 3990
        assert scenario["state_after_recovery"] == "closed"
        assert scenario["passed"]
    assert by_name["dead_model_4000_requests"]["recovered_answer"] == "sku 42 costs 19.50 USD"


@pytest.mark.slow
def test_eval_resilience_json_prints_one_object_with_the_scenarios(tmp_path):
    firebreak = str(Path(sys.executable).parent / "firebreak")
    done = subprocess.run(
        [firebreak, "eval", "resilience", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] is True, report
    figures = {key for scenario in report["scenarios"] for key in scenario}
    assert {"dead_api_backend_calls", "duplicate_side_effects", "lost_runs"} <= figures
