"""LangGraph's own checkpointers on Firebreak's database URL.

Checkpoints are what make a run resumable and a conversation continue across
process restarts: the thread id is the key, so reuse it for a conversation and
never share it between users.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from memory.engine import is_sqlite, libpq_url, sqlite_path


def checkpoint_path(database_url: str) -> Path:
    """SQLite keeps checkpoints in a sibling file.

    The async checkpointer's connection and Firebreak's own writes would
    otherwise share one database lock, and a synchronous write waiting on the
    event loop's own pending commit deadlocks until the busy timeout.
    """
    path = sqlite_path(database_url)
    return path.with_name(f"{path.stem}.checkpoints{path.suffix or '.db'}")


@asynccontextmanager
async def open_checkpointer(database_url: str) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """Open (and set up) the checkpointer for ``database_url``; closes it on exit."""
    if is_sqlite(database_url):
        path = checkpoint_path(database_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            # Same durability trade-off as Firebreak's own tables (see memory/engine.py).
            await saver.conn.execute("PRAGMA busy_timeout=10000")
            await saver.conn.execute("PRAGMA synchronous=NORMAL")
            await saver.setup()
            yield saver
    else:
        async with AsyncPostgresSaver.from_conn_string(libpq_url(database_url)) as saver:
            await saver.setup()
            yield saver
