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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from app.containment.escalation import answer_side
from core.config import OperatorsSettings, Role
from core.errors import FirebreakError, OperatorRefused
from core.status import RESUMABLE, RunStatus, is_unclean
from memory.audit import AuditLog
from memory.cache import CacheStore
from memory.escalations import EscalationStore
from memory.events import EventLog, is_event_letter
from memory.queue import QueueStore
from memory.runs import RunStore
from memory.tables import DeadLetter, Escalation, OperatorAction, QueuedRun, Run

TOKEN_VARIABLE = "FIREBREAK_OPERATOR_TOKEN"
# Faces a person runs in their own process (a command, a script): the local person is the account running it.
PROCESS_FACES = frozenset({"cli", "api"})
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
    via: str  # cli | api | ui | mcp | langgraph: the face the operator acted through, as audited
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


def new_operator(name: str, role: str, tenants: Sequence[str] = ()) -> tuple[str, str]:
    """A token for a new operator and the ``[operators.people]`` table that admits them: only its SHA-256."""
    if role not in RANKS:
        raise FirebreakError(f"unknown role {role!r}: use one of {', '.join(RANKS)}")
    token = new_token()
    entry = f'[operators.people.{json.dumps(name)}]\nrole = {json.dumps(role)}\ntoken_sha256 = "{hash_token(token)}"'
    return token, entry + (f"\ntenants = {json.dumps(list(tenants))}" if tenants else "")


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
    in_process = via in PROCESS_FACES
    name = f"local:{getpass.getuser()}" if in_process else f"local:{via}"
    problem = "[operators] local_role is empty, so a person at this machine must give a token" + (
        f" ({TOKEN_VARIABLE})" if in_process else ""
    )
    return Operator(name, settings.local_role, via, problem="" if settings.local_role else problem, local=True)


def cli_operator(settings: OperatorsSettings, environ: Mapping[str, str], *, via: str = "cli") -> Operator:
    """Who runs this command (``via`` "cli") or Python call (``via`` "api"): the owner of
    ``FIREBREAK_OPERATOR_TOKEN`` if set, else the local person."""
    token = environ.get(TOKEN_VARIABLE, "")
    if not token:
        return local(settings, via=via)
    found = authenticate(settings, token, via=via)
    if found is None:
        return Operator("unknown token", "", via, problem=f"{TOKEN_VARIABLE} matches no [operators.people] entry")
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


@dataclass(frozen=True)
class Attention:
    """A run (or an event's handling) that did not end with a clean answer, and what an operator can do.

    ``action`` is one of ACTION_KINDS: "requeue" (``firebreak dlq requeue TARGET``), "escalation" (it waits
    for, or asks, a person: ``detail`` names the escalation), "retrying" (the queue or its subscriber is still
    on it), "superseded" (its conversation went on without it) or "none" (a deliberate stop: ``detail`` says
    why nothing is to be requeued).
    """

    kind: str  # run | event
    target: str  # what `firebreak dlq requeue` takes: the run id, or event:<dead letter id>
    run_id: str | None
    tenant_id: str
    status: str
    entry: str  # queue | direct (the chat, `ask`, the Python API) | team:<role> | subscribe:<role>
    reason: str
    action: str
    detail: str
    at: float  # when it started (a run) or was dead-lettered (an event)
    letter_id: int | None = None  # its dead letter, if it has one

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ACTION_KINDS = ("requeue", "escalation", "retrying", "superseded", "none")
# Why a deliberate stop is not requeued (see core.status.RESUMABLE): resuming it runs nothing.
NOT_REQUEUED: dict[str, str] = {
    RunStatus.TERMINATED: "stopped by the safety breaker on purpose: running it again would repeat what was stopped",
    RunStatus.BUDGET_EXCEEDED: "stopped at a budget cap (a reviewer's stop, or a cap hit): raise the cap and ask again",
    RunStatus.STEP_LIMIT: "used all its tool steps: ask again, narrower",
    RunStatus.EMPTY_REPLY: "the model replied with nothing: ask again",
}


def _epoch(moment: datetime) -> float:
    # SQLite hands back naive datetimes; every timestamp Firebreak writes is UTC.
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def _short(ids: Iterable[str]) -> str:
    return ", ".join(escalation_id[:8] for escalation_id in ids)


