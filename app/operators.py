"""Operators: who may act on runs, as what, on which tenants; and the audit row each action leaves.

An operator is a configured person (``[operators.people.NAME]``: a role, the SHA-256 of a token, the
tenants they may see) or a person at this machine (``local:<os user>`` in the CLI, ``local:ui`` in a UI
bound to loopback) with ``[operators] local_role``. Roles are ordered, reviewer < operator < admin, and
each action needs the least role ACTIONS names. An operator limited to tenants sees and acts on those
tenants' rows only, and never on what serves every tenant (a canary, the whole cache).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.config import OperatorsSettings, Role
from app.containment.escalation import APPROVALS
from app.errors import OperatorRefused
from memory.audit import AuditLog
from memory.cache import CacheStore
from memory.queue import QueueStore
from memory.tables import DeadLetter, Escalation, OperatorAction

if TYPE_CHECKING:
    from graph.agent import Agent, RunResult

TOKEN_VARIABLE = "FIREBREAK_OPERATOR_TOKEN"
RANKS: dict[str, int] = {"reviewer": 1, "operator": 2, "admin": 3}
ACTIONS: dict[str, Role] = {
    "escalation.answer": "reviewer",
    "dlq.requeue": "operator",
    "canary.start": "operator",
    "canary.promote": "operator",
    "canary.rollback": "operator",
    "cache.invalidate": "operator",
    # Approving a budget breach raises the run's cap: spending more is an admin's call.
    "limits.raise": "admin",
}


@dataclass(frozen=True)
class Operator:
    name: str
    role: str  # "" when nobody could be identified; ``problem`` says why
    via: str  # cli | ui
    tenants: tuple[str, ...] = ()  # empty: every tenant
    problem: str = ""
    local: bool = False  # the person at this machine, not a configured operator

    def sees(self, tenant_id: str | None) -> bool:
        """Whether this operator may see rows of ``tenant_id`` (rows of no tenant: only an unlimited one)."""
        return not self.tenants or tenant_id in self.tenants

    def read_refusal(self, *, fleet: bool = False) -> str | None:
        """Why this operator may not read a view, or None: nobody may read; ``fleet`` views mix every tenant's
        figures, so an operator limited to some tenants may not read them."""
        if not self.role:
            return f"reading this needs an operator: {self.problem}"
        if fleet and self.tenants:
            return f"{self.name} acts only for {', '.join(self.tenants)}; this view covers every tenant"
        return None

    def refusal(self, action: str, tenant_id: str | None) -> str | None:
        """Why this operator may not do ``action`` on ``tenant_id``'s data, or None if they may."""
        needed = ACTIONS[action]
        if not self.role:
            return f"{action} needs an operator: {self.problem}"
        if RANKS[self.role] < RANKS[needed]:
            return f"{self.name} is a {self.role}; {action} needs the {needed} role"
        if self.tenants and tenant_id is None:
            return f"{self.name} acts only for tenant(s) {', '.join(self.tenants)}; {action} here affects every tenant"
        if not self.sees(tenant_id):
            return f"{self.name} may not act on tenant {tenant_id!r}"
        return None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A token for a new operator: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def authenticate(settings: OperatorsSettings, token: str, *, via: str, name: str | None = None) -> Operator | None:
    """The configured operator whose token this is (and who is ``name``, when given), else None."""
    digest = hash_token(token)
    for person, entry in settings.people.items():
        # Compare every entry in constant time, so timing does not tell which names exist.
        if hmac.compare_digest(digest, entry.token_sha256) and name in (None, person):
            return Operator(person, entry.role, via, tuple(entry.tenants))
    return None


def configured(settings: OperatorsSettings, name: str, *, via: str) -> Operator:
    """The configured operator ``name`` (already authenticated, as by the UI's login)."""
    entry = settings.people.get(name)
    if entry is None:
        return Operator(name, "", via, problem=f"{name!r} is not in [operators.people]")
    return Operator(name, entry.role, via, tuple(entry.tenants))


def local(settings: OperatorsSettings, *, via: str) -> Operator:
    """The person at this machine: ``[operators] local_role``, or nobody when it is empty."""
    name = f"local:{getpass.getuser()}" if via == "cli" else f"local:{via}"
    problem = "[operators] local_role is empty, so a person at this machine must give a token" + (
        f" ({TOKEN_VARIABLE})" if via == "cli" else ""
    )
    return Operator(name, settings.local_role, via, problem="" if settings.local_role else problem, local=True)


