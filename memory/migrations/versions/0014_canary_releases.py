"""canary releases, rollouts, analyses; the release and arm of each run

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("control", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("active", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("started_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("step_started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("active"),
    )
    op.create_index(op.f("ix_rollouts_release"), "rollouts", ["release"], unique=False)
    op.create_index(op.f("ix_rollouts_status"), "rollouts", ["status"], unique=False)
    op.create_table(
        "canary_analyses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("verdict", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("canary_runs", sa.Integer(), nullable=False),
        sa.Column("control_runs", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_canary_analyses_rollout_id"), "canary_analyses", ["rollout_id"], unique=False)
    op.create_index(op.f("ix_canary_analyses_created_at"), "canary_analyses", ["created_at"], unique=False)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("release", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="base")
        )
        batch_op.add_column(sa.Column("arm", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("rollout_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rollout_step", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_runs_release"), ["release"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_rollout_id"), ["rollout_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_rollout_id"))
        batch_op.drop_index(batch_op.f("ix_runs_release"))
        batch_op.drop_column("rollout_step")
        batch_op.drop_column("rollout_id")
        batch_op.drop_column("arm")
        batch_op.drop_column("release")
    op.drop_index(op.f("ix_canary_analyses_created_at"), table_name="canary_analyses")
    op.drop_index(op.f("ix_canary_analyses_rollout_id"), table_name="canary_analyses")
    op.drop_table("canary_analyses")
    op.drop_index(op.f("ix_rollouts_status"), table_name="rollouts")
    op.drop_index(op.f("ix_rollouts_release"), table_name="rollouts")
    op.drop_table("rollouts")
    op.drop_table("releases")
