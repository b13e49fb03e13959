"""The support desk's tools, which exercise every pattern: reads, writes, slow code, an external API.

They are the starter's example; add your own module to ``[tools] modules`` (and drop this one).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

import httpx
from pydantic import Field
from sqlmodel import Session, col, func, select

from app.tools.registry import ToolContext, tool
from app.tools.sandbox import run_confined
from core.errors import ToolUnavailable
from examples.support_desk.tables import DemoOrder, OutboxEmail
from memory.tables import utcnow
from memory.upsert import insert_once

WORD = re.compile(r"[a-z0-9]+")
OrderStatus = Literal["pending", "shipped", "delivered", "cancelled", "refunded"]


@cache
def _documents() -> tuple[tuple[str, str], ...]:
    folder = resources.files("examples.support_desk") / "knowledge"
    return tuple(
        sorted(
            (entry.name, entry.read_text(encoding="utf-8")) for entry in folder.iterdir() if entry.name.endswith(".md")
        )
    )


def _words(text: str) -> set[str]:
    return {word for word in WORD.findall(text.lower()) if len(word) > 2}


@tool(
    kind="read",
    cost_class="web_search",
    cached=True,
    shared=True,
    trusted_output=True,
    examples=["What is your returns policy?", "When are you open?", "Do you deliver to Canada?"],
)
def knowledge_search(
    query: Annotated[str, Field(min_length=2, max_length=500, description="What to look for")],
    top_k: Annotated[int, Field(ge=1, le=5)] = 2,
) -> list[dict[str, Any]]:
    """Search the help-centre articles (refunds, shipping, opening hours, warranty, accounts)."""
    wanted = _words(query)
    scored: list[dict[str, Any]] = []
    for name, text in _documents():
        overlap = len(wanted & _words(text))
        if overlap:
            title = text.splitlines()[0].lstrip("# ").strip()
            scored.append({"article": name, "title": title, "score": overlap, "text": text.strip()})
    scored.sort(key=lambda hit: (-hit["score"], hit["article"]))
    return scored[:top_k] or [{"result": "no article matches", "query": query}]


@tool(kind="read", cost_class="db", trusted_output=True, examples=["Has order 17 arrived?", "Who ordered order 8?"])
def sql_lookup(
    order_id: Annotated[int, Field(ge=1, description="The order number")], ctx: ToolContext
) -> dict[str, Any]:
    """Look up an order by its number in the orders database."""
    with Session(ctx.engine) as session:
        order = session.get(DemoOrder, order_id)
        if order is None:
            return {"found": False, "order_id": order_id}
        return {"found": True, **order.model_dump(mode="json")}


@tool(kind="read", cost_class="db", shared=True, trusted_output=True, examples=["What are our sales by product?"])
def sales_data(ctx: ToolContext) -> dict[str, Any]:
    """Orders and revenue per item, from the orders table (not counting cancelled or refunded orders)."""
    with Session(ctx.engine) as session:
        rows = session.exec(
            select(DemoOrder.item, func.count(), func.sum(DemoOrder.total_usd))
            .where(col(DemoOrder.status).not_in(["cancelled", "refunded"]))
            .group_by(DemoOrder.item)
            .order_by(DemoOrder.item)
        ).all()
    return {"items": [{"item": item, "orders": count, "revenue_usd": round(total, 2)} for item, count, total in rows]}


# The demo's price list. The live service and the published list agree here; in production the
# published list is the last one the pricing team exported, and may lag the live prices by a day.
PRICE_LIST = {
    "Monitor arm": 59.0,
    "Noise-cancelling headphones": 249.5,
    "Standing desk": 479.0,
    "USB-C dock": 89.9,
}
PRICES_PUBLISHED_ON = "2026-11-25"

Items = Annotated[list[str], Field(min_length=1, max_length=50, description="Item names, as in sales_data")]


def _prices(items: list[str]) -> dict[str, float | None]:
    return {item: PRICE_LIST.get(item) for item in items}


@tool(
    kind="read",
    cost_class="external_api",
    substitute="cached_prices",
    shared=True,
    examples=["How much is the office chair?"],
)
async def pricing_api(items: Items) -> dict[str, Any]:
    """Current list prices from the live pricing service (unknown items are null)."""
    return {"prices": _prices(items), "source": "live"}


@tool(
    kind="read",
    cost_class="db",
    shared=True,
    trusted_output=True,
    examples=["What did the office chair cost on the last price list?"],
)
def cached_prices(items: Items) -> dict[str, Any]:
    """Prices from the last published price list: a fallback when the live pricing service is down."""
    return {"prices": _prices(items), "source": "published price list", "as_of": PRICES_PUBLISHED_ON}


@tool(kind="write", cost_class="db", trusted_output=True, examples=["Cancel order 9.", "Record order 4 as refunded."])
def update_order(
    order_id: Annotated[int, Field(ge=1, description="The order number")],
    status: Annotated[OrderStatus, Field(description="The new status")],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Change the status of an order (a database mutation)."""
    with Session(ctx.engine) as session:
        order = session.get(DemoOrder, order_id, with_for_update=True)
        if order is None:
            raise LookupError(f"order {order_id} does not exist")
        if ctx.op_id is not None and order.last_op_id == ctx.op_id:
            # A retry of an update whose answer was lost: it was applied, do not apply it again.
            return {"order_id": order_id, "status": order.status, "already_applied": True}
        previous = order.status
        order.status, order.updated_at, order.last_op_id = status, utcnow(), ctx.op_id
        session.add(order)
        session.commit()
        return {"order_id": order_id, "previous_status": previous, "status": status}