def cli_operator(settings: OperatorsSettings, environ: Mapping[str, str]) -> Operator:
    """Who runs this CLI command: the owner of ``FIREBREAK_OPERATOR_TOKEN`` if set, else the local person."""
    token = environ.get(TOKEN_VARIABLE, "")
    if not token:
        return local(settings, via="cli")
    found = authenticate(settings, token, via="cli")
    if found is None:
        return Operator("unknown token", "", "cli", problem=f"{TOKEN_VARIABLE} matches no [operators.people] entry")
    return found


@dataclass
class Outcome:
    """What an allowed action came to; the caller may say more than "done" (nothing to requeue, say)."""

    text: str = "done"


@contextmanager
def acting(
    log: AuditLog,
    operator: Operator,
    action: str,
    *,
    target: str,
    tenant_id: str | None = None,
    detail: str = "",
    clock: Callable[[], float] = time.time,
) -> Iterator[Outcome]:
    """Check that ``operator`` may do ``action``, then record it: refused (raises OperatorRefused), done or failed."""

    def record(allowed: bool, outcome: str) -> None:
        log.record(
            OperatorAction(
                operator=operator.name[:128],
                role=operator.role,
                via=operator.via,
                action=action,
                target=target[:256],
                tenant_id=tenant_id,
                allowed=allowed,
                detail=detail,
                outcome=outcome,
                created_at=clock(),
            )
        )

    refusal = operator.refusal(action, tenant_id)
    if refusal is not None:
        record(False, f"refused: {refusal}")
        raise OperatorRefused(refusal)
    outcome = Outcome()
    try:
        yield outcome
    except Exception as exc:
        record(True, f"failed: {exc}")
        raise
    record(True, outcome.text)


def visible_actions(
    log: AuditLog, viewer: Operator, *, of: str | None = None, limit: int = 100
) -> list[OperatorAction]:
    """The audit rows ``viewer`` may read, newest first: an admin reads everyone's (of their tenants, if
    limited), anyone else only their own; ``of`` names whose."""
    if viewer.role != "admin":
        if of not in (None, viewer.name):
            raise OperatorRefused(f"{viewer.name} may read only their own actions (ask an admin for {of}'s)")
        of = viewer.name
    # One's own rows include one's refused fleet-wide attempts, which name no tenant.
    tenants = () if of == viewer.name else viewer.tenants
    return list(log.recent(limit=limit, operator=of, tenants=tenants))


def requeue_as(store: QueueStore, operator: Operator, letter: DeadLetter, *, now: float) -> bool:
    """Requeue ``letter``'s run as ``operator``, audited; False when it is no longer dead."""
    with acting(
        AuditLog(store.engine), operator, "dlq.requeue", target=letter.run_id, tenant_id=letter.tenant_id
    ) as outcome:
        moved = store.requeue(letter.run_id, now=now)
        if not moved:
            outcome.text = "no longer dead: nothing requeued"
    return moved


async def answer_as(
    agent: Agent, operator: Operator, escalation: Escalation, answer: str, *, note: str | None
) -> RunResult | None:
    """Answer ``escalation`` as ``operator``, audited (approving a budget breach is raising a limit)."""
    action = answer_action(escalation.trigger, answer)
    log = AuditLog(agent.services.engine)
    with acting(log, operator, action, target=escalation.id, tenant_id=escalation.tenant_id, detail=answer):
        return await agent.answer(escalation.id, answer, by=operator.name, note=note)


def invalidate_as(store: CacheStore, operator: Operator, *, now: float, **selectors: Any) -> int:
    """Remove the cache entries matching ``selectors`` (every entry when none) as ``operator``, audited.

    An entry named by id alone is checked against its own tenant, so nobody drops another tenant's entry.
    """
    tenant_id, entry_id = selectors.get("tenant_id"), selectors.get("entry_id")
    owner = tenant_id if tenant_id is not None or entry_id is None else store.owner(entry_id)
    target = json.dumps(selectors) if selectors else "all"
    with acting(AuditLog(store.engine), operator, "cache.invalidate", target=target, tenant_id=owner) as outcome:
        removed = store.invalidate(**selectors, now=now)
        outcome.text = f"removed {removed}"
    return removed


def answer_action(trigger: str, answer: str) -> str:
    """The action an answer is: approving a budget breach raises a limit; anything else answers."""
    if trigger == "budget_breach" and answer.strip().lower() in APPROVALS:
        return "limits.raise"
    return "escalation.answer"
