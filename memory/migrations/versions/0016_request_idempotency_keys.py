"""request idempotency keys; a queued run's route is empty unless its submitter chose one

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("request_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
    )
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False)
    # SQLite cannot drop a NOT NULL in place: batch mode copies the table.
    with op.batch_alter_table("queued_runs", schema=None) as batch_op:
        batch_op.alter_column("route", existing_type=sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True)


def downgrade() -> None:
    # Runs queued without a route ran on the release the canary assigned; before 0016 they named the default
    # route, which is "chat" in the shipped configuration.
    op.execute("UPDATE queued_runs SET route = 'chat' WHERE route IS NULL")
    with op.batch_alter_table("queued_runs", schema=None) as batch_op:
        batch_op.alter_column("route", existing_type=sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False)
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
