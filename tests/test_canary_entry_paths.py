"""A canary rollout sees every entry path: a run whose caller named no model is assigned by the rollout, one
that named a model is pinned to the stable release (issue 16, item 4).

The rollout serves the local user (``default/local``, the identity of the UI, teams and subscribers) from its
first step, so a run that bypasses the rollout shows as the stable release. Each path is driven as its users
drive it (``evals/security/requests.py``): ``Agent.ask``, the ``firebreak ask`` command, ``submit`` and a
worker, ``run_team``, a choreography subscriber, and the UI chat's ``send`` handler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.services import prepare_database
from evals.security.requests import (
    ENTRY_PATHS,
    PINNED,
    QUESTION,
    pinned_to_stable,
    rollout,
    runs_started,
    served_by_canary,
)
from graph.worker import submit
from memory.queue import QueueStore
from memory.runs import RunStore

FIREBREAK = str(Path(sys.executable).parent / "firebreak")


@pytest.mark.parametrize("path", ENTRY_PATHS)
def test_a_run_that_names_no_model_is_served_by_the_rollout(path, tmp_path):
    settings, config = rollout(tmp_path)

    runs = runs_started(settings, path, config, route=None)

    assert served_by_canary(runs), [(run.release, run.arm) for run in runs]
    assert all(run.route == "scripted/v2" and run.rollout_id is not None for run in runs)


@pytest.mark.parametrize("path", ENTRY_PATHS)
def test_a_run_that_names_a_model_stays_on_the_stable_release(path, tmp_path):
    settings, config = rollout(tmp_path)

    runs = runs_started(settings, path, config, route=PINNED)

    assert pinned_to_stable(runs), [(run.release, run.arm, run.route) for run in runs]


def test_queued_runs_join_the_rollout_on_sqlite_and_postgresql(database_url, tmp_path):
    settings, config = rollout(tmp_path, database_url)

    assert served_by_canary(runs_started(settings, "queue", config, route=None))


def test_a_queued_run_without_a_model_stores_no_route_for_the_rollout_to_assign(tmp_path):
    settings, _ = rollout(tmp_path)
    store = QueueStore(prepare_database(settings))

    unpinned, pinned = submit(store, settings, QUESTION), submit(store, settings, QUESTION, route=PINNED)

    stored = [store.get(job.id) for job in (unpinned, pinned)]
    assert [job.route if job else "missing" for job in stored] == [None, PINNED]


def test_firebreak_ask_without_model_joins_the_rollout_as_a_user_runs_it(tmp_path):
    settings, config = rollout(tmp_path)
    env = {**os.environ, "FIREBREAK_DATABASE_URL": settings.database_url, "FIREBREAK_SCRIPT": settings.script}

    asked = subprocess.run(
        [FIREBREAK, "ask", "--config", str(config), "--json", QUESTION],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert asked.returncode == 0, asked.stderr
    run_id = json.loads(asked.stdout)["run_id"]
    recorded = RunStore(prepare_database(settings)).get(run_id)
    assert recorded is not None and (recorded.release, recorded.arm) == ("v2", "canary")
