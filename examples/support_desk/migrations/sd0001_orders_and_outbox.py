"""support desk: demo orders (seeded) and the e-mail outbox

Revision ID: sd0001
Revises:
Create Date: 2026-12-05

These tables were the core's until issue 19 (core revisions 0001 and 0003 created them), so a database made
before then already holds them, perhaps without the columns 0003 added: every step here checks what is there.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "sd0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDED_AT = datetime(2026, 11, 1, tzinfo=UTC)
ORDERS = [
    (1, "Ada Lovelace", "Mechanical keyboard", "shipped", 129.0),
    (2, "Alan Turing", "Noise-cancelling headphones", "pending", 249.5),
    (42, "Grace Hopper", "USB-C dock", "delivered", 89.9),
    (1234, "Edsger Dijkstra", "Standing desk", "pending", 499.0),
    (1243, "Barbara Liskov", "Monitor arm", "cancelled", 59.0),
]


def _columns(table: str) -> set[str] | None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(table):
        return None
    return {column["name"] for column in inspector.get_columns(table)}


def _orders() -> None:
    columns = _columns("demo_orders")
    if columns is None:
        orders = op.create_table(
            "demo_orders",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("customer", AutoString(length=128), nullable=False),
            sa.Column("item", AutoString(length=256), nullable=False),
            sa.Column("status", AutoString(length=32), nullable=False),
            sa.Column("total_usd", sa.Float(), nullable=False),
            sa.Column("updated_at", UTCDateTime(), nullable=False),
            sa.Column("last_op_id", AutoString(length=64), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        keys = ("id", "customer", "item", "status", "total_usd")
        op.bulk_insert(orders, [dict(zip(keys, row, strict=True)) | {"updated_at": SEEDED_AT} for row in ORDERS])
    elif "last_op_id" not in columns:
        with op.batch_alter_table("demo_orders") as batch_op:
            batch_op.add_column(sa.Column("last_op_id", AutoString(length=64), nullable=True))


def _outbox() -> None:
    columns = _columns("outbox_emails")
    if columns is None:
        op.create_table(
            "outbox_emails",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("run_id", AutoString(length=36), nullable=True),
            sa.Column("tenant_id", AutoString(length=128), nullable=False),
            sa.Column("to", AutoString(length=320), nullable=False),
            sa.Column("subject", AutoString(length=512), nullable=False),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("dedup_key", AutoString(length=64), nullable=True),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("dedup_key", name="uq_outbox_emails_dedup_key"),
        )
        op.create_index("ix_outbox_emails_run_id", "outbox_emails", ["run_id"], unique=False)
    elif "dedup_key" not in columns:
        with op.batch_alter_table("outbox_emails") as batch_op:
            batch_op.add_column(sa.Column("dedup_key", AutoString(length=64), nullable=True))
            batch_op.create_unique_constraint("uq_outbox_emails_dedup_key", ["dedup_key"])


def upgrade() -> None:
    _orders()
    _outbox()


def downgrade() -> None:
    op.drop_index("ix_outbox_emails_run_id", table_name="outbox_emails")
    op.drop_table("outbox_emails")
    op.drop_table("demo_orders")
