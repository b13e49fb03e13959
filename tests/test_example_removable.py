"""The support-desk demo is one deletable folder (issue 19): the core never imports it, migrates without it,
and answers a question with it gone; its tables live in its own migration history."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ScriptWriter
from sqlmodel import Session, col, select

from examples.support_desk.tables import DemoOrder
from memory.engine import make_engine
from memory.migrate import CORE, current_revision, head_revision, is_current, package_histories, upgrade

ROOT = Path(__file__).resolve().parent.parent
CORE_PACKAGES = ("core", "memory", "app", "graph", "nodes", "ui", "cli")
EXAMPLE = "examples.support_desk.tools"
EXAMPLE_LINE = f'modules = ["{EXAMPLE}"]'
EXAMPLE_TABLES = {"demo_orders", "outbox_emails"}
EXAMPLE_VERSIONS = "alembic_version_examples_support_desk"
SEEDED_ORDERS = [1, 2, 42, 1234, 1243]


def tables(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_core_migrates_without_the_example_and_creates_none_of_its_tables(database_url):
    engine = make_engine(database_url)
    try:
        assert upgrade(engine) == head_revision()
        assert is_current(engine)
    finally:
        engine.dispose()

    assert not tables(database_url) & (EXAMPLE_TABLES | {EXAMPLE_VERSIONS})
    assert {"runs", "alembic_version"} <= tables(database_url)


def test_the_example_migrates_in_its_own_history_and_seeds_its_orders(database_url):
    engine = make_engine(database_url)
    try:
        (history,) = package_histories([EXAMPLE, "app.tools.shared_state"])
        assert not is_current(engine, [EXAMPLE])
        upgrade(engine, [EXAMPLE])

        assert is_current(engine, [EXAMPLE])
        assert current_revision(engine, history) == head_revision(history) == "sd0001"
        assert current_revision(engine, CORE) == head_revision()
        with Session(engine) as session:
            assert [order.id for order in session.exec(select(DemoOrder).order_by(col(DemoOrder.id)))] == SEEDED_ORDERS
    finally:
        engine.dispose()

    assert EXAMPLE_TABLES | {EXAMPLE_VERSIONS} <= tables(database_url)


def _tables_as_before_the_split(engine: sa.Engine, *, with_dedup_columns: bool) -> None:
    """The demo tables as core revision 0001 made them (and 0003 extended them), holding a customer's own row."""
    metadata = sa.MetaData()
    orders = sa.Table(
        "demo_orders",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer", sa.String(128), nullable=False),
        sa.Column("item", sa.String(256), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("total_usd", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        *([sa.Column("last_op_id", sa.String(64))] if with_dedup_columns else []),
    )
    sa.Table(
        "outbox_emails",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.String(36), index=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("to", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *([sa.Column("dedup_key", sa.String(64), unique=True)] if with_dedup_columns else []),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            orders.insert().values(
                id=7, customer="Kept", item="Lamp", status="shipped", total_usd=10.0, updated_at=sa.func.now()
            )
        )


@pytest.mark.parametrize("with_dedup_columns", [True, False], ids=["at-0016", "before-0003"])
def test_a_database_made_before_the_split_keeps_its_demo_rows(database_url, with_dedup_columns):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        _tables_as_before_the_split(engine, with_dedup_columns=with_dedup_columns)
        upgrade(engine, [EXAMPLE])

        columns = {table: {c["name"] for c in sa.inspect(engine).get_columns(table)} for table in EXAMPLE_TABLES}
        assert "last_op_id" in columns["demo_orders"] and "dedup_key" in columns["outbox_emails"]
        with Session(engine) as session:
            assert [order.id for order in session.exec(select(DemoOrder))] == [7]  # found in place, not reseeded
        assert is_current(engine, [EXAMPLE])
    finally:
        engine.dispose()


# Runs in a copy of the core (no examples/ folder) with `examples` unimportable: the copy's firebreak.toml is the
# repository's with the README's one line dropped. Asks one question (its own script) on each database it is given: a
# fresh one, and one the demo ran on before its folder was deleted (it holds the example's tables and history).
WITHOUT_THE_EXAMPLE = """
import asyncio, sys
from pathlib import Path

sys.modules["examples"] = None  # the installed checkout's examples/ must not be found either
import core
from core.config import load_settings
from graph.agent import Agent
from memory.engine import make_engine
from memory.migrate import is_current

assert Path(core.__file__).resolve().is_relative_to(Path.cwd().resolve()), core.__file__


async def main(database_url, script):
    settings = load_settings(database_url=database_url, script=script, cache={"enabled": False})
    assert settings.tools.modules == []
    async with Agent.open(settings) as agent:
        result = agent.settle_script(await agent.ask("What is the capital of France?", route="scripted/demo"))
    assert is_current(make_engine(database_url))
    print(result.status, result.answer)


for database_url, script in zip(sys.argv[1::2], sys.argv[2::2], strict=True):
    asyncio.run(main(database_url, script))
"""


def test_the_core_answers_with_the_example_deleted(database_url, tmp_path: Path, write_script: ScriptWriter):
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    engine = make_engine(database_url)
    upgrade(engine, [EXAMPLE])  # the demo ran here before its folder was deleted
    engine.dispose()
    copy = tmp_path / "my_agent"
    for package in CORE_PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    config = (ROOT / "firebreak.toml").read_text(encoding="utf-8")
    assert config.count(EXAMPLE_LINE) == 1
    (copy / "firebreak.toml").write_text(config.replace(EXAMPLE_LINE, "modules = []"), encoding="utf-8")
    scripts = [write_script({"text": "Paris."}, name=f"{name}.jsonl") for name in ("fresh", "demo")]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_", "PYTHONPATH"))}

    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_EXAMPLE, fresh, scripts[0], database_url, scripts[1]],
        cwd=copy,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-2:] == ["answered Paris.", "answered Paris."]
    assert not tables(fresh) & EXAMPLE_TABLES
    assert tables(database_url) >= EXAMPLE_TABLES  # left in place, untouched
