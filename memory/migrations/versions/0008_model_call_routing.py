"""model call routing decisions: task class and fallback position on the audit row

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "task_class", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default="answer"
            )
        )
        batch_op.add_column(sa.Column("fallback_position", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("model_calls", schema=None) as batch_op:
        batch_op.drop_column("fallback_position")
        batch_op.drop_column("task_class")
