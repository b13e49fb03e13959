"""Dialect-aware single-statement upserts: atomic on SQLite and PostgreSQL alike."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from memory.tables import table_of


def _insert(dialect: str, table: Table) -> Any:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


# The two upserts below run on every model and tool call (budgets, breakers). Each statement is built once per
# dialect and table and executed with its values as parameters: building a SQLAlchemy statement costs about ten
# times what SQLite takes to run it.
@cache
def _ignore_many_statement(dialect: str, table: Table) -> Any:
    return _insert(dialect, table).on_conflict_do_nothing()


@cache
def _ignore_statement(dialect: str, table: Table) -> Any:
    # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT through SQLAlchemy 2.1.
    return _ignore_many_statement(dialect, table).returning(*table.primary_key.columns)


def add_statement(dialect: str, table: Table, keys: dict[str, Any], counters: dict[str, int]) -> Any:
    """The statement of :func:`insert_or_add` for these columns, to execute with ``keys | counters``."""
    return _add_statement(dialect, table, tuple(keys), tuple(counters))


@cache
def _add_statement(dialect: str, table: Table, keys: tuple[str, ...], counters: tuple[str, ...]) -> Any:
    statement = _insert(dialect, table)
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={column: table.c[column] + statement.excluded[column] for column in counters},
    )


def insert_ignore(connection: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert unless the primary key exists; True when this call inserted the row."""
    return connection.execute(_ignore_statement(connection.dialect.name, table), values).first() is not None


def insert_ignore_many(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert each of ``rows`` (all with the same columns) unless its primary key exists, in one statement."""
    connection.execute(_ignore_many_statement(connection.dialect.name, table), rows)


def insert_or_add(connection: Connection, table: Table, keys: dict[str, Any], counters: dict[str, int]) -> None:
    """Insert ``keys`` with ``counters``, or add ``counters`` to the existing row's columns."""
    connection.execute(add_statement(connection.dialect.name, table, keys, counters), {**keys, **counters})


def insert_once(engine: Engine, row: SQLModel, key: str) -> tuple[dict[str, Any], bool]:
    """Insert ``row`` unless a row with the same unique ``key`` exists: the dedup helper for side effects
    that cannot be made idempotent otherwise (an email, a ticket). Returns the stored row and whether
    this call created it."""
    table = table_of(type(row))
    values = row.model_dump(exclude_none=True)
    with engine.begin() as connection:
        statement = (
            _insert(connection.dialect.name, table).values(**values).on_conflict_do_nothing(index_elements=[key])
        )
        created = connection.execute(statement.returning(*table.columns)).first()
        if created is not None:
            return dict(created._mapping), True
        existing = connection.execute(select(table).where(table.c[key] == values[key])).one()
        return dict(existing._mapping), False


def upsert_returning(engine: Engine, table: Table, values: dict[str, Any], *, key: str, when: Any) -> bool:
    """Insert ``values``, or overwrite the row with the same ``key`` only where ``when`` holds (a condition on
    the existing row); True when this call wrote the row."""
    with engine.begin() as connection:
        statement = _insert(connection.dialect.name, table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[key], set_={column: statement.excluded[column] for column in values}, where=when
        )
        return connection.execute(statement.returning(table.c[key])).first() is not None
