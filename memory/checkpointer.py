"""LangGraph's own checkpointers on Firebreak's database URL.

Checkpoints are what make a run resumable and a conversation continue across
process restarts: the thread id is the key, so reuse it for a conversation and
never share it between users.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from core.errors import StoreUnavailable
from memory.engine import (
    READ_ONLY_ERRORS,
    is_sqlite,
    libpq_url,
    prepare_sqlite_file,
    read_only_message,
    sqlite_path,
)
from memory.sqlite_setup import BUSY_TIMEOUT_S

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

# Any fixed 64-bit key: the advisory lock only serialises setups of the checkpoint tables.
SETUP_LOCK = 0x46_49_52_45_42_52_4B_31  # "FIREBRK1"
SETUP_POLL_S = 0.05


def checkpoint_path(database_url: str) -> Path:
    """SQLite keeps checkpoints in a sibling file.

    The async checkpointer's connection and Firebreak's own writes would
    otherwise share one database lock, and a synchronous write waiting on the
    event loop's own pending commit deadlocks until the busy timeout.
    """
    path = sqlite_path(database_url)
    return path.with_name(f"{path.stem}.checkpoints{path.suffix or '.db'}")


@asynccontextmanager
async def _setting_up_alone(pool: AsyncConnectionPool) -> AsyncIterator[None]:
    """Hold the checkpoint-setup lock: workers starting together on a fresh database would otherwise create
    the checkpoint tables at once, and all but one fail on a duplicate type.

    The lock is tried, not waited for: LangGraph's migrations build indexes CONCURRENTLY, which waits for
    every open transaction, and a session blocked waiting for the lock would be one, a deadlock.
    """
    from psycopg.rows import tuple_row

    async with pool.connection() as connection:
        async with connection.cursor(row_factory=tuple_row) as cursor:
            while True:
                await cursor.execute("SELECT pg_try_advisory_lock(%s)", (SETUP_LOCK,))
                row = await cursor.fetchone()
                if row is not None and row[0]:
                    break
                await asyncio.sleep(SETUP_POLL_S)
        try:
            yield
        finally:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))


async def _set_up_writable(saver: AsyncSqliteSaver, path: Path) -> None:
    """Set up the checkpoint tables and fail at once, in one line naming the file, when they cannot be
    written: otherwise the first checkpoint of the first run fails with the whole conversation in its error.

    Asked of the files rather than of SQLite: in WAL mode a read-only file accepts a write transaction and
    refuses only its commit, with the checkpoint's contents in the error.
    """
    files = [path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")]
    locked = next((file for file in files if file.exists() and not os.access(file, os.W_OK)), None)
    if locked is not None:
        raise StoreUnavailable(read_only_message(path, f"{locked.name} is not writable"))
    try:
        await saver.setup()
    except sqlite3.OperationalError as exc:
        cause = str(exc).strip().splitlines()[0]
        if any(marker in cause for marker in READ_ONLY_ERRORS):
            raise StoreUnavailable(read_only_message(path, cause)) from None
        raise


@asynccontextmanager
async def open_checkpointer(database_url: str) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """Open (and set up) the checkpointer for ``database_url``; closes it on exit."""
    if is_sqlite(database_url):
        path = checkpoint_path(database_url)
        # In WAL mode before LangGraph's setup asks for it: processes switching a new file at once fail one.
        prepare_sqlite_file(path)
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            # Same durability trade-off as Firebreak's own tables (see memory/engine.py).
            await saver.conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            await saver.conn.execute("PRAGMA synchronous=NORMAL")
            await _set_up_writable(saver, path)
            yield saver
    else:
        # Imported only here: a process on SQLite never loads the PostgreSQL driver (100 ms of a new `ask`).
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        # A pool that checks each connection before lending it, not one connection for the process: a
        # connection the server dropped (a restart, a failover, pg_terminate_backend) is replaced on the next
        # checkpoint instead of failing every later run of this process.
        pool = AsyncConnectionPool(
            libpq_url(database_url),
            min_size=1,
            max_size=2,  # the saver serialises its statements on its own lock: more would sit idle
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            check=AsyncConnectionPool.check_connection,
            open=False,
        )
        await pool.open(wait=True)
        try:
            postgres = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            async with _setting_up_alone(pool):
                await postgres.setup()
            yield postgres
        finally:
            await pool.close()
