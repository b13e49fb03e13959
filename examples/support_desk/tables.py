"""The support desk's tables: the orders its tools read and change, and the outbox its e-mails go to.

Created and seeded by this example's own migrations (``examples/support_desk/migrations``), never by the core's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from memory.tables import utcnow


class DemoOrder(SQLModel, table=True):
    """Demo data for the SQL lookup and order update tools."""

    __tablename__ = "demo_orders"

    id: int = Field(primary_key=True)
    customer: str = Field(max_length=128)
    item: str = Field(max_length=256)
    status: str = Field(max_length=32)
    total_usd: float
    updated_at: datetime = Field(default_factory=utcnow)
    last_op_id: str | None = Field(default=None, max_length=64)  # dedup key of the last update applied


class OutboxEmail(SQLModel, table=True):
    """Emails the agent 'sent': written here, never to a real mail server."""

    __tablename__ = "outbox_emails"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str | None = Field(default=None, index=True, max_length=36)
    tenant_id: str = Field(max_length=128)
    to: str = Field(max_length=320)
    subject: str = Field(max_length=512)
    body: str = Field(sa_column=Column(Text, nullable=False))
    dedup_key: str | None = Field(default=None, unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
