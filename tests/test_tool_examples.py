"""A tool's example questions: shown to the embedded model as examples of choosing it, never sent to a provider."""

from __future__ import annotations

from test_route_seed import ask_on

from app.gateway.local_prompt import tool_spec, with_tool_note
from app.tools.registry import EXAMPLES_KEY, external_tool, tool
from core.config import ExternalToolPolicy


@tool(examples=["Has order 17 arrived?", "Who ordered order 8?"])
def order_lookup(order_id: int) -> str:
    """Look up an order by its number."""
    return "shipped"


@tool()
def weather(city: str) -> str:
    """Today's weather in a city."""
    return "sunny"


def test_the_embedded_models_prompt_shows_a_tool_chosen_for_its_example_questions():
    (system, _) = with_tool_note([{"role": "user", "content": "Is order 3 late?"}], [tool_spec(order_lookup.spec())])

    note = system["content"]
    assert 'User: Has order 17 arrived?\n{"next": "order_lookup"}' in note
    assert 'User: Who ordered order 8?\n{"next": "order_lookup"}' in note
    assert "- order_lookup: Look up an order by its number." in note


def test_a_tool_without_examples_is_shown_chosen_for_its_description():
    (system, _) = with_tool_note([{"role": "user", "content": "Rain in Lyon?"}], [tool_spec(weather.spec())])

    assert 'User: Today\'s weather in a city.\n{"next": "weather"}' in system["content"]
    assert EXAMPLES_KEY not in weather.spec()["function"]


def test_an_external_tool_takes_its_examples_from_its_policy():
    async def call(arguments, context):
        return "ok"

    schema = {"type": "object", "properties": {"sku": {"type": "string"}}}
    policy = ExternalToolPolicy(kind="read", examples=["What does a dock cost?"])
    price = external_tool("shop__price", "The list price of a product.", schema, call, policy, default_kind="write")

    assert price.spec()["function"][EXAMPLES_KEY] == ["What does a dock cost?"]


def test_a_remote_provider_receives_the_tools_without_their_examples(make_settings, sqlite_url, provider):
    ask_on(make_settings, sqlite_url, "openai/gpt-4o-mini", tools=[order_lookup.spec()])

    [body] = provider
    [sent] = body["tools"]
    assert sent["function"]["name"] == "order_lookup"
    assert EXAMPLES_KEY not in sent["function"]
    assert order_lookup.spec()["function"][EXAMPLES_KEY] == ["Has order 17 arrived?", "Who ordered order 8?"]
