"""run agent and correlation id

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "agent", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="firebreak"
            )
        )
        batch_op.add_column(sa.Column("correlation_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_runs_correlation_id"), ["correlation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_correlation_id"))
        batch_op.drop_column("correlation_id")
        batch_op.drop_column("agent")
