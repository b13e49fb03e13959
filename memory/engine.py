"""Database engine: one URL, SQLite or PostgreSQL, same code.

SQLite is the zero-setup default; PostgreSQL is what several workers share.
The engine refuses to start silently on a store it cannot reach: a run that
cannot be recorded must not happen.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import create_engine

from core.errors import ConfigError, StoreUnavailable
from memory.sqlite_setup import BUSY_TIMEOUT_S, ensure_wal


def sqlalchemy_url(url: str) -> str:
    """Normalise a user URL to the driver Firebreak uses (psycopg 3 for PostgreSQL)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite://", "postgresql+psycopg://")):
        return url
    raise ConfigError(f"unsupported database_url {url!r}: use sqlite:///path.db or postgresql://user@host/db")


def libpq_url(url: str) -> str:
    """The same database as a plain libpq URL, for LangGraph's PostgreSQL checkpointer."""
    return "postgresql://" + sqlalchemy_url(url).split("://", 1)[1]


def is_sqlite(url: str) -> bool:
    return sqlalchemy_url(url).startswith("sqlite")


def sqlite_path(url: str) -> Path:
    """The file behind a SQLite URL (created directories included)."""
    database = make_url(sqlalchemy_url(url)).database
    if not database or database == ":memory:":
        raise ConfigError("database_url must name a SQLite file: runs are durable, ':memory:' is not")
    return Path(database)


def _enable_sqlite_concurrency(dbapi_connection: Any, _record: Any) -> None:
    # The file is already in WAL mode (make_engine); busy_timeout makes writers queue instead of failing.
    # synchronous=NORMAL is WAL's recommended setting: a crash of the process loses nothing, a power
    # cut may lose the last commits; FULL would fsync on every one of the many small writes.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# What SQLite says when it may read a file but not write it (or its journal, or create one in its folder).
READ_ONLY_ERRORS = ("readonly database", "unable to open database file")


def read_only_message(path: Path, cause: str) -> str:
    """One line naming the SQLite file that cannot be written, and what to do about it."""
    return (
        f"the database file {path} is read-only ({cause}): make it, the files beside it (-wal, -shm, "
        f".checkpoints) and its folder writable by this user, or point database_url at a writable file"
    )


def _read_only_as_store_error(path: Path) -> Any:
    """An engine hook: a write refused because the file is read-only becomes one :class:`StoreUnavailable`
    naming the file, instead of SQLAlchemy's error, whose text holds the statement and its parameters (the
    system prompt and user data among them)."""

    def translate(context: Any) -> BaseException | None:
        cause = str(context.original_exception).strip().splitlines()[0] if context.original_exception else ""
        if any(marker in cause for marker in READ_ONLY_ERRORS):
            return StoreUnavailable(read_only_message(path, cause))
        return None

    return translate


def make_engine(url: str) -> Engine:
    """Create the engine for ``url`` and prove the store answers."""
    if is_sqlite(url):
        prepare_sqlite_file(sqlite_path(url))
        engine = create_engine(sqlalchemy_url(url), connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _enable_sqlite_concurrency)
        event.listen(engine, "handle_error", _read_only_as_store_error(sqlite_path(url)), retval=True)
    else:
        engine = create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=5, max_overflow=10)
    check_engine(engine)
    return engine


def prepare_sqlite_file(path: Path) -> None:
    """Create the file's folder and put the file in WAL mode, or raise one :class:`StoreUnavailable` line."""
    if path.is_dir():
        raise StoreUnavailable(f"database_url names the folder {path}: name a file in it, e.g. {path / 'firebreak.db'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create the database's folder {path.parent}: {exc.strerror}") from None
    try:
        ensure_wal(path)
    except sqlite3.DatabaseError as exc:  # "file is not a database" too, not only OperationalError
        cause = str(exc).strip().splitlines()[0]
        if any(marker in cause for marker in READ_ONLY_ERRORS):
            raise StoreUnavailable(read_only_message(path, cause)) from None
        raise StoreUnavailable(f"database {path} cannot be opened: {cause}") from None


def check_engine(engine: Engine) -> None:
    """Raise :class:`StoreUnavailable` unless the database answers a query."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreUnavailable(
            f"database {engine.url.render_as_string(hide_password=True)} is unreachable: {reason}"
        ) from None
