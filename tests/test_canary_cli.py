"""``firebreak canary`` as an operator runs it: a real process, a real database, real scripted runs."""

from __future__ import annotations

import json

from test_cli import firebreak

RELEASE_V2 = '[releases.v2]\nroute = "scripted/v2"\nsystem_prompt = "You are version two."\n'


def test_start_status_promote_and_rollback_report_the_rollout_and_record_who_acted(database_url, tmp_path):
    config = tmp_path / "my.toml"
    config.write_text(RELEASE_V2 + "[canary]\nsteps = [1, 5, 100]\nmin_runs = [5, 5]\n", encoding="utf-8")
    env = {"FIREBREAK_DATABASE_URL": database_url}

    started = firebreak("canary", "start", "v2", "--config", str(config), "--json", env=env)
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["rollout"]["status"] == "running"
    assert json.loads(started.stdout)["rollout"]["weight"] == 1

    promoted = firebreak("canary", "promote", "--json", env=env)  # no --config: the rollout is in the database
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["rollout"]["weight"] == 5

    rolled_back = firebreak("canary", "rollback", "--reason", "complaints", env=env)
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert "rolled_back" in rolled_back.stdout and "complaints" in rolled_back.stdout

    status = json.loads(firebreak("canary", "status", "--json", env=env).stdout)
    assert status["stable"] == "base"
    actions = [(row["action"], row["by"].startswith("local:")) for row in status["rollout"]["history"]]
    assert actions == [("advanced", True), ("rolled_back", True)]


def test_promote_without_an_active_rollout_fails_with_a_clear_message(sqlite_url):
    done = firebreak("canary", "promote", env={"FIREBREAK_DATABASE_URL": sqlite_url})

    assert done.returncode == 1
    assert "no rollout is active" in done.stderr and "Traceback" not in done.stderr


def test_starting_an_unconfigured_release_names_the_known_ones(sqlite_url):
    done = firebreak("canary", "start", "v9", env={"FIREBREAK_DATABASE_URL": sqlite_url})

    assert done.returncode == 1
    assert "unknown release 'v9'" in done.stderr
