"""The Python API (``firebreak``) is the CLI one import away: the same data from the same database, the same
operator checks, the same audit rows.

Each probe runs a ``firebreak`` command (in this process, as tests/test_operators.py does) and its Python twin
on one real SQLite database holding three runs: one answered, and one of acme and one of globex that wait for a
reviewer before cancelling order 2.
"""

from __future__ import annotations

import ast
import json
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ScriptWriter, run
from sqlmodel import Session, select
from typer.testing import CliRunner

import firebreak
from app.operators import TOKEN_VARIABLE, authenticate, hash_token
from cli.main import cli
from core import errors
from core.config import OperatorsSettings, Settings
from firebreak import Agent, Console, OperatorRefused
from memory.engine import make_engine
from memory.tables import OperatorAction

CANCEL_ORDER_2 = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]}
TOKENS = {"ana": "ana-token-0001", "olga": "olga-token-0002"}
PEOPLE: dict[str, dict[str, Any]] = {
    "ana": {"role": "reviewer", "token_sha256": hash_token(TOKENS["ana"]), "tenants": ["acme"]},
    "olga": {"role": "operator", "token_sha256": hash_token(TOKENS["olga"])},
}
RELEASE_V2 = {"v2": {"route": "scripted/v2", "system_prompt": "You are version two."}}


def plain(data: Any) -> Any:
    """``data`` as the CLI's ``--json`` prints it."""
    return json.loads(json.dumps(data, default=str))


def audit_rows(database_url: str) -> list[dict[str, Any]]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            found = session.exec(select(OperatorAction).order_by(OperatorAction.id)).all()  # type: ignore[arg-type]
            return [row.model_dump(exclude={"id", "created_at"}) for row in found]
    finally:
        engine.dispose()


@dataclass
class Deployment:
    database_url: str
    config: Path
    settings: Settings  # the same configuration as ``config``, for the Python side
    answered: str  # an answered run of acme
    waiting: dict[str, str]  # tenant -> its waiting run
    escalations: dict[str, str]  # tenant -> the escalation its run waits on
    write_script: ScriptWriter

    def firebreak(self, *args: str, token: str | None = None, script: str | None = None) -> Any:
        """Run a command as the owner of ``token`` (None: the local person, an admin here)."""
        env = {"FIREBREAK_DATABASE_URL": self.database_url, "FIREBREAK_CONFIG": str(self.config)}
        env[TOKEN_VARIABLE] = token or ""
        env["FIREBREAK_SCRIPT"] = script or ""
        return CliRunner().invoke(cli, list(args), env=env)

    def cli_json(self, *args: str, token: str | None = None) -> Any:
        done = self.firebreak(*args, "--json", token=token)
        assert done.exit_code == 0, done.output
        return json.loads(done.stdout)

    def console(self, token: str | None = None) -> Console:
        return Console(self.settings, token=token)


