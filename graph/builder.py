"""Build the agent graph from a small, editable spec.

The default layout::

    START → screen_input → screen_triggers → cache_lookup ─miss→ [plan →] summarize → decide → screen_actions
          → confidence_gate
        cache_lookup ─hit→ respond → END
        confidence_gate ─tool calls→ act → observe → [replan →] summarize → decide …
        confidence_gate ─answer→ cache_store → respond → END
        confidence_gate / screen_triggers / replan ─a person is needed→ hitl → (act | decide | respond)
        decide / act / confidence_gate ─a cap was hit→ budget_guard → hitl

``plan`` and ``replan`` run only in planned runs (``[planner]``). ``observe``
goes to ``respond`` when it stops the loop, and both screening nodes (the
safety breaker) go to ``respond`` when they terminate the run. Add a node
by inserting it on an edge, or after a node on all of its edges::

    builder = default_builder()
    builder.insert("redact", redact, after="confidence_gate", before="act")
    builder.insert("audit", audit, after="decide")

Every node is wrapped so that it runs inside a span and stops the run once its
wall clock is spent. A node added with ``same_step=True`` runs in the superstep
of the node that leads to it, with no checkpoint in between (:mod:`graph.steps`):
the built-in graph's supersteps are [screen_input, screen_triggers, cache_lookup],
[summarize, decide, screen_actions], confidence_gate, [act, observe],
[cache_store, respond], and the rest one node each.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from app.telemetry import mark_error
from core.errors import ConfigError, RunDeadlineExceeded
from core.user_modules import import_attribute
from graph.routing import (
    after_act,
    after_cache_lookup,
    after_decide,
    after_gate,
    after_hitl,
    after_observe,
    after_replan,
    after_screen_actions,
    after_screen_input,
    after_screen_triggers,
)
from graph.state import AgentState, RunContext
from graph.steps import Branch, Edge, NodeRun, Router, reducers, superstep, targets_of
from nodes.act import act
from nodes.budget_guard import budget_guard
from nodes.cache import cache_lookup, cache_store
from nodes.confidence_gate import confidence_gate, screen_triggers
from nodes.decide import decide
from nodes.hitl import hitl
from nodes.observe import observe
from nodes.planner import plan
from nodes.replan import replan
from nodes.respond import respond
from nodes.safety import screen_actions, screen_input
from nodes.summarizer import summarize

NodeFn = Callable[..., dict[str, Any] | Awaitable[dict[str, Any]]]


@dataclass
class GraphBuilder:
    """An editable description of the agent graph; :meth:`compile` turns it into LangGraph."""

    nodes: dict[str, NodeFn] = field(default_factory=dict)
    edges: dict[str, Edge] = field(default_factory=dict)
    same_step: set[str] = field(default_factory=set)  # nodes that run in the superstep of the node before them

    def add_node(self, name: str, fn: NodeFn, *, same_step: bool = False) -> GraphBuilder:
        """Add a node. ``same_step``: it runs in the superstep of the node that leads to it, with no checkpoint
        in between (:mod:`graph.steps`); only for a node that never pauses."""
        if name in self.nodes or name in (START, END):
            raise ConfigError(f"a node named {name!r} already exists")
        self.nodes[name] = fn
        if same_step:
            self.same_step.add(name)
        return self

    def add_edge(self, source: str, target: str) -> GraphBuilder:
        self.edges[source] = target
        return self

    def add_branch(self, source: str, router: Router, targets: dict[str, str]) -> GraphBuilder:
        self.edges[source] = Branch(router, dict(targets))
        return self

    def insert(
        self, name: str, fn: NodeFn, *, after: str, before: str | None = None, same_step: bool = False
    ) -> GraphBuilder:
        """Put a new node on the edge ``after → before`` (plain or conditional).

        Without ``before`` the node goes on every edge out of ``after``: it takes
        over ``after``'s outgoing edge or branch, and ``after`` leads to it.
        """
        edge = self.edges.get(after)
        if edge is None or (before is not None and edge != before and not _branches_to(edge, before)):
            raise ConfigError(f"there is no edge {after} → {before or 'anything'} to insert {name!r} on")
        self.add_node(name, fn, same_step=same_step)  # first, so a taken name leaves the edges untouched
        if before is None:
            self.edges[name] = edge
            return self.add_edge(after, name)
        if isinstance(edge, Branch):
            edge.targets = {label: name if target == before else target for label, target in edge.targets.items()}
        else:
            self.edges[after] = name
        return self.add_edge(name, before)

    def digest(self) -> str:
        """A fingerprint of the graph's shape and code (nodes, their functions, edges, routers).

        Part of the semantic cache's scope: an answer the graph gave is not reused by another graph.
        """
        shape = {
            "nodes": {name: _qualified(fn) for name, fn in self.nodes.items()},
            "edges": {
                source: {"router": _qualified(edge.router), "targets": edge.targets}
                if isinstance(edge, Branch)
                else edge
                for source, edge in self.edges.items()
            },
            "same_step": sorted(self.same_step),
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()

    def compile(self, checkpointer: BaseCheckpointSaver[Any] | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The LangGraph graph: one node per node here, each the superstep that starts at it; the edges are
        followed inside the supersteps, which tell LangGraph where to go next."""
        entry = self.edges.get(START)
        if not isinstance(entry, str):
            raise ConfigError("the graph starts at one node: add_edge(START, node)")
        missing = {target for edge in self.edges.values() for target in targets_of(edge)} - {*self.nodes, END}
        if missing:
            raise ConfigError(f"edges lead to unknown nodes: {sorted(missing)}")
        if stuck := sorted(set(self.nodes) - set(self.edges)):
            raise ConfigError(f"nodes without an edge out: {stuck} (add_edge(node, END) to end there)")
        runs = {name: guarded(name, fn) for name, fn in self.nodes.items()}
        merged = reducers(AgentState)
        graph = StateGraph(AgentState, context_schema=RunContext)
        for name in self.nodes:
            graph.add_node(  # type: ignore[call-overload]
                name,
                superstep(name, runs, self.edges, self.same_step, merged),
                destinations=tuple(targets_of(self.edges[name])),  # for drawing: the edges as built
            )
        graph.add_edge(START, entry)
        return graph.compile(checkpointer=checkpointer)


