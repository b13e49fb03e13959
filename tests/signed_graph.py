"""A user's graph for the tests of ``[agent] graph``: the built-in one with every answer signed."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END

from graph.builder import GraphBuilder, default_builder

SIGNATURE = " (signed by the configured graph)"


def sign(state: dict[str, Any]) -> dict[str, Any]:
    return {"answer": state["answer"] + SIGNATURE}


def signed_builder() -> GraphBuilder:
    return default_builder().insert("sign", sign, after="respond", before=END)


builder = signed_builder()
not_a_builder = "respond"
