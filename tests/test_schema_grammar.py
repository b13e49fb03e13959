"""A tool's schema as the embedded model's grammar takes it: what the converter would mishandle or ignore."""

from __future__ import annotations

from app.gateway.schema_grammar import loosened

TOP_K = {"type": "integer", "minimum": 1, "maximum": 5, "default": 2}


def test_a_small_integer_range_becomes_its_values_which_the_grammar_enforces():
    schema = {"type": "object", "properties": {"top_k": TOP_K, "query": {"type": "string"}}, "required": ["query"]}

    assert loosened(schema) == {
        "type": "object",
        "properties": {"top_k": {"enum": [1, 2, 3, 4, 5]}, "query": {"type": "string"}},
        "required": ["query"],
    }


def test_exclusive_bounds_count_as_the_integers_inside_them():
    assert loosened({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 4}) == {"enum": [1, 2, 3]}


def test_an_unbounded_or_wide_integer_is_left_to_the_tools_own_validation():
    order_id = {"type": "integer", "minimum": 1}
    year = {"type": "integer", "minimum": 1900, "maximum": 2100}

    assert loosened(order_id) == order_id
    assert loosened(year) == year


def test_long_string_bounds_and_patterns_are_dropped_and_short_bounds_kept():
    schema = {"type": "string", "pattern": r"^\s+$", "maxLength": 5000, "minLength": 2}

    assert loosened(schema) == {"type": "string", "minLength": 2}
