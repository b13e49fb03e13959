"""Shared fixtures: real databases (SQLite file and PostgreSQL), scripts, agents.

Every database test runs on both backends. Without a reachable PostgreSQL the
PostgreSQL half is skipped with a message that says how to enable it; under CI
(``CI=true``) it fails instead, so a green CI run always means both were tested.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

pytest_plugins = ["network_guard", "fake_provider"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
for _leaked in (
    "FIREBREAK_SCRIPT",
    "FIREBREAK_DATABASE_URL",
    "FIREBREAK_CONFIG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
):
    os.environ.pop(_leaked, None)

import psycopg  # noqa: E402
import pytest  # noqa: E402

from core.config import Settings, deep_merge, load_settings  # noqa: E402

# The seed's 0.15 s budget for database tools is the product default; on a loaded CI machine a PostgreSQL
# write can take longer, so tests whose subject is not timeouts give database tools a second (those that
# are about timeouts set their own budgets).
NOISY_MACHINE: dict[str, Any] = {"tools": {"class_timeouts_s": {"db": 1.0}}}
POSTGRES_URL = os.environ.get("FIREBREAK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
T = TypeVar("T")


def stop(process: subprocess.Popen[bytes], grace_s: float = 20) -> None:
    """Stop a server a test started: politely first, then for good."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from a synchronous test."""
    return asyncio.run(coro)


def unavailable(what: str, how: str) -> None:
    """Skip on a developer's machine, fail under CI: a missing dependency never passes silently in CI."""
    message = f"{what} is not available: {how}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true, so this is a failure, not a skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[str]:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        unavailable(
            f"PostgreSQL at {POSTGRES_URL}",
            f"{str(exc).strip().splitlines()[0]}. Start PostgreSQL or set FIREBREAK_TEST_POSTGRES_URL",
        )
    yield POSTGRES_URL


def _schema_url(base: str, schema: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private schema in the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'firebreak.db'}"
        return
    admin = request.getfixturevalue("postgres_admin")
    schema = f"fb_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield _schema_url(admin, schema)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file, for tests whose subject is not the storage backend."""
    return f"sqlite:///{tmp_path / 'firebreak.db'}"


ScriptWriter = Callable[..., str]


@pytest.fixture
def write_script(tmp_path: Path) -> ScriptWriter:
    """Write scripted-model replies (dicts) to a JSONL file and return its path."""

    def write(*replies: dict[str, Any], name: str = "script.jsonl") -> str:
        path = tmp_path / name
        path.write_text("".join(json.dumps(reply) + "\n" for reply in replies), encoding="utf-8")
        return str(path)

    return write


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """Settings from the real firebreak.toml with per-test overrides."""

    def make(database_url: str, **overrides: Any) -> Settings:
        return load_settings(database_url=database_url, **deep_merge(NOISY_MACHINE, overrides))

    return make


def approving_team(write_script: ScriptWriter, database_url: str, ticket: str, draft: str) -> str:
    """Create ``ticket`` (version 1) and script a team that researches it, drafts ``draft`` (version 2) and
    approves it (version 3), each write graded 0.95 by the gate; returns the script."""
    from app.services import prepare_database
    from memory.shared_state import EntityStore

    EntityStore(prepare_database(load_settings(database_url=database_url))).create(
        "default", "ticket", ticket, {"subject": "Where is my order?"}, actor="intake"
    )

    def change(version: int, changes: dict[str, Any]) -> dict[str, Any]:
        arguments = {"key": ticket, "version": version, "changes": changes}
        return {"tool_calls": [{"name": "ticket_update", "arguments": arguments}]}

    return write_script(
        {"expect": "research agent", "text": "Findings: the order was delivered."},
        {"expect": "writer agent", **change(1, {"draft": draft})},
        {"text": "0.95"},
        {"text": "Drafted."},
        {"expect": "reviewer agent", **change(2, {"status": "approved"})},
        {"text": "0.95"},
        {"text": "APPROVED"},
        name=f"team-{ticket}.jsonl",
    )


def order_2(database_url: str) -> tuple[str, list[Any]]:
    """Demo order 2's status and the completed ``update_order`` operations, read from the database: what the
    gate tests change, or must not."""
    from sqlmodel import Session, select

    from examples.support_desk.tables import DemoOrder
    from memory.engine import make_engine
    from memory.tables import Operation

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            order = session.get(DemoOrder, 2)
            assert order is not None
            completed = session.exec(
                select(Operation).where(Operation.tool == "update_order", Operation.status == "completed")
            ).all()
            return order.status, list(completed)
    finally:
        engine.dispose()
