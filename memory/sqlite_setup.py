"""A SQLite file's one-time set-up, safe when several processes open a new file at the same moment.

Workers started together, or several ``firebreak ask`` on a new database, all find a file in SQLite's default
rollback-journal mode and all switch it to WAL. The switch reads the file, then asks for an exclusive lock.
When two processes do this together, each holds the shared lock the other must wait for. SQLite sees the
deadlock and fails one of them at once with "database is locked": the busy timeout does not apply. Clean-clone
CI lost a worker this way. So the switch is made once per file, under a lock shared by every process.
"""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import StoreUnavailable

# How long a process waits for another's write while switching a file to WAL (the engines' own busy timeout).
BUSY_TIMEOUT_S = 10.0


@contextmanager
def setup_lock(database: Path) -> Iterator[None]:
    """Hold ``database``'s set-up lock: an exclusive ``flock`` on ``<database>.setup-lock``, beside it.

    A SQLite transaction would also shut out the holder's own other connections (Alembic's among them). The
    operating system releases a ``flock`` when its process dies. Not re-entrant: never take it while holding it.
    """
    try:
        lock = open(f"{database}.setup-lock", "a")  # noqa: SIM115 (closed below, after the unlock)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot create {database}.setup-lock ({exc.strerror}): make the database's folder writable by this user"
        ) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_wal(database: Path) -> None:
    """Switch ``database`` to WAL mode (persistent in the file) unless it already is; one process at a time.

    WAL lets readers work during a write. A file already in WAL mode is only read: no lock file is made.
    """
    if _journal_mode(database, switch=False) == "wal":
        return
    with setup_lock(database):
        _journal_mode(database, switch=True)


def _journal_mode(database: Path, *, switch: bool) -> str:
    connection = sqlite3.connect(database, timeout=BUSY_TIMEOUT_S)
    try:
        row = connection.execute("PRAGMA journal_mode=WAL" if switch else "PRAGMA journal_mode").fetchone()
        return str(row[0]).lower()
    finally:
        connection.close()
