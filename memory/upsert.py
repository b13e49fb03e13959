"""Dialect-aware single-statement upserts: atomic on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def _insert(connection: Connection, table: Table) -> Any:
    return postgresql.insert(table) if connection.dialect.name == "postgresql" else sqlite.insert(table)


def insert_ignore(connection: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert unless the primary key exists; True when this call inserted the row."""
    statement = _insert(connection, table).values(**values).on_conflict_do_nothing()
    return connection.execute(statement).rowcount == 1


def insert_or_add(connection: Connection, table: Table, keys: dict[str, Any], counters: dict[str, int]) -> None:
    """Insert ``keys`` with ``counters``, or add ``counters`` to the existing row's columns."""
    statement = _insert(connection, table).values(**keys, **counters)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={column: table.c[column] + statement.excluded[column] for column in counters},
    )
    connection.execute(statement)