def _run_attention(
    run: Run,
    job: QueuedRun | None,
    letter: DeadLetter | None,
    escalations: Sequence[Escalation],
    latest: str | None,
    event_letter: DeadLetter | None,
) -> Attention:
    """What a run that did not end cleanly needs, from its queue row, dead letter, escalations and thread."""
    entry = (
        "queue"
        if job is not None
        else f"subscribe:{run.agent}"
        if event_letter is not None
        else f"team:{run.agent}"
        if run.correlation_id not in (None, run.id)
        else "direct"
    )
    status = "abandoned" if run.status == RunStatus.RUNNING else run.status
    action, detail, target = "none", NOT_REQUEUED.get(run.status, ""), run.id
    if run.status == RunStatus.WAITING:
        pauses = [row.id for row in escalations if row.status == "open" and row.pauses_run]
        action, detail = "escalation", f"waiting on escalation {_short(pauses)}"
        if not pauses:
            action, detail = "retrying", "answered: resuming"
    elif run.status == RunStatus.REPEATED_FAILURE:
        asked = [row for row in escalations if row.trigger == "repeated_failure"]
        detail = f"review escalation {_short(row.id for row in asked)} ({asked[-1].status})" if asked else ""
        action = "escalation" if asked else "none"
    elif run.status in RESUMABLE or run.status == RunStatus.RUNNING or letter is not None:
        if job is not None and job.status in ("queued", "running"):
            action, detail = "retrying", f"in the queue: attempt {job.attempts} of {job.max_attempts}"
        elif event_letter is not None:
            action, detail = "retrying", f"its event is dead-lettered: requeue event:{event_letter.id}"
        elif job is None and latest not in (None, run.id):
            action, detail = "superseded", f"its conversation went on in run {latest}"
        else:
            action, detail = "requeue", "resumes from its checkpoint, same run id"
            detail += " (its process died)" if status == "abandoned" else ""
            detail += "; it was never queued: a worker runs it" if job is None else ""
    elif run.status == RunStatus.BUDGET_EXCEEDED:
        breaches = [row.id for row in escalations if row.trigger == "budget_breach"]
        detail += f" (escalation {_short(breaches)})" if breaches else ""
    return Attention(
        "run",
        target,
        run.id,
        run.tenant_id,
        status,
        entry,
        run.error or run.answer or "",
        action,
        detail,
        _epoch(run.created_at),
        letter.id if letter is not None else None,
    )


def _event_attention(letter: DeadLetter) -> Attention:
    role = str(letter.partial_state.get("handler", "")).rsplit(":", 1)[-1]
    run_id = letter.partial_state.get("run_id")
    detail = "the subscriber runs the handler again, with fresh attempts"
    return Attention(
        "event",
        f"event:{letter.id}",
        run_id,
        letter.tenant_id,
        "dead",
        f"subscribe:{role}",
        letter.reason,
        "requeue",
        detail,
        letter.created_at,
        letter.id,
    )


def _orphan_attention(letter: DeadLetter) -> Attention:
    """A queued run dead-lettered before it was ever recorded (its workers all died before it began)."""
    detail = "its workers died before it began: a worker starts it"
    return Attention(
        "run", letter.run_id, letter.run_id, letter.tenant_id, "dead", "queue", letter.reason, "requeue", detail,
        letter.created_at, letter.id,
    )  # fmt: skip


