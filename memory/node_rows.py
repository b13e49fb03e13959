"""Rows a graph superstep's nodes write, committed in one transaction when the superstep ends.

Every superstep runs inside :func:`together` (``graph/steps.py``). Stores hand it rows that may wait for its
end: its nodes' run events and audit rows, a successful call's breaker count. They are written just before
LangGraph writes the superstep's checkpoint, so what a crash loses is exactly the superstep a resume runs again,
and a superstep costs one commit instead of one per row. Writes that guard something now (a budget reservation and its
settlement, a failure that may open a breaker) never wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

Row = tuple[Engine, Any, dict[str, Any]]  # engine, statement, parameters


@dataclass
class _Pending:
    rows: list[Row] = field(default_factory=list)
    written: bool = False  # a row that arrives later (from a task the block left behind) is written at once


_pending: ContextVar[_Pending | None] = ContextVar("firebreak_pending_node_rows", default=None)


@contextmanager
def together() -> Iterator[None]:
    """Rows given to :func:`write` inside go to the database when the block ends, whether it returns or raises:
    one transaction per engine, in the order written. A nested block (a node that runs another agent's run)
    writes its own rows when it ends: that run may read them back before the outer block ends."""
    pending = _Pending()
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
        pending.written = True
        _commit(pending.rows)


def write(engine: Engine, statement: Any, parameters: dict[str, Any]) -> None:
    """Execute ``statement`` with ``parameters`` at the end of the current block, or now outside any."""
    pending = _pending.get()
    if pending is None or pending.written:
        _commit([(engine, statement, parameters)])
    else:
        pending.rows.append((engine, statement, parameters))


def _commit(rows: list[Row]) -> None:
    engines = list(dict.fromkeys(engine for engine, _, _ in rows))
    for engine in engines:
        with engine.begin() as connection:
            for owner, statement, parameters in rows:  # one by one: each event's number reads the one before it
                if owner is engine:
                    connection.execute(statement, parameters)
