"""Getting a machine ready: `firebreak db upgrade`, `setup`, `doctor` and `operators add`, as functions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Settings, load_settings

if TYPE_CHECKING:  # imported where used: `import firebreak` stays cheap
    from graph.doctor import Check


@dataclass(frozen=True)
class NewOperator:
    """A new operator's token (shown once: only its SHA-256 is kept) and the table that admits them."""

    name: str
    token: str
    config: str  # the [operators.people.NAME] table to add to firebreak.toml


def migrate(settings: Settings | None = None) -> str | None:
    """Apply pending migrations to the configured database; the revision now (``firebreak db upgrade``)."""
    from app.services import migrate_database

    return migrate_database(settings if settings is not None else load_settings())


def setup(settings: Settings | None = None) -> tuple[Path, str | None]:
    """Assemble the embedded model file and migrate the database: (model path, revision) (``firebreak setup``)."""
    from app.gateway.model_files import assemble_model
    from app.services import migrate_database

    settings = settings if settings is not None else load_settings()
    path = assemble_model(settings.local_model.cache_path)
    return path, migrate_database(settings)


async def doctor(settings: Settings | None = None) -> list[Check]:
    """Check every configured store and model (``firebreak doctor``): each check's name, ok and detail."""
    from graph.doctor import run_checks

    return await run_checks(settings if settings is not None else load_settings())


def new_operator(name: str, role: str = "reviewer", tenants: tuple[str, ...] = ()) -> NewOperator:
    """A token for a new operator and their ``[operators.people]`` table (``firebreak operators add``)."""
    from app.operators import new_operator as make

    token, config = make(name, role, tenants)
    return NewOperator(name, token, config)
