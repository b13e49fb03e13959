"""Supersteps: which nodes share one, and the LangGraph node that runs them.

LangGraph saves a checkpoint after every superstep: about 1 ms on SQLite and a round trip on PostgreSQL, for
every node of every step. A node added with ``same_step=True`` runs in the superstep of whichever node leads to
it, with no checkpoint in between: one that only judges or bookkeeps what the node before it produced (the
safety screen of a decision, the step count after the tools) or that the node before it only prepares (the
context checkpoint before the model decides). Such a node must never pause (``interrupt()``): resuming a
superstep runs it from its first node, so the nodes before the pause in it would run again. Its first node
may pause; it is the one a resume runs again anyway.

Every node of the graph is compiled as a :func:`superstep` that starts at it: it runs the node, follows the
edge its router picks, goes on into the next node while that one is a same-step node not run yet in this
superstep, and hands LangGraph the writes of all of them and the node to go to (a ``Command``). Each node keeps
its own span and its own wall-clock check; the rows they write commit once, at the superstep's end, just before
LangGraph writes its checkpoint (:mod:`memory.node_rows`).
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command

from graph.state import AgentState, RunContext
from memory import node_rows

Router = Callable[[AgentState], str]
NodeRun = Callable[[AgentState, Runtime[RunContext]], Awaitable[dict[str, Any]]]


@dataclass
class Branch:
    """A conditional edge: ``router`` returns a label, ``targets`` maps labels to nodes."""

    router: Router
    targets: dict[str, str]


Edge = str | Branch


def reducers(schema: type) -> dict[str, Callable[[Any, Any], Any]]:
    """The state keys that merge their writes (``Annotated[..., reducer]``), with their reducers."""
    found = {}
    for key, hint in typing.get_type_hints(schema, include_extras=True).items():
        reducer = next((meta for meta in getattr(hint, "__metadata__", ()) if callable(meta)), None)
        if reducer is not None:
            found[key] = reducer
    return found


def next_node(edge: Edge, state: Mapping[str, Any]) -> str:
    """Where ``edge`` leads from ``state``."""
    if isinstance(edge, Branch):
        return edge.targets[edge.router(state)]  # type: ignore[arg-type]
    return edge


def targets_of(edge: Edge) -> list[str]:
    """The nodes ``edge`` may lead to."""
    return list(dict.fromkeys(edge.targets.values())) if isinstance(edge, Branch) else [edge]


def superstep(
    head: str,
    runs: Mapping[str, NodeRun],
    edges: Mapping[str, Edge],
    same_step: set[str],
    merged: Mapping[str, Callable[[Any, Any], Any]],
) -> Callable[[AgentState, Runtime[RunContext]], Awaitable[Command[str]]]:
    """The LangGraph node for a superstep that starts at ``head``; ``merged``: the state's :func:`reducers`."""

    async def step(state: AgentState, runtime: Runtime[RunContext]) -> Command[str]:
        view: dict[str, Any] = dict(state)
        writes: list[tuple[str, Any]] = []
        ran, node = {head}, head
        with node_rows.together():
            while True:
                update = await runs[node](view, runtime) or {}  # type: ignore[arg-type]
                if not isinstance(update, dict):
                    raise TypeError(f"node {node} returned {type(update).__name__}: return a dict of state updates")
                for key, value in update.items():
                    writes.append((key, value))
                    view[key] = merged[key](view.get(key, []), value) if key in merged else value
                target = next_node(edges[node], view)
                if target == END or target not in same_step or target in ran:
                    break
                ran.add(target)
                node = target
        return Command(update=_collapsed(writes, merged), goto=target)

    step.__name__ = head
    return step


def _collapsed(writes: list[tuple[str, Any]], merged: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The superstep's writes as LangGraph takes them: every write of a merging key, in order (its reducer
    applies them one after the other), and the last of any other (a plain key takes one value per step)."""
    last = {key: index for index, (key, _) in enumerate(writes)}
    return [(key, value) for index, (key, value) in enumerate(writes) if key in merged or last[key] == index]