def _qualified(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def _branches_to(edge: Edge, target: str) -> bool:
    return isinstance(edge, Branch) and target in edge.targets.values()


STATE_KEYS = frozenset(AgentState.__required_keys__ | AgentState.__optional_keys__)


def guarded(name: str, fn: NodeFn) -> NodeRun:
    """Wrap a node: check the run's wall clock, then run it inside a ``node {name}`` span."""
    wants_runtime = len(inspect.signature(fn).parameters) > 1

    async def node(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        if time.monotonic() > ctx.deadline:
            raise RunDeadlineExceeded(
                f"run {ctx.run_id} spent its {ctx.services.settings.agent.run_wall_clock_s:g}s wall clock before {name}"
            )
        tracer = ctx.services.telemetry.tracer
        with tracer.start_as_current_span(
            f"node {name}", record_exception=False, set_status_on_exception=False
        ) as span:
            span.set_attributes({"firebreak.node": name, **ctx.ids})
            try:
                result = fn(state, runtime) if wants_runtime else fn(state)
                if inspect.isawaitable(result):
                    result = await result
            except GraphBubbleUp:
                # An interrupt() is the run pausing for a person, not a failure of the node.
                span.add_event("firebreak.paused")
                raise
            except Exception as exc:
                mark_error(span, exc)
                raise
            if isinstance(result, dict) and (unknown := result.keys() - STATE_KEYS):
                # LangGraph drops such keys without a word: a new node's update would vanish.
                error = ConfigError(
                    f"node {name} returned {sorted(unknown)}, which the state does not have; a node returns "
                    f"updates to the keys of graph.state.AgentState: {', '.join(sorted(STATE_KEYS))}"
                )
                mark_error(span, error)
                raise error
        return result  # type: ignore[return-value]

    node.__name__ = name
    return node


def default_builder() -> GraphBuilder:
    """The built-in single-agent graph: screened, gated, budgeted, with people in the loop."""
    builder = GraphBuilder()
    for name, fn, same_step in (
        ("screen_input", screen_input, False),
        ("screen_triggers", screen_triggers, True),
        ("cache_lookup", cache_lookup, True),
        ("plan", plan, False),
        ("summarize", summarize, False),
        ("decide", decide, True),
        ("screen_actions", screen_actions, True),
        ("confidence_gate", confidence_gate, False),
        ("act", act, False),
        ("observe", observe, True),
        ("replan", replan, False),
        ("budget_guard", budget_guard, False),
        ("hitl", hitl, False),
        ("cache_store", cache_store, False),
        ("respond", respond, True),
    ):
        builder.add_node(name, fn, same_step=same_step)
    builder.add_edge(START, "screen_input")
    builder.add_branch("screen_input", after_screen_input, {"screen_triggers": "screen_triggers", "respond": "respond"})
    builder.add_branch("screen_triggers", after_screen_triggers, {"cache_lookup": "cache_lookup", "hitl": "hitl"})
    # Every way into decide passes the context checkpoint first.
    builder.add_branch(
        "cache_lookup", after_cache_lookup, {"plan": "plan", "decide": "summarize", "respond": "respond"}
    )
    builder.add_edge("plan", "summarize")
    builder.add_edge("summarize", "decide")
    builder.add_branch("decide", after_decide, {"screen_actions": "screen_actions", "budget_guard": "budget_guard"})
    builder.add_branch(
        "screen_actions", after_screen_actions, {"confidence_gate": "confidence_gate", "respond": "respond"}
    )
    builder.add_branch(
        "confidence_gate",
        after_gate,
        {"act": "act", "cache_store": "cache_store", "hitl": "hitl", "budget_guard": "budget_guard"},
    )
    builder.add_edge("cache_store", "respond")
    builder.add_branch("act", after_act, {"observe": "observe", "budget_guard": "budget_guard"})
    builder.add_branch("observe", after_observe, {"replan": "replan", "decide": "summarize", "respond": "respond"})
    builder.add_branch("replan", after_replan, {"hitl": "hitl", "decide": "summarize"})
    builder.add_edge("budget_guard", "hitl")
    builder.add_branch(
        "hitl",
        after_hitl,
        {"act": "act", "decide": "summarize", "respond": "respond", "confidence_gate": "confidence_gate"},
    )
    return builder.add_edge("respond", END)


def configured_builder(spec: str, *, setting: str = "agent.graph") -> GraphBuilder:
    """The graph ``[agent] graph`` (or a release's ``graph``, named by ``setting``) names: ``"module:attribute"``,
    a :class:`GraphBuilder` or a function of no arguments returning one; ``""`` is :func:`default_builder`. A wrong
    name is one :class:`ConfigError`."""
    if not spec:
        return default_builder()
    value = import_attribute(spec, setting=setting)
    if not isinstance(value, GraphBuilder) and callable(value):
        value = value()
    if not isinstance(value, GraphBuilder):
        kind = type(value).__name__
        raise ConfigError(f"{setting}: {spec} is a {kind}, not a GraphBuilder (or a function returning one)")
    return value
