"""``firebreak eval state``: the acceptance figures of the state issue, from the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_eval_state_json_reports_no_lost_update_a_bounded_context_and_the_seeds_replan(tmp_path):
    firebreak = str(Path(sys.executable).parent / "firebreak")
    done = subprocess.run(
        [firebreak, "eval", "state", "--json"], capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    by_name = {scenario["name"]: scenario for scenario in report["scenarios"]}
    assert by_name["three_agents_one_ticket"]["lost_updates"] == 0
    assert by_name["long_conversation_200_turns"]["max_context_tokens"] <= 1200
    assert by_name["replan_pricing_api_down"]["replans"] == 1
    assert report["passed"] is True and all(scenario["passed"] for scenario in report["scenarios"])
