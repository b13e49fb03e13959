"""Operator identity, roles and the audit log: who may answer escalations, requeue dead letters, move a
canary, invalidate the cache or raise a budget, on which tenants' data; every action, allowed or refused,
is a row of ``operator_actions``.

The probes run the real ``firebreak`` commands (in this process, for speed) on a real database holding two
tenants' runs that wait for a reviewer. A refusal keeps everything: the escalation stays open, the run
waits, the row says who was refused and why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ScriptWriter, run
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.operators import (
    ACTIONS,
    RANKS,
    TOKEN_VARIABLE,
    Operator,
    acting,
    answer_action,
    authenticate,
    cli_operator,
    hash_token,
)
from cli.main import cli
from core.config import OperatorsSettings, Settings
from core.errors import ConfigError, OperatorRefused
from graph.agent import Agent
from memory.audit import AuditLog
from memory.engine import make_engine
from memory.escalations import EscalationStore
from memory.migrate import upgrade
from memory.tables import Escalation, OperatorAction
from ui.app import login_check, needs_login

CANCEL_ORDER_2 = {"tool_calls": [{"name": "update_order", "arguments": {"order_id": 2, "status": "cancelled"}}]}
TOKENS = {"ana": "ana-token-0001", "olga": "olga-token-0002", "root": "root-token-0003"}
PEOPLE = {
    "ana": {"role": "reviewer", "token_sha256": hash_token(TOKENS["ana"]), "tenants": ["acme"]},
    "olga": {"role": "operator", "token_sha256": hash_token(TOKENS["olga"])},
    "root": {"role": "admin", "token_sha256": hash_token(TOKENS["root"])},
}


def operators(local_role: str = "") -> OperatorsSettings:
    return OperatorsSettings.model_validate({"local_role": local_role, "people": PEOPLE})


def rows(database_url: str) -> list[OperatorAction]:
    with Session(make_engine(database_url)) as session:
        return list(session.exec(select(OperatorAction).order_by(OperatorAction.id)).all())


# --- roles and tenants --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(RANKS))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_a_role_may_do_exactly_the_actions_at_or_below_its_rank(role: str, action: str) -> None:
    operator = Operator("someone", role, "cli")

    refusal = operator.refusal(action, "acme")

    assert (refusal is None) == (RANKS[role] >= RANKS[ACTIONS[action]]), refusal
    if refusal is not None:
        assert f"needs the {ACTIONS[action]} role" in refusal


def test_an_operator_limited_to_a_tenant_may_not_act_on_another_nor_on_every_tenant_at_once() -> None:
    ana = Operator("ana", "admin", "ui", tenants=("acme",))

    assert ana.refusal("dlq.requeue", "acme") is None
    assert ana.refusal("dlq.requeue", "globex") == "ana may not act on tenant 'globex'"
    assert "affects every tenant" in (ana.refusal("canary.promote", None) or "")


def test_nobody_identified_is_refused_with_how_to_identify() -> None:
    nobody = cli_operator(operators(local_role=""), {})

    assert nobody.role == "" and nobody.local
    assert f"must give a token ({TOKEN_VARIABLE})" in (nobody.refusal("escalation.answer", "acme") or "")


def test_a_token_names_its_operator_and_a_wrong_token_or_name_names_nobody() -> None:
    settings = operators()

    assert authenticate(settings, TOKENS["olga"], via="ui", name="olga") == Operator("olga", "operator", "ui")
    assert authenticate(settings, TOKENS["olga"], via="ui", name="root") is None
    assert authenticate(settings, "guess", via="ui") is None
    stranger = cli_operator(settings, {TOKEN_VARIABLE: "guess"})
    assert stranger.role == "" and "matches no [operators.people] entry" in stranger.problem


def test_approving_a_budget_breach_raises_a_limit_and_needs_an_admin() -> None:
    breach = Escalation(
        id="e1", run_id="r1", thread_id="t1", tenant_id="acme", type="targeted", trigger="budget_breach",
        audience="reviewer", reason="cap", question="Raise the cap once?", options=["raise", "stop"], status="open",
        created_at=0.0, due_at=1.0,
    )  # fmt: skip
    gate = breach.model_copy(update={"trigger": "low_confidence", "options": ["approve", "reject"]})
    assert answer_action(breach, "raise") == "limits.raise"
    assert answer_action(breach, "stop") == "escalation.answer"
    assert answer_action(gate, "approve") == "escalation.answer"
    assert Operator("olga", "operator", "cli").refusal("limits.raise", "acme") == (
        "olga is a operator; limits.raise needs the admin role"
    )


# --- the audit row ------------------------------------------------------------------------------------------


@pytest.fixture
def audit(database_url: str) -> AuditLog:
    engine = make_engine(database_url)
    upgrade(engine)
    return AuditLog(engine)


def test_a_refused_action_does_nothing_and_is_recorded_with_the_reason(audit: AuditLog, database_url: str) -> None:
    done: list[str] = []
    reviewer = Operator("ana", "reviewer", "cli", tenants=("acme",))

    with (
        pytest.raises(OperatorRefused, match="needs the operator role"),
        acting(audit, reviewer, "dlq.requeue", target="run-1", tenant_id="acme", clock=lambda: 100.0),
    ):
        done.append("requeued")

    assert done == []
    (row,) = rows(database_url)
    assert (row.operator, row.role, row.via, row.action, row.target, row.tenant_id, row.allowed) == (
        "ana",
        "reviewer",
        "cli",
        "dlq.requeue",
        "run-1",
        "acme",
        False,
    )
    assert row.outcome == "refused: ana is a reviewer; dlq.requeue needs the operator role"
    assert row.created_at == 100.0


def test_an_allowed_action_is_recorded_with_what_it_came_to_or_how_it_failed(
    audit: AuditLog, database_url: str
) -> None:
    olga = Operator("olga", "operator", "ui")

    with acting(audit, olga, "dlq.requeue", target="run-1", tenant_id="acme") as outcome:
        outcome.text = "no longer dead: nothing requeued"
    with (
        pytest.raises(RuntimeError, match="database went away"),
        acting(audit, olga, "canary.rollback", target="active rollout", detail="complaints"),
    ):
        raise RuntimeError("database went away")

    assert [(row.action, row.allowed, row.detail, row.outcome) for row in rows(database_url)] == [
        ("dlq.requeue", True, "", "no longer dead: nothing requeued"),
        ("canary.rollback", True, "complaints", "failed: database went away"),
    ]


# --- the UI's login -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "local_role", "login"),
    [
        ("127.0.0.1", "admin", False),
        ("localhost", "admin", False),
        ("::1", "admin", False),
        ("0.0.0.0", "admin", True),
        ("10.1.2.3", "admin", True),
        ("ui.example.com", "admin", True),
        ("127.0.0.1", "", True),
    ],
)
def test_the_ui_asks_for_a_login_off_loopback_or_without_a_local_role(
    make_settings: Callable[..., Settings], sqlite_url: str, host: str, local_role: str, login: bool
) -> None:
    settings = make_settings(sqlite_url, ui={"host": host}, operators={"local_role": local_role})

    assert needs_login(settings) == login


def test_a_ui_that_needs_a_login_refuses_to_start_without_operators_and_checks_name_and_token(
    make_settings: Callable[..., Settings], sqlite_url: str
) -> None:
    bare = make_settings(sqlite_url, ui={"host": "0.0.0.0"})
    with pytest.raises(ConfigError, match=r"\[operators.people\] is empty"):
        login_check(bare)

    check = login_check(make_settings(sqlite_url, ui={"host": "0.0.0.0"}, operators={"people": PEOPLE}))
    assert check("ana", TOKENS["ana"]) and not check("ana", TOKENS["root"]) and not check("", "")


# --- probes through the CLI ---------------------------------------------------------------------------------


@dataclass
class TwoTenants:
    """A database where one run of acme and one of globex wait for a reviewer, and a config naming the
    operators; ``firebreak(...)`` runs a command as the owner of ``token`` (None: the local person)."""

    database_url: str
    config: Path
    runs: dict[str, str]
    escalations: dict[str, str]
    write_script: ScriptWriter

    def firebreak(self, *args: str, token: str | None = None, script: str | None = None) -> Any:
        env = {"FIREBREAK_DATABASE_URL": self.database_url, "FIREBREAK_CONFIG": str(self.config)}
        env[TOKEN_VARIABLE] = token or ""
        if script is not None:
            env["FIREBREAK_SCRIPT"] = script
        return CliRunner().invoke(cli, list(args), env=env)

    def status(self, tenant: str) -> str:
        row = EscalationStore(make_engine(self.database_url)).get(self.escalations[tenant])
        assert row is not None
        return row.status


@pytest.fixture
def two_tenants(
    sqlite_url: str, tmp_path: Path, write_script: ScriptWriter, make_settings: Callable[..., Settings]
) -> TwoTenants:
    script = write_script(CANCEL_ORDER_2, {"text": "0.4"}, CANCEL_ORDER_2, {"text": "0.4"}, name="ask.jsonl")
    settings = make_settings(sqlite_url, script=script)

    async def ask() -> dict[str, Any]:
        async with Agent.open(settings) as agent:
            return {
                tenant: await agent.ask("Cancel order 2", tenant_id=tenant, user_id="u1", route="scripted/demo")
                for tenant in ("acme", "globex")
            }

    results = run(ask())
    config = tmp_path / "operators.toml"
    people = "".join(
        f'[operators.people.{name}]\nrole = "{entry["role"]}"\ntoken_sha256 = "{entry["token_sha256"]}"\n'
        + (f"tenants = {json.dumps(entry['tenants'])}\n" if "tenants" in entry else "")
        for name, entry in PEOPLE.items()
    )
    config.write_text(f'[operators]\nlocal_role = ""\n{people}', encoding="utf-8")
    return TwoTenants(
        sqlite_url,
        config,
        runs={tenant: result.run_id for tenant, result in results.items()},
        escalations={tenant: result.escalations[0]["id"] for tenant, result in results.items()},
        write_script=write_script,
    )


def test_without_a_token_or_a_local_role_operator_commands_are_refused_and_recorded(two_tenants: TwoTenants) -> None:
    answered = two_tenants.firebreak("escalations", "answer", two_tenants.escalations["acme"], "approve")
    promoted = two_tenants.firebreak("canary", "promote")
    listed = two_tenants.firebreak("escalations", "list")

    for result in (answered, promoted, listed):
        assert isinstance(result.exception, OperatorRefused), result.output
        assert "a person at this machine must give a token (FIREBREAK_OPERATOR_TOKEN)" in str(result.exception)
    assert two_tenants.status("acme") == "open"  # the run still waits for a reviewer
    refused = [(row.action, row.allowed, row.role) for row in rows(two_tenants.database_url)]
    assert refused == [("escalation.answer", False, ""), ("canary.promote", False, "")]


def test_a_wrong_token_is_refused_and_the_escalation_stays_open(two_tenants: TwoTenants) -> None:
    answered = two_tenants.firebreak("escalations", "answer", two_tenants.escalations["acme"], "approve", token="x")

    assert isinstance(answered.exception, OperatorRefused)
    assert "FIREBREAK_OPERATOR_TOKEN matches no [operators.people] entry" in str(answered.exception)
    assert two_tenants.status("acme") == "open"
    assert [(row.operator, row.allowed) for row in rows(two_tenants.database_url)] == [("unknown token", False)]


def test_a_tenant_reviewer_lists_and_reads_only_their_tenants_escalations_runs_and_traces(
    two_tenants: TwoTenants,
) -> None:
    ana = TOKENS["ana"]
    listed = two_tenants.firebreak("escalations", "list", "--status", "all", "--json", token=ana)
    runs = two_tenants.firebreak("runs", "--json", token=ana)
    own_trace = two_tenants.firebreak("trace", "show", two_tenants.runs["acme"], token=ana)
    other_trace = two_tenants.firebreak("trace", "show", two_tenants.runs["globex"], token=ana)
    other_escalation = two_tenants.firebreak("escalations", "show", two_tenants.escalations["globex"], token=ana)
    everyones = two_tenants.firebreak("runs", "--tenant", "globex", token=ana)

    assert listed.exit_code == 0, listed.output
    assert [row["tenant_id"] for row in json.loads(listed.stdout)] == ["acme"]
    assert {row["tenant_id"] for row in json.loads(runs.stdout)} == {"acme"}
    assert own_trace.exit_code == 0 and "invoke_agent" in own_trace.stdout
    for refused in (other_trace, other_escalation, everyones):
        assert isinstance(refused.exception, OperatorRefused) and "ana may not see" in str(refused.exception)
        assert "invoke_agent" not in refused.stdout and "Cancel order 2" not in refused.stdout


def test_a_tenant_reviewer_answers_their_tenants_escalation_but_not_anothers_nor_moves_a_canary(
    two_tenants: TwoTenants,
) -> None:
    ana, resume = TOKENS["ana"], two_tenants.write_script({"text": "Order 2 is cancelled."}, name="resume.jsonl")

    other = two_tenants.firebreak("escalations", "answer", two_tenants.escalations["globex"], "approve", token=ana)
    canary = two_tenants.firebreak("canary", "rollback", token=ana)
    own = two_tenants.firebreak(
        "escalations", "answer", two_tenants.escalations["acme"], "approve", "--json", token=ana, script=resume
    )

    assert isinstance(other.exception, OperatorRefused) and two_tenants.status("globex") == "open"
    assert isinstance(canary.exception, OperatorRefused) and "canary.rollback needs the operator role" in str(
        canary.exception
    )
    assert own.exit_code == 0, own.output
    assert json.loads(own.stdout)["status"] == "answered" and two_tenants.status("acme") == "answered"
    assert [
        (row.action, row.tenant_id, row.allowed, row.outcome.split(":")[0]) for row in rows(two_tenants.database_url)
    ] == [
        ("escalation.answer", "globex", False, "refused"),
        ("canary.rollback", None, False, "refused"),
        ("escalation.answer", "acme", True, "done"),
    ]


def test_the_audit_log_is_read_whole_by_an_admin_and_by_others_only_for_their_own_actions(
    two_tenants: TwoTenants,
) -> None:
    two_tenants.firebreak("canary", "promote", token=TOKENS["ana"])
    two_tenants.firebreak("dlq", "requeue", "--all", token=TOKENS["olga"])

    everything = two_tenants.firebreak("operators", "audit", "--json", token=TOKENS["root"])
    own = two_tenants.firebreak("operators", "audit", "--json", token=TOKENS["ana"])
    others = two_tenants.firebreak("operators", "audit", "--operator", "ana", token=TOKENS["olga"])

    assert [row["operator"] for row in json.loads(everything.stdout)] == ["ana"]
    # ana's own refused promotion names no tenant, and she reads it all the same.
    assert [(row["action"], row["allowed"]) for row in json.loads(own.stdout)] == [("canary.promote", False)]
    assert isinstance(others.exception, OperatorRefused) and "only their own actions" in str(others.exception)
