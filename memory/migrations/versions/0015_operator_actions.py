"""operator actions: the audit log of what operators did or were refused

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operator", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_operator_actions_operator"), "operator_actions", ["operator"], unique=False)
    op.create_index(op.f("ix_operator_actions_action"), "operator_actions", ["action"], unique=False)
    op.create_index(op.f("ix_operator_actions_created_at"), "operator_actions", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_operator_actions_created_at"), table_name="operator_actions")
    op.drop_index(op.f("ix_operator_actions_action"), table_name="operator_actions")
    op.drop_index(op.f("ix_operator_actions_operator"), table_name="operator_actions")
    op.drop_table("operator_actions")
