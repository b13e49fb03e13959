"""circuit breakers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "breaker_buckets",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("second", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("slow", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", "second"),
    )
    op.create_table(
        "breaker_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("from_state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("to_state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("breaker_transitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_breaker_transitions_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_breaker_transitions_name"), ["name"], unique=False)

    op.create_table(
        "breakers",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("open_until", sa.Float(), nullable=False),
        sa.Column("trips", sa.Integer(), nullable=False),
        sa.Column("permits_taken", sa.Integer(), nullable=False),
        sa.Column("permits_expire_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("breakers")
    with op.batch_alter_table("breaker_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_breaker_transitions_name"))
        batch_op.drop_index(batch_op.f("ix_breaker_transitions_at"))

    op.drop_table("breaker_transitions")
    op.drop_table("breaker_buckets")
