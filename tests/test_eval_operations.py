"""``firebreak eval operations``: the canary acceptance of the operations issue, from the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_eval_operations_rolls_back_the_worse_release_at_5_percent_and_promotes_the_cheaper_one(tmp_path):
    firebreak = str(Path(sys.executable).parent / "firebreak")
    done = subprocess.run(
        [firebreak, "eval", "operations", "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    by_name = {scenario["name"]: scenario for scenario in report["scenarios"]}
    bad, cheaper = by_name["bad_release_rolled_back"], by_name["cheaper_release_promoted"]
    assert bad["rollback_step"] == 5
    assert bad["canary_error_rate"] > bad["control_error_rate"] and bad["error_rate_p_value"] < 0.05
    assert bad["bad_release_share_after_rollback"] == 0 and bad["users_switched_arms"] == 0
    assert cheaper["status"] == "promoted" and cheaper["final_weight"] == 100
    assert cheaper["cost_ratio_canary_to_control"] < 0.6 and cheaper["share_after_promotion"] == 1.0
    assert report["passed"] is True and all(scenario["passed"] for scenario in report["scenarios"])
