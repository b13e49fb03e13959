"""blast radius budgets

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_reservations",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("budget_reservations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_budget_reservations_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_budget_reservations_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_budget_reservations_status"), ["status"], unique=False)

    op.create_table(
        "budget_usage",
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("resource", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("used", sa.Float(), nullable=False),
        sa.Column("reserved", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "resource"),
    )


def downgrade() -> None:
    op.drop_table("budget_usage")
    with op.batch_alter_table("budget_reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_budget_reservations_status"))
        batch_op.drop_index(batch_op.f("ix_budget_reservations_run_id"))
        batch_op.drop_index(batch_op.f("ix_budget_reservations_expires_at"))

    op.drop_table("budget_reservations")
