"""Several processes opening one new SQLite file at the same instant all open it.

Each process switches a new file to WAL mode. Two switching at once deadlock on SQLite's locks, and SQLite fails
one at once with "database is locked", whatever the busy timeout: clean-clone CI lost a starting worker this
way. The processes meet at a barrier before each new file, so every round is such a collision. Kept: every
process opens every file, and both files end in WAL mode.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import traceback
from pathlib import Path
from typing import Any

from memory.checkpointer import checkpoint_path, open_checkpointer
from memory.engine import make_engine

PROCESSES = 4
ROUNDS = 100  # before the fix about one round in eight failed the engine, one in thirty the checkpointer


def open_each(urls: list[str], barrier: Any, failures: Any) -> None:
    """Open the engine and the checkpointer of each URL, in step with the other processes."""
    for url in urls:
        barrier.wait()
        try:
            make_engine(url).dispose()
            asyncio.run(_open_checkpointer(url))
        except Exception as exc:
            failures.put("".join(traceback.format_exception_only(exc)).strip())


async def _open_checkpointer(url: str) -> None:
    async with open_checkpointer(url):
        pass


def journal_mode(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        connection.close()


def test_processes_opening_new_sqlite_files_at_the_same_instant_all_open_them(tmp_path):
    urls = [f"sqlite:///{tmp_path / f'round-{n}.db'}" for n in range(ROUNDS)]
    spawn = multiprocessing.get_context("spawn")  # a fork would copy this process's threads' locks
    barrier, failures = spawn.Barrier(PROCESSES), spawn.Queue()
    processes = [spawn.Process(target=open_each, args=(urls, barrier, failures)) for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)

    assert [process.exitcode for process in processes] == [0] * PROCESSES
    seen = []
    while not failures.empty():
        seen.append(failures.get())
    assert seen == []
    files = [tmp_path / f"round-{n}.db" for n in range(ROUNDS)]
    assert {journal_mode(path) for path in files} == {"wal"}
    assert {journal_mode(checkpoint_path(f"sqlite:///{path}")) for path in files} == {"wal"}
