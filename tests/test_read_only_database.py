"""A database Firebreak may read but not write is one line naming the file and the fix (issue 16, item 10),
never SQLAlchemy's message, whose next lines are the statement and its parameters (the system prompt among
them).

Root ignores file modes, and these tests may run as root: the command-line tests then run ``firebreak`` as
``nobody`` (``setpriv``), for whom ``chmod 444`` holds as it does for any user; the in-process test makes its
connection read-only with ``PRAGMA query_only``, which fails a write with the same SQLite error.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import unavailable

from core.config import load_settings
from core.errors import StoreUnavailable
from memory.engine import make_engine

FIREBREAK = str(Path(sys.executable).parent / "firebreak")
NOBODY = 65534


def test_a_write_refused_by_a_read_only_database_names_the_file(tmp_path):
    path = tmp_path / "firebreak.db"
    engine = make_engine(f"sqlite:///{path}")

    with engine.connect() as connection, pytest.raises(StoreUnavailable) as refused:
        connection.exec_driver_sql("CREATE TABLE notes (text TEXT)")
        connection.exec_driver_sql("PRAGMA query_only = ON")
        connection.exec_driver_sql("INSERT INTO notes VALUES ('secret prompt')")

    assert str(refused.value).startswith(f"the database file {path} is read-only (attempt to write a readonly")
    assert "secret prompt" not in str(refused.value) and "\n" not in str(refused.value)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder the unprivileged user may use (pytest's own are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="firebreak-ro-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_unprivileged(*args: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """``firebreak ARGS`` as a user file modes apply to, answering from a scripted model."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            unavailable("setpriv (util-linux)", "install util-linux to run firebreak as nobody under root")
        prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    env = {
        **os.environ,
        "HOME": str(folder),
        "FIREBREAK_DATABASE_URL": f"sqlite:///{folder / 'firebreak.db'}",
        "FIREBREAK_SCRIPT": str(folder / "script.jsonl"),
    }
    command = [*prefix, FIREBREAK, "ask", "--model", "scripted/demo", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)


def make_read_only(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


@pytest.mark.parametrize("file_name", ["firebreak.db", "firebreak.checkpoints.db"])
def test_firebreak_ask_on_a_read_only_file_prints_one_line_without_sql_or_prompt(shared_folder, file_name):
    (shared_folder / "script.jsonl").write_text('{"repeat": true, "text": "Hello."}\n', encoding="utf-8")
    first = as_unprivileged("Hello?", folder=shared_folder)
    assert first.returncode == 0, first.stderr
    make_read_only(shared_folder / file_name)

    refused = as_unprivileged("Hello again?", folder=shared_folder)

    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("error: "), refused.stderr
    assert "SQL" not in output and "parameters" not in output
    assert load_settings().agent.system_prompt[:40] not in output
    assert refused.stderr.startswith(f"error: the database file {shared_folder / file_name} is read-only")