def needs_attention(
    engine: Engine, viewer: Operator, *, now: float, limit: int = 100, run_ids: Sequence[str] | None = None
) -> list[Attention]:
    """Every run (from any entry path) and event handling that did not end with a clean answer and that
    ``viewer`` may see, newest first, each with the action that fits: the operator's one view (``firebreak dlq
    list``, ``firebreak runs --unclean``, the UI's Runs & DLQ tab). ``run_ids`` picks those runs instead of
    the newest ``limit``. Every dead letter not yet requeued is in it, however old."""
    runs_store, queue = RunStore(engine), QueueStore(engine)
    tenant = viewer.tenants[0] if len(viewer.tenants) == 1 else None
    letters = [letter for letter in queue.dead_letters(tenant_id=tenant) if viewer.sees(letter.tenant_id)]
    event_letters = [letter for letter in letters if is_event_letter(letter)]
    run_letters = {letter.run_id: letter for letter in letters if not is_event_letter(letter)}
    by_event_run = {str(letter.partial_state.get("run_id")): letter for letter in event_letters}
    if run_ids is None:
        found = list(runs_store.unclean(now=now, limit=limit, tenant_id=tenant))
        listed = {run.id for run in found}
        found += [run for run_id in run_letters.keys() - listed if (run := runs_store.get(run_id)) is not None]
    else:
        found = [run for run_id in run_ids if (run := runs_store.get(run_id)) is not None]
    found = [run for run in found if viewer.sees(run.tenant_id)]
    jobs = queue.jobs(run.id for run in found)
    latest = runs_store.latest_runs(run.thread_id for run in found)
    escalations = EscalationStore(engine)
    items = [
        _run_attention(
            run,
            jobs.get(run.id),
            run_letters.get(run.id),
            escalations.for_run(run.id),
            latest.get(run.thread_id),
            by_event_run.get(run.id),
        )
        for run in found
        if run_ids is not None or is_unclean(run.status) or run.status == RunStatus.RUNNING or run.id in run_letters
    ]
    recorded = {run.id for run in found}
    items += [
        _orphan_attention(letter)
        for run_id, letter in run_letters.items()
        if run_id not in recorded and (run_ids is None or run_id in run_ids)
    ]
    if run_ids is None:
        items += [_event_attention(letter) for letter in event_letters]
    return sorted(items, key=lambda item: item.at, reverse=True)


def find_attention(engine: Engine, viewer: Operator, target: str, *, now: float) -> Attention:
    """The view's entry for ``target`` (a run id, or event:<dead letter id>), or a one-line error."""
    if target.startswith("event:"):
        letter = QueueStore(engine).dead_letter(int(target.removeprefix("event:"))) if target[6:].isdigit() else None
        if letter is None or not is_event_letter(letter) or letter.requeued_at is not None:
            raise FirebreakError(f"{target} is not a dead-lettered event (`firebreak dlq list` shows them)")
        return _event_attention(letter)
    found = needs_attention(engine, viewer, now=now, run_ids=[target])
    if not found:
        raise FirebreakError(f"no run {target} that you may see")
    return found[0]


def requeue_as(queue: QueueStore, operator: Operator, item: Attention, *, now: float, max_attempts: int) -> bool:
    """Requeue ``item`` as ``operator``, audited: a dead event's handling gets fresh attempts; a run goes (back) to
    the queue under its own id, and a worker resumes it from its checkpoint. False when there was nothing to
    requeue any more; an item whose action is not "requeue" is refused with its reason."""
    if item.action != "requeue":
        raise FirebreakError(f"{item.target} is {item.status}, not for requeueing: {item.detail or item.action}")
    with acting(
        AuditLog(queue.engine), operator, "dlq.requeue", target=item.target, tenant_id=item.tenant_id
    ) as outcome:
        if item.kind == "event":
            letter = queue.dead_letter(item.letter_id or 0)
            moved = letter is not None and EventLog(queue.engine).requeue(letter, now=now)
        elif queue.get(item.target) is not None:
            moved = queue.requeue(item.target, now=now)
        else:
            run = RunStore(queue.engine).get(item.target)
            moved = run is not None and queue.enqueue(
                QueuedRun(
                    id=run.id,
                    thread_id=run.thread_id,
                    tenant_id=run.tenant_id,
                    user_id=run.user_id,
                    route=run.route,
                    question=run.question,
                    status="queued",
                    task_type="requeue",
                    max_attempts=max_attempts,
                    available_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        if not moved:
            outcome.text = "no longer dead: nothing requeued"
    return moved


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


def answer_action(escalation: Escalation, answer: str) -> str:
    """The action an answer is: approving a budget breach raises a limit; anything else answers."""
    if escalation.trigger == "budget_breach" and answer_side(escalation, answer) == "yes":
        return "limits.raise"
    return "escalation.answer"
