"""Alembic environment: the engine comes from Firebreak, never from an ini file.

The version table is the core's ``alembic_version``, or a tool package's own (see ``memory/migrate.py``).
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import memory.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from memory.migrate import lock_for_migration

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    lock_for_migration(connection)  # PostgreSQL: processes migrating at once take turns
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        version_table=context.config.attributes.get("version_table", "alembic_version"),
    )
    with context.begin_transaction():
        context.run_migrations()
