"""shared entities, entity events and event handlings

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shared_entities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("shared_entities", schema=None) as batch_op:
        batch_op.create_index("ux_shared_entities_tenant_kind_key", ["tenant_id", "kind", "key"], unique=True)

    op.create_table(
        "entity_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("correlation_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("patch", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("entity_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_entity_events_correlation_id"), ["correlation_id"], unique=False)
        batch_op.create_index("ix_entity_events_tenant_id_id", ["tenant_id", "id"], unique=False)
        batch_op.create_index("ux_entity_events_entity_version", ["tenant_id", "kind", "key", "version"], unique=True)

    op.create_table(
        "event_handlings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handler", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("event_handlings", schema=None) as batch_op:
        batch_op.create_index("ux_event_handlings_handler_event", ["handler", "event_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("event_handlings", schema=None) as batch_op:
        batch_op.drop_index("ux_event_handlings_handler_event")

    op.drop_table("event_handlings")
    with op.batch_alter_table("entity_events", schema=None) as batch_op:
        batch_op.drop_index("ux_entity_events_entity_version")
        batch_op.drop_index("ix_entity_events_tenant_id_id")
        batch_op.drop_index(batch_op.f("ix_entity_events_correlation_id"))

    op.drop_table("entity_events")
    with op.batch_alter_table("shared_entities", schema=None) as batch_op:
        batch_op.drop_index("ux_shared_entities_tenant_kind_key")

    op.drop_table("shared_entities")
