"""Several processes opening one new database at once: each finds the schema current, none fails creating it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from memory.engine import make_engine
from memory.migrate import current_revision, head_revision

ROOT = Path(__file__).resolve().parents[1]
OPEN = (
    "from app.services import prepare_database; from core.config import load_settings; "
    "prepare_database(load_settings()).dispose(); print('ready')"
)
STARTING_AT_ONCE = 4


def test_processes_starting_together_on_a_new_database_all_open_it(database_url):
    env = {**os.environ, "FIREBREAK_DATABASE_URL": database_url}
    starting = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(STARTING_AT_ONCE)
    ]
    finished = [process.communicate(timeout=180) for process in starting]

    assert [(process.returncode, out.strip()) for process, (out, _) in zip(starting, finished, strict=True)] == [
        (0, "ready")
    ] * STARTING_AT_ONCE, [err for _, err in finished]
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
