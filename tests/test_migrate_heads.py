"""The schema check reads revision ids from the migration files' source; it must agree with Alembic's own
reading on every history Firebreak ships, and on one with a branch and a merge."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from core.errors import ConfigError
from memory.migrate import CORE, History, alembic_config, head_revision, head_revisions, package_histories


def alembic_heads(history: History) -> frozenset[str]:
    config = alembic_config(sa.create_engine("sqlite://"), history)  # the engine is never connected: files only
    return frozenset(ScriptDirectory.from_config(config).get_heads())


@pytest.mark.parametrize("history", [CORE, *package_histories(["examples.support_desk.tools"])], ids=str)
def test_the_heads_read_from_source_are_alembics(history):
    assert head_revisions(history) == alembic_heads(history)
    assert head_revisions(history)  # a history with nothing in it would prove nothing


def migration(folder: Path, revision: str, down: str) -> None:
    (folder / f"{revision}.py").write_text(
        f'"""{revision}"""\n\nrevision: str = "{revision}"\ndown_revision = {down}\n\n'
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )


def test_a_branched_history_has_both_heads_until_a_merge_joins_them(tmp_path):
    history = History("alembic_version_branched", tmp_path)
    migration(tmp_path, "b0001", "None")
    migration(tmp_path, "b0002", '"b0001"')
    migration(tmp_path, "b0003", '"b0001"')
    assert head_revisions(history) == alembic_heads(history) == {"b0002", "b0003"}
    assert head_revision(history) == "b0002,b0003"

    migration(tmp_path, "b0004", '("b0002", "b0003")')

    assert head_revisions(history) == alembic_heads(history) == {"b0004"}


def test_a_revision_that_is_not_a_literal_is_refused_by_name(tmp_path):
    (tmp_path / "odd.py").write_text('revision = "x" + "y"\ndown_revision = None\n')

    with pytest.raises(ConfigError, match=r"odd.py: `revision` must be a literal"):
        head_revisions(History("alembic_version_odd", tmp_path))


def test_a_migration_file_that_does_not_parse_is_named_in_a_clear_error(tmp_path):
    (tmp_path / "broken.py").write_text('revision = "x"\ndef upgrade(:\n')

    with pytest.raises(ConfigError, match=r"migration file .*broken.py cannot be read"):
        head_revisions(History("alembic_version_broken", tmp_path))
