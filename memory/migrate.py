"""Schema migrations with Alembic, run in-process (``firebreak db upgrade``).

The core's history lives in ``memory/migrations``. A package holding a configured tool module may bring its own
tables in a ``migrations`` folder beside its modules (``examples/support_desk/migrations``): that history has its
own version table, so the core migrates and runs the same with the package deleted, and a database that once
held the package's tables keeps them untouched.

Every process that opens an agent checks that the schema is current. That check reads the revision ids from the
migration files' source and the version table with one query, without Alembic: importing Alembic (and Mako and
Pygments behind it) was a tenth of a cold ``firebreak ask``. Alembic runs the upgrades.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.config import Settings
from core.errors import ConfigError
from memory.sqlite_setup import setup_lock

if TYPE_CHECKING:
    from alembic.config import Config

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
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if history.versions is not None:
        config.set_main_option("version_locations", str(history.versions).replace("%", "%%"))
    config.attributes["engine"] = engine
    config.attributes["version_table"] = history.version_table
    return config


def head_revisions(history: History = CORE) -> frozenset[str]:
    """The revisions of ``history`` that no other revision revises (one, unless the history has branches)."""
    folder = history.versions or MIGRATIONS / "versions"
    revisions = _revisions(tuple(sorted((path.name, path.stat().st_mtime_ns) for path in folder.glob("*.py"))), folder)
    revised = {parent for parents in revisions.values() for parent in parents}
    return frozenset(revisions.keys() - revised)


@functools.lru_cache(maxsize=16)
def _revisions(listing: tuple[tuple[str, int], ...], folder: Path) -> dict[str, tuple[str, ...]]:
    """Each migration file's ``revision`` and the ``down_revision`` it revises, read from the source as Alembic
    reads them after importing the file; ``listing`` (names and modification times) keys the memo."""
    graph: dict[str, tuple[str, ...]] = {}
    for name, _ in listing:
        values = _assignments(folder / name, ("revision", "down_revision"))
        if "revision" not in values:
            continue  # not a migration (Alembic skips such files too)
        revision, parents = values["revision"], values.get("down_revision")
        parents = (parents,) if isinstance(parents, str) else parents or ()
        if not isinstance(revision, str) or not isinstance(parents, tuple | list):
            raise ConfigError(f"{folder / name}: `revision` must be a string and `down_revision` None, one or several")
        graph[revision] = tuple(str(parent) for parent in parents)
    return graph


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """The literal values a module assigns to ``names`` at its top level."""
    found: dict[str, object] = {}
    try:
        module = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise ConfigError(f"migration file {path} cannot be read: {exc}") from None
    for statement in module.body:
        match statement:
            case (
                ast.Assign(targets=[ast.Name(id=name)], value=value)
                | ast.AnnAssign(target=ast.Name(id=name), value=value)
            ) if name in names and value is not None:
                try:
                    found[name] = ast.literal_eval(value)
                except ValueError:
                    raise ConfigError(f"{path}: `{name}` must be a literal, as Alembic writes it") from None
    return found


def head_revision(history: History = CORE) -> str | None:
    """The head of ``history`` (None before its first migration); several heads are joined by commas."""
    return _named(head_revisions(history))


def current_revisions(engine: Engine, history: History = CORE) -> frozenset[str]:
    """The revisions the database's version table of ``history`` holds (none before its first upgrade)."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(history.version_table):
            return frozenset()
        table = sa.table(history.version_table, sa.column("version_num"))
        return frozenset(connection.execute(sa.select(table.c.version_num)).scalars())


def current_revision(engine: Engine, history: History = CORE) -> str | None:
    """The revision the database is at for ``history`` (None before its first upgrade), as :func:`head_revision`."""
    return _named(current_revisions(engine, history))


def _named(revisions: frozenset[str]) -> str | None:
    """Revisions as one name: None for none, several joined by commas in sorted order."""
    return ",".join(sorted(revisions)) or None


def upgrade(engine: Engine, modules: Iterable[str] = ()) -> str | None:
    """Apply every pending migration of the core, then of the packages holding these tool modules; returns
    the core's revision now in place. Processes migrating one database at once take turns (``migration_lock``,
    ``lock_for_migration``): the first applies the migrations, the others find them applied."""
    from alembic import command

    with migration_lock(engine):
        for history in [CORE, *package_histories(modules)]:
            command.upgrade(alembic_config(engine, history), "head")
    return current_revision(engine)


# PostgreSQL advisory-lock key of the migration lock: any fixed number all Firebreak processes agree on.
MIGRATION_LOCK_KEY = 0x46697265  # "Fire"


def lock_for_migration(connection: sa.Connection) -> None:
    """On PostgreSQL, wait for the migration lock inside the migrating transaction (``memory/migrations/env.py``).

    A transaction-level advisory lock: held until the migrations commit, released if the process dies, and taken
    on Alembic's own connection, so migrating holds no second one. Alembic reads the version table after the
    lock is taken, so a process that waited finds the migrations applied and does nothing.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold a SQLite file's set-up lock while migrating (``memory/sqlite_setup.py``): two workers (or two
    ``firebreak ask``) starting on a new database both saw it empty, and the second to create a table failed
    with "table … already exists". PostgreSQL takes its lock in the migrating transaction instead
    (:func:`lock_for_migration`); in-memory SQLite has one process and needs none.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    with setup_lock(Path(database)):
        yield


def is_current(engine: Engine, modules: Iterable[str] = ()) -> bool:
    """Whether the core and the packages holding these tool modules are all at their heads."""
    return all(
        current_revisions(engine, history) == head_revisions(history) for history in [CORE, *package_histories(modules)]
    )
