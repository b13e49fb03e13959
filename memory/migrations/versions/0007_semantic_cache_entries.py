"""semantic cache entries

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cache_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("layer", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("route", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cache_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cache_entries_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cache_entries_key"), ["key"], unique=False)
        batch_op.create_index(batch_op.f("ix_cache_entries_last_used_at"), ["last_used_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cache_entries_route"), ["route"], unique=False)
        batch_op.create_index("ix_cache_entries_scope_id", ["scope", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cache_entries_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cache_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cache_entries_tenant_id"))
        batch_op.drop_index("ix_cache_entries_scope_id")
        batch_op.drop_index(batch_op.f("ix_cache_entries_route"))
        batch_op.drop_index(batch_op.f("ix_cache_entries_last_used_at"))
        batch_op.drop_index(batch_op.f("ix_cache_entries_key"))
        batch_op.drop_index(batch_op.f("ix_cache_entries_expires_at"))

    op.drop_table("cache_entries")