@pytest.fixture
def deployment(
    sqlite_url: str, tmp_path: Path, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> Deployment:
    script = write_script(
        {"text": "Paris."}, CANCEL_ORDER_2, {"text": "0.4"}, CANCEL_ORDER_2, {"text": "0.4"}, name="setup.jsonl"
    )
    overrides: dict[str, Any] = {"operators": {"local_role": "admin", "people": PEOPLE}, "releases": RELEASE_V2}

    async def ask() -> tuple[str, dict[str, Any]]:
        async with Agent.open(make_settings(sqlite_url, script=script, **overrides)) as agent:
            paris = await agent.ask("What is the capital of France?", tenant_id="acme", route="scripted/demo")
            return paris.run_id, {
                tenant: await agent.ask("Cancel order 2", tenant_id=tenant, user_id="u1", route="scripted/demo")
                for tenant in ("acme", "globex")
            }

    answered, waiting = run(ask())
    config = tmp_path / "deployment.toml"
    people = "".join(
        f'[operators.people.{name}]\nrole = "{entry["role"]}"\ntoken_sha256 = "{entry["token_sha256"]}"\n'
        + (f"tenants = {json.dumps(entry['tenants'])}\n" if "tenants" in entry else "")
        for name, entry in PEOPLE.items()
    )
    release = '[releases.v2]\nroute = "scripted/v2"\nsystem_prompt = "You are version two."\n'
    config.write_text(f'{release}[operators]\nlocal_role = "admin"\n{people}', encoding="utf-8")
    return Deployment(
        sqlite_url,
        config,
        make_settings(sqlite_url, **overrides),
        answered,
        {tenant: result.run_id for tenant, result in waiting.items()},
        {tenant: result.escalations[0]["id"] for tenant, result in waiting.items()},
        write_script,
    )


# --- the package --------------------------------------------------------------------------------------------------


def test_every_public_name_is_the_object_its_module_defines_not_a_copy():
    for name in firebreak.__all__:
        module = __import__(firebreak._LAZY[name], fromlist=[name])

        assert getattr(firebreak, name) is getattr(module, name), name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Agnet'"):
        firebreak.Agnet  # noqa: B018


def test_every_error_users_catch_is_exported():
    assert set(errors.__all__) <= set(firebreak.__all__)
    assert issubclass(firebreak.OperatorRefused, firebreak.FirebreakError)


def test_type_checkers_see_exactly_the_public_names():
    tree = ast.parse(Path(firebreak.__file__).read_text(encoding="utf-8"))
    (block,) = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    typed = {
        (alias.name, node.module) for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }

    assert typed == set(firebreak._LAZY.items())


# --- each view: the Python twin returns what the command prints ---------------------------------------------------

VIEWS: dict[str, tuple[tuple[str, ...], Callable[[Console, Deployment], Any]]] = {
    "runs": (("runs",), lambda c, d: [row.model_dump() for row in c.runs()]),
    "runs of a status": (
        ("runs", "--status", "waiting"),
        lambda c, d: [r.model_dump() for r in c.runs(status="waiting")],
    ),
    "dlq list": (("dlq", "list"), lambda c, d: [item.as_dict() for item in c.unclean()]),
    "runs --unclean": (("runs", "--unclean"), lambda c, d: [item.as_dict() for item in c.unclean()]),
    "breakers": (("breakers",), lambda c, d: [row.model_dump() for row in c.breakers()]),
    "budgets": (("budgets",), lambda c, d: [asdict(line) for line in c.budgets()]),
    "cache stats": (("cache", "stats"), lambda c, d: c.cache_stats()),
    "canary status": (("canary", "status"), lambda c, d: c.canary_status()),
    "operators audit": (("operators", "audit"), lambda c, d: [row.model_dump() for row in c.audit()]),
}
PER_RUN: dict[str, tuple[tuple[str, ...], Callable[[Console, str], Any]]] = {
    "trace show": (
        ("trace", "show"),
        lambda c, run_id: {
            "run_id": run_id,
            "trace_id": c.trace(run_id).run.trace_id,
            "spans": [span.model_dump() for span in c.trace(run_id).spans],
        },
    ),
    "trace replay": (
        ("trace", "replay"),
        lambda c, run_id: {
            "run_id": run_id,
            "correlation_id": c.trace(run_id).run.correlation_id or run_id,
            "changes": [event.model_dump() for event in c.replay(run_id)],
        },
    ),
    "plan show": (("plan", "show"), lambda c, run_id: c.plan(run_id)),
}


@pytest.mark.parametrize("view", VIEWS)
def test_a_view_returns_what_its_command_prints(deployment: Deployment, view: str):
    args, twin = VIEWS[view]

    with deployment.console() as console:
        assert plain(twin(console, deployment)) == deployment.cli_json(*args)


@pytest.mark.parametrize("view", PER_RUN)
def test_a_run_view_returns_what_its_command_prints(deployment: Deployment, view: str):
    args, twin = PER_RUN[view]

    with deployment.console() as console:
        assert plain(twin(console, deployment.answered)) == deployment.cli_json(*args, deployment.answered)


def test_the_views_compared_hold_rows(deployment: Deployment):
    with deployment.console() as console:
        assert len(console.runs()) == 3
        assert {item.run_id for item in console.unclean()} == set(deployment.waiting.values())
        assert "invoke_agent" in console.trace(deployment.answered).text


def test_escalations_list_and_show_return_what_their_commands_print(deployment: Deployment):
    async def listed() -> list[Any]:
        async with Agent.open(deployment.settings) as agent:
            with deployment.console() as console:
                return [row.model_dump() for row in await console.escalations(agent, "all")]

    shown = deployment.cli_json("escalations", "list", "--status", "all")

    assert plain(run(listed())) == shown and len(shown) == 2
    escalation = deployment.escalations["acme"]
    with deployment.console() as console:
        one = console.escalation(escalation[:8]).model_dump()
    done = deployment.firebreak("escalations", "show", escalation[:8])
    assert plain(one) == json.loads(done.stdout)


def test_context_ops_and_labels_read_the_stores_the_commands_read(deployment: Deployment):
    with deployment.console() as console:
        report = console.ops()
        context = console.context("no-such-thread")
        labels = console.labels()

    printed = deployment.cli_json("ops")
    assert plain(asdict(report)["by_route"]) == printed["by_route"] and printed["by_route"]
    assert context == [] and deployment.cli_json("context", "show", "no-such-thread") == []
    assert labels == [] and deployment.firebreak("labels", "export").stdout == ""


# --- operator checks: the same refusals and the same audit rows as the command -------------------------------------


def test_a_tenant_reviewer_sees_only_their_tenants_runs_and_not_anothers_trace(deployment: Deployment):
    with deployment.console(TOKENS["ana"]) as ana:
        tenants = {row.tenant_id for row in ana.runs()}
        with pytest.raises(OperatorRefused, match="ana may not see run"):
            ana.trace(deployment.waiting["globex"])
        with pytest.raises(OperatorRefused, match="ana may not see"):
            ana.runs(tenant="globex")

    assert tenants == {"acme"}
    assert {row["tenant_id"] for row in deployment.cli_json("runs", token=TOKENS["ana"])} == tenants


FLEET_VIEWS: dict[str, tuple[tuple[str, ...], Callable[[Console], Any]]] = {
    "ops": (("ops",), lambda c: c.ops()),
    "breakers": (("breakers",), lambda c: c.breakers()),
    "breaker transitions": (("breakers",), lambda c: c.breaker_transitions()),
    "budgets": (("budgets",), lambda c: c.budgets()),
    "canary status": (("canary", "status"), lambda c: c.canary_status()),
}


@pytest.mark.parametrize("view", FLEET_VIEWS)
def test_a_tenant_reviewer_is_refused_fleet_wide_figures_by_the_command_and_by_python(
    deployment: Deployment, view: str
):
    args, twin = FLEET_VIEWS[view]

    done = deployment.firebreak(*args, token=TOKENS["ana"])
    with deployment.console(TOKENS["ana"]) as ana, pytest.raises(OperatorRefused, match="every tenant"):
        twin(ana)

    assert done.exit_code == 1 and "every tenant" in f"{done.output} {done.exception}"


def test_nobody_identified_may_read_or_act(deployment: Deployment, make_settings: Callable[..., Settings]):
    nobody = Console(make_settings(deployment.database_url, operators={"local_role": "", "people": PEOPLE}))

    with nobody, pytest.raises(OperatorRefused, match="must give a token"):
        nobody.runs()
    with nobody, pytest.raises(OperatorRefused, match="must give a token"):
        nobody.canary_promote()


def test_a_refused_canary_move_leaves_the_same_audit_row_as_the_command(deployment: Deployment):
    deployment.firebreak("canary", "rollback", "--reason", "complaints", token=TOKENS["ana"])
    with deployment.console(TOKENS["ana"]) as ana, pytest.raises(OperatorRefused, match="needs the operator role"):
        ana.canary_rollback(reason="complaints")

    by_cli, by_python = audit_rows(deployment.database_url)
    assert (by_cli.pop("via"), by_python.pop("via")) == ("cli", "api")  # the audit says which face acted
    assert by_cli == by_python
    assert (by_python["operator"], by_python["action"], by_python["allowed"]) == ("ana", "canary.rollback", False)


def test_answering_another_tenants_escalation_is_refused_like_the_command_and_the_run_still_waits(
    deployment: Deployment,
):
    globex = deployment.escalations["globex"]
    deployment.firebreak("escalations", "answer", globex, "approve", token=TOKENS["ana"])

    async def answer() -> None:
        async with Agent.open(deployment.settings) as agent:
            with deployment.console(TOKENS["ana"]) as ana:
                await ana.answer(agent, globex, "approve")

    with pytest.raises(OperatorRefused, match="ana may not act on tenant 'globex'"):
        run(answer())
    by_cli, by_python = audit_rows(deployment.database_url)
    assert (by_cli.pop("via"), by_python.pop("via")) == ("cli", "api")
    assert by_cli == by_python and by_python["allowed"] is False
    with deployment.console() as console:
        assert console.escalation(globex).status == "open"


def test_an_operator_approves_a_write_and_the_run_resumes_audited(
    deployment: Deployment, make_settings: Callable[..., Settings]
):
    resume = deployment.write_script({"text": "Order 2 is cancelled."}, name="resume.jsonl")
    settings = make_settings(deployment.database_url, script=resume, operators={"people": PEOPLE})

    async def answer() -> Any:
        async with Agent.open(settings) as agent:
            with Console(settings, token=TOKENS["olga"]) as olga:
                return await olga.answer(agent, deployment.escalations["acme"], "approve", note="checked")

    result = run(answer())

    assert (result.status, result.answer) == ("answered", "Order 2 is cancelled.")
    (row,) = audit_rows(deployment.database_url)
    assert (row["operator"], row["via"], row["action"], row["tenant_id"], row["allowed"], row["outcome"]) == (
        "olga",
        "api",
        "escalation.answer",
        "acme",
        True,
        "done",
    )


def test_a_reviewer_may_not_invalidate_the_cache_and_an_operator_may(deployment: Deployment):
    with deployment.console(TOKENS["ana"]) as ana, pytest.raises(OperatorRefused, match="needs the operator role"):
        ana.invalidate_cache(tenant_id="acme")
    with deployment.console(TOKENS["olga"]) as olga:
        cached = olga.cache_entries(tenant="acme")
        removed = olga.invalidate_cache(tenant_id="acme")

    assert [entry.text for entry in cached] == ["What is the capital of France?"]
    assert removed == 1 and deployment.cli_json("cache", "list", "--tenant", "acme") == []
    assert [(row["operator"], row["action"], row["allowed"]) for row in audit_rows(deployment.database_url)] == [
        ("ana", "cache.invalidate", False),
        ("olga", "cache.invalidate", True),
    ]


def test_a_canary_started_from_python_is_the_rollout_the_command_reports(deployment: Deployment):
    with deployment.console(TOKENS["olga"]) as olga:
        started = olga.canary_start("v2")
        promoted = olga.canary_promote()

    assert started["rollout"]["status"] == "running" and started["rollout"]["step"] == 0
    assert promoted["rollout"]["step"] == 1
    assert plain(promoted) == deployment.cli_json("canary", "status")
    assert [row["action"] for row in audit_rows(deployment.database_url)] == ["canary.start", "canary.promote"]


def test_a_waiting_run_is_not_requeued_and_the_reason_is_the_commands(deployment: Deployment):
    waiting = deployment.waiting["acme"]
    printed = deployment.firebreak("dlq", "requeue", waiting)

    with deployment.console() as console, pytest.raises(errors.FirebreakError) as refused:
        console.requeue(waiting)

    assert str(refused.value) == str(printed.exception)
    assert "not for requeueing" in str(refused.value)
    with deployment.console() as console:
        assert console.requeue_all() == (0, 0)


# --- getting a machine ready ----------------------------------------------------------------------------------------


def test_migrate_reports_the_revision_db_upgrade_prints(deployment: Deployment):
    revision = firebreak.migrate(deployment.settings)

    assert deployment.firebreak("db", "upgrade").stdout.strip() == f"database at revision {revision}"
    assert revision


def test_a_new_operators_token_authenticates_against_the_table_it_comes_with():
    made = firebreak.new_operator("ana", "reviewer", ("acme",))
    table = tomllib.loads(made.config)["operators"]["people"]
    found = authenticate(OperatorsSettings.model_validate({"local_role": "", "people": table}), made.token, via="cli")

    assert found is not None and (found.name, found.role, found.tenants) == ("ana", "reviewer", ("acme",))
    with pytest.raises(errors.FirebreakError, match="unknown role 'boss'"):
        firebreak.new_operator("bob", "boss")
