"""operation log and dedup keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

It added demo_orders.last_op_id and outbox_emails.dedup_key too until issue 19: the support-desk example's
migrations own those tables now.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operations",
        sa.Column("op_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("tool", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("args_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("op_id"),
    )
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_operations_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_operations_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_operations_run_id"))
        batch_op.drop_index(batch_op.f("ix_operations_expires_at"))

    op.drop_table("operations")
