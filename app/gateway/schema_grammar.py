"""A tool's JSON schema as llama-cpp-python's grammar converter can take it.

The converter constrains the embedded model's tool arguments to the schema's shape. Some schema features it
mishandles (the grammar is rejected, or is too large) and some it ignores; ``loosened`` rewrites those. The tool
validates its arguments against its real schema in any case, so what the grammar lets through still gets a clear
error the model can correct.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GRAMMAR_MAX_REPEAT = 64  # longer string bounds and wider integer ranges are left to the tool's own validation


def loosened(schema: Any) -> Any:
    """The schema without what llama.cpp's grammar converter mishandles.

    It spells ``maxLength: 5000`` as 5,000 nested optional rules, and copies a
    regex ``pattern`` with ``\\s`` into a grammar it cannot parse; either way
    the parser rejects the grammar and the process then crashes. Both are
    dropped here: the tool validates its arguments against the real schema, so
    a bad value still gets a clear error the model can correct.

    It also ignores an integer's bounds, so the 0.5B model wrote ``top_k: 10`` for a tool that takes 1 to 5 and
    then told the user about the error. A small range becomes the list of its values, which the converter does
    enforce.
    """
    if isinstance(schema, Mapping) and (values := _integer_range(schema)) is not None:
        return {"enum": values}
    if isinstance(schema, Mapping):
        return {
            key: loosened(value)
            for key, value in schema.items()
            if not (key == "pattern" and isinstance(value, str))  # a property named "pattern" is a dict: kept
            and not (key in ("maxLength", "minLength") and isinstance(value, int) and value > GRAMMAR_MAX_REPEAT)
        }
    if isinstance(schema, list):
        return [loosened(item) for item in schema]
    return schema


def _integer_range(schema: Mapping[str, Any]) -> list[int] | None:
    """The values of an integer schema bounded on both sides by at most ``GRAMMAR_MAX_REPEAT`` values, else None."""
    if schema.get("type") != "integer" or "enum" in schema:
        return None
    low = _bound(schema, "minimum", "exclusiveMinimum", 1)
    high = _bound(schema, "maximum", "exclusiveMaximum", -1)
    if low is None or high is None or not 0 < high - low + 1 <= GRAMMAR_MAX_REPEAT:
        return None
    return list(range(low, high + 1))


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str, step: int) -> int | None:
    """An integer bound as an inclusive one: ``exclusiveMinimum: 0`` is a minimum of 1."""
    if isinstance(schema.get(inclusive), int) and not isinstance(schema.get(inclusive), bool):
        return int(schema[inclusive])
    if isinstance(schema.get(exclusive), int) and not isinstance(schema.get(exclusive), bool):
        return int(schema[exclusive]) + step
    return None
