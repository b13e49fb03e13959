"""Real LangChain tools, registered the way a user would: this module is named in ``[tools] modules``.

Nothing here knows Firebreak: the policies (kind, timeouts, ...) come from ``[tools.external]`` in the tests.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, BaseToolkit, InjectedToolCallId, StructuredTool, ToolException, tool
from pydantic import Field

NOTES: list[tuple[str, str]] = []  # (tool call id, text): what record_note really did
SLOW_SYNC_FINISHED: list[str] = []


def count_words(text: str) -> str:
    """Count the words of a text."""
    return f"{len(text.split())} words"


word_count = StructuredTool.from_function(func=count_words, name="word_count")


@tool
async def convert_currency(
    amount: Annotated[float, Field(gt=0, description="how much money")], currency: str = "EUR"
) -> str:
    """Convert US dollars to another currency at a fixed rate."""
    return f"{amount * 0.5:.2f} {currency}"


@tool
def inventory(sku: str) -> str:
    """How many items of a SKU are in stock."""
    raise ToolException(f"the warehouse does not know SKU {sku}")


def forecast(sku: str) -> str:
    """Forecast the stock of a SKU."""
    raise ToolException("connection reset by the forecaster")


stock_forecast = StructuredTool.from_function(
    func=forecast, name="stock_forecast", handle_tool_error="The stock service is down; try again later."
)


@tool
async def slow_search(query: str) -> str:
    """Search a slow index."""
    await asyncio.sleep(5)
    return f"results for {query}"


@tool
def slow_sync_search(query: str) -> str:
    """Search a slow index without async support."""
    time.sleep(2)
    SLOW_SYNC_FINISHED.append(query)
    return f"results for {query}"


@tool
def record_note(text: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
    """Record a note for the team."""
    NOTES.append((tool_call_id, text))
    return f"noted: {text}"


@tool
def whoami(config: RunnableConfig) -> str:
    """Who is asking."""
    metadata = config.get("metadata", {})
    return f"{metadata.get('firebreak_tenant_id')}/{metadata.get('firebreak_user_id')}"


class ClockToolkit(BaseToolkit):
    """A toolkit: its tools are registered through ``get_tools()``."""

    def get_tools(self) -> list[BaseTool]:
        @tool
        def utc_offset(city: str) -> str:
            """The UTC offset of a city."""
            return {"Paris": "+01:00", "Tokyo": "+09:00"}.get(city, "unknown")

        @tool
        def day_of_week(date: str) -> str:
            """The day of the week of an ISO date."""
            return time.strftime("%A", time.strptime(date, "%Y-%m-%d"))

        return [utc_offset, day_of_week]


clocks = ClockToolkit()
