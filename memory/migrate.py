"""Schema migrations with Alembic, run in-process (``firebreak db upgrade``).

The core's history lives in ``memory/migrations``. A package holding a configured tool module may bring its own
tables in a ``migrations`` folder beside its modules (``examples/support_desk/migrations``): that history has its
own version table, so the core migrates and runs the same with the package deleted, and a database that once
held the package's tables keeps them untouched.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from core.config import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class History:
    """One line of revisions: the core's, or a tool package's (its own folder and version table)."""

    version_table: str = "alembic_version"
    versions: Path | None = None  # None: the core's memory/migrations/versions


CORE = History()


def tool_modules(settings: Settings) -> list[str]:
    """Every configured tool module (the agent's and the team's): their packages may bring migrations."""
    return [*settings.tools.modules, *settings.team.tool_modules]


def package_histories(modules: Iterable[str]) -> list[History]:
    """The histories of the packages that hold these tool modules and have a ``migrations`` folder."""
    found: dict[str, History] = {}
    for module in modules:
        for package in (module, module.rpartition(".")[0]):
            if not package or package in found:
                continue
            try:
                spec = importlib.util.find_spec(package)
            except ImportError:  # a module configured but missing: the tool registry reports it
                continue
            for location in (spec.submodule_search_locations or []) if spec else []:
                folder = Path(location) / "migrations"
                if folder.is_dir() and folder.resolve() != MIGRATIONS:
                    found[package] = History(f"alembic_version_{package.replace('.', '_')}", folder)
                    break
    return list(found.values())


def alembic_config(engine: Engine, history: History = CORE) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if history.versions is not None:
        config.set_main_option("version_locations", str(history.versions).replace("%", "%%"))
    config.attributes["engine"] = engine
    config.attributes["version_table"] = history.version_table
    return config


def head_revision(engine: Engine, history: History = CORE) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine, history)).get_current_head()


def current_revision(engine: Engine, history: History = CORE) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(
            connection, opts={"version_table": history.version_table}
        ).get_current_revision()


def upgrade(engine: Engine, modules: Iterable[str] = ()) -> str | None:
    """Apply every pending migration of the core, then of the packages holding these tool modules; returns
    the core's revision now in place."""
    for history in [CORE, *package_histories(modules)]:
        command.upgrade(alembic_config(engine, history), "head")
    return current_revision(engine)


def is_current(engine: Engine, modules: Iterable[str] = ()) -> bool:
    """Whether the core and the packages holding these tool modules are all at their heads."""
    return all(
        current_revision(engine, history) == head_revision(engine, history)
        for history in [CORE, *package_histories(modules)]
    )