@tool(
    kind="write",
    cost_class="db",
    consumes={"emails": 1},
    trusted_output=True,
    examples=["Write to bob@example.com that his parcel is late."],
)
def send_email(
    to: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="Recipient address")],
    subject: Annotated[str, Field(min_length=1, max_length=200)],
    body: Annotated[str, Field(min_length=1, max_length=5000)],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Send an email to a customer (written to the outbox table, never to a real mail server)."""
    email = OutboxEmail(
        run_id=ctx.run_id, tenant_id=ctx.tenant_id, to=to, subject=subject, body=body, dedup_key=ctx.op_id
    )
    # The op_id is the dedup key: a retry whose first attempt did send finds that email instead of a second.
    stored, created = insert_once(ctx.engine, email, "dedup_key")
    return {"queued": True, "email_id": stored["id"], "already_sent": not created}


@tool(kind="read", cost_class="code", examples=["Compute the 20th Fibonacci number in Python."])
async def run_code(
    code: Annotated[str, Field(min_length=1, max_length=10_000, description="Python source")],
) -> dict[str, Any]:
    """Run a short Python program, confined (no network, no processes, writes only in its own temporary
    directory, limited memory and CPU), and return what it printed."""
    outcome = await run_confined(code)
    return {"exit_code": outcome.exit_code, "stdout": outcome.stdout[-4000:], "stderr": outcome.stderr[-2000:]}


# egress: the model chooses the path, so a query string can carry whatever the run has read to the partner.
@tool(kind="read", cost_class="external_api", egress=True)
async def http_api(
    path: Annotated[
        str, Field(pattern=r"^/[A-Za-z0-9/_\-.?=&]*$", description="Path on the partner API, e.g. /prices/42")
    ],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Call the partner HTTP API (GET) configured in [tools.http_api] and return its JSON."""
    try:
        async with httpx.AsyncClient(base_url=ctx.settings.tools.http_api.base_url) as client:
            response = await client.get(path)
    except httpx.TransportError as exc:
        raise ToolUnavailable(f"partner API unreachable: {exc}", tool="http_api") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise ToolUnavailable(f"partner API answered HTTP {response.status_code} for {path}", tool="http_api")
    if response.status_code >= 400:
        raise RuntimeError(f"partner API answered HTTP {response.status_code} for {path}")
    return {"status": response.status_code, "body": response.json()}
