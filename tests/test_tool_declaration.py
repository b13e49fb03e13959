"""Declaring a tool the way Python code is written: typed structures for arguments, docstrings that explain them."""

from __future__ import annotations

import enum
import functools
import json
from dataclasses import dataclass
from datetime import date
from typing import Annotated

import pytest
from conftest import run
from pydantic import BaseModel, Field

from app.tools.docstrings import argument_docs
from app.tools.registry import ToolContext, ToolRegistry, tool
from app.tools.runner import render_result
from core.errors import ConfigError
from graph.agent import Agent

received: list[object] = []  # what quote_shipping was called with


class Address(BaseModel):
    city: str
    postcode: str


@dataclass
class Line:
    sku: str
    quantity: int


class Speed(enum.Enum):
    STANDARD = "standard"
    EXPRESS = "express"


@tool()
def quote_shipping(to: Address, lines: list[Line], speed: Speed, ready_on: date, ctx: ToolContext) -> str:
    """What shipping an order costs.

    Args:
        to: where the parcel goes.
        lines: what is in the parcel,
            one line per product.
        speed (Speed): how fast it must arrive.
    """
    received[:] = [to, lines, speed, ready_on]
    return f"{sum(line.quantity for line in lines)} items to {to.city} ({speed.value}, from {ready_on:%d %b}): 12 EUR"


def test_structured_arguments_reach_the_tool_as_the_types_it_declared(database_url, make_settings, write_script):
    arguments = {
        "to": {"city": "Lyon", "postcode": "69001"},
        "lines": [{"sku": "DOCK-1", "quantity": 2}, {"sku": "CABLE", "quantity": 1}],
        "speed": "express",
        "ready_on": "2026-12-09",
    }
    script = write_script(
        {"tool_calls": [{"name": "quote_shipping", "arguments": arguments}]},
        {"expect": "3 items to Lyon (express, from 09 Dec): 12 EUR", "text": "Shipping costs 12 EUR."},
    )

    async def ask() -> str:
        settings = make_settings(database_url, script=script)
        async with Agent.open(settings, tools=ToolRegistry([quote_shipping])) as agent:
            result = agent.settle_script(await agent.ask("What does shipping cost?", route="scripted/demo"))
            return result.answer

    assert run(ask()) == "Shipping costs 12 EUR."
    assert received == [
        Address(city="Lyon", postcode="69001"),
        [Line("DOCK-1", 2), Line("CABLE", 1)],
        Speed.EXPRESS,
        date(2026, 12, 9),
    ]


def test_the_model_sees_what_each_argument_means_from_the_docstring():
    properties = quote_shipping.spec()["function"]["parameters"]["properties"]

    assert quote_shipping.description == "What shipping an order costs."
    assert properties["to"]["description"] == "where the parcel goes."
    assert properties["lines"]["description"] == "what is in the parcel, one line per product."
    assert properties["speed"]["description"] == "how fast it must arrive."
    assert "description" not in properties["ready_on"]


def test_a_description_given_with_the_type_wins_over_the_docstring():
    @tool()
    def refund(order_id: Annotated[int, Field(ge=1, description="the order number on the receipt")]) -> str:
        """Refund an order.

        Args:
            order_id: the order.
        """
        return "ok"

    schema = refund.spec()["function"]["parameters"]["properties"]["order_id"]
    assert schema["description"] == "the order number on the receipt"
    assert schema["minimum"] == 1


@pytest.mark.parametrize(
    "doc",
    [
        "Find orders.\n\nArgs:\n    customer: who ordered.\n    limit (int, optional): at most this many.\n\n"
        "Returns:\n    rows",
        "Find orders.\n\nParameters\n----------\ncustomer : str\n    who ordered.\nlimit : int, optional\n    at most\n"
        "    this many.\n\nReturns\n-------\nlist",
        "Find orders.\n\n:param customer: who ordered.\n:param int limit: at most this many.\n:returns: rows",
    ],
    ids=["google", "numpy", "sphinx"],
)
def test_each_docstring_style_names_its_arguments(doc):
    assert argument_docs(doc) == {"customer": "who ordered.", "limit": "at most this many."}


def test_a_docstring_without_arguments_describes_none():
    assert argument_docs("Find orders.\n\nThe customer's own, newest first.\nExample: limit: 3") == {}


def test_arguments_the_model_cannot_name_are_refused_when_the_tool_is_declared():
    def spread(*orders: int) -> str:
        """Orders."""
        return ""

    def reserved(model_config: str) -> str:
        """A name pydantic keeps for itself."""
        return model_config

    with pytest.raises(ConfigError, match=r"tool spread: parameter \*orders cannot be an argument"):
        tool()(spread)
    with pytest.raises(ConfigError, match="cannot be named 'model_config'"):
        tool()(reserved)


def test_arguments_named_like_model_methods_work_without_warnings(recwarn):
    @tool()
    def lookup(schema: str, json: bool = False) -> str:
        """Describe a schema."""
        return f"{schema}:{json}"

    arguments = lookup.parse_arguments({"schema": "sales", "json": True})

    assert lookup.fn(**lookup.bind(arguments, None)) == "sales:True"  # type: ignore[arg-type]
    assert not [warning for warning in recwarn if "shadows" in str(warning.message)]


class Quote(BaseModel):
    to: Address
    speed: Speed
    ready_on: date


def test_a_structured_result_reaches_the_model_as_the_json_it_stands_for():
    quote = Quote(to=Address(city="Lyon", postcode="69001"), speed=Speed.EXPRESS, ready_on=date(2026, 12, 9))
    result = {"quote": quote, "lines": [Line("DOCK-1", 2)], "skus": {"DOCK-1"}, "handle": object}

    assert json.loads(render_result(result, max_chars=1000)) == {
        "quote": {"to": {"city": "Lyon", "postcode": "69001"}, "speed": "express", "ready_on": "2026-12-09"},
        "lines": [{"sku": "DOCK-1", "quantity": 2}],
        "skus": ["DOCK-1"],
        "handle": "<class 'object'>",  # what JSON cannot hold is shown as text, not refused
    }


@tool
def opening_hours(day: str) -> str:
    """When the desk is open on a day."""
    return f"{day}: 9-17"


def test_a_tool_may_be_declared_without_parentheses():
    assert opening_hours.name == "opening_hours" and opening_hours.kind == "read"
    assert opening_hours.fn(**opening_hours.bind(opening_hours.parse_arguments({"day": "Monday"}), None)) == (
        "Monday: 9-17"
    )


def test_a_callable_without_a_name_must_be_given_one():
    def greet(greeting: str, person: str) -> str:
        """Greet someone."""
        return f"{greeting}, {person}"

    with pytest.raises(ConfigError, match=r"has no __name__: declare it with tool\(name=\.\.\.\)"):
        tool(functools.partial(greet, "Hello"))

    hello = tool(name="hello")(functools.partial(greet, "Hello"))
    assert hello.argument_names == ["person"]
