"""The operator's views and the actions on them, as data: what every face (the CLI, the Python API) shows and does.

Each function takes the stores and the operator who asks, and applies the same checks whichever face calls it:
someone must be asking (``require_reader``), and rows of a tenant they may not see read as if they did not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from app.access import everyone, only_tenant, require_reader, require_seen
from app.containment.labels import export_jsonl
from app.dashboards import RunFilter, find_runs
from app.operators import Attention, Operator, find_attention, needs_attention, requeue_as
from app.services import Stores
from core.errors import FirebreakError
from memory.tables import CacheEntry, DeadLetter, Escalation, Run


class OfTenant(Protocol):
    @property
    def tenant_id(self) -> str | None: ...


R = TypeVar("R", bound=OfTenant)


def visible(operator: Operator, rows: Iterable[R]) -> list[R]:
    """The rows of tenants ``operator`` may see."""
    return [row for row in rows if operator.sees(row.tenant_id)]


def seen_run(stores: Stores, operator: Operator, run_id: str) -> Run:
    """The run ``run_id`` if the operator may see it (a trace, a replay, a plan all start here)."""
    require_reader(operator)
    run = stores.runs.get(run_id)
    if run is None:
        raise FirebreakError(f"no run {run_id!r} in this database")
    require_seen(operator, run.tenant_id, f"run {run_id}")
    return run


def runs_of(
    stores: Stores,
    operator: Operator,
    *,
    status: str | None = None,
    route: str | None = None,
    release: str | None = None,
    tenant: str | None = None,
    limit: int = 20,
) -> list[Run]:
    """The newest runs the operator may see, filtered by status, route, release and tenant."""
    require_reader(operator)
    which = RunFilter(status, route, release, only_tenant(operator, tenant))
    return visible(operator, find_runs(stores.engine, which, limit=limit))


def attention_of(
    stores: Stores, operator: Operator, tenant: str | None, *, now: float, limit: int = 100
) -> list[Attention]:
    """What needs an operator (of ``tenant``, or every tenant they see), each with what to do about it."""
    require_reader(operator)
    if tenant is not None:
        require_seen(operator, tenant, f"tenant {tenant!r}")
    items = needs_attention(stores.engine, operator, now=now, limit=limit)
    return [item for item in items if tenant in (None, item.tenant_id)]


def seen_dead_letter(stores: Stores, operator: Operator, letter_id: int) -> DeadLetter:
    """One dead letter with everything attached, if the operator may see it."""
    require_reader(operator)
    letter = stores.queue.dead_letter(letter_id)
    if letter is None:
        raise FirebreakError(f"no dead letter {letter_id}")
    require_seen(operator, letter.tenant_id, f"dead letter {letter_id}")
    return letter


def requeue_of(stores: Stores, operator: Operator, target: str | None, *, now: float) -> tuple[int, int]:
    """Requeue ``target`` (a run id or event:<dead letter id>), or with None everything the view says to requeue
    that the operator may see; each audited. Returns (requeued, tried)."""
    # One named target is found whoever owns it, then refused (and recorded) if it is another tenant's.
    targets = (
        [find_attention(stores.engine, everyone(operator), target, now=now)]
        if target is not None
        else [item for item in needs_attention(stores.engine, operator, now=now) if item.action == "requeue"]
    )
    attempts = stores.settings.queue.max_attempts
    moved = sum(requeue_as(stores.queue, operator, item, now=now, max_attempts=attempts) for item in targets)
    return moved, len(targets)


def seen_escalation(stores: Stores, operator: Operator, escalation_id: str) -> Escalation:
    """One escalation (by id or a unique prefix), if the operator may see it."""
    require_reader(operator)
    row = stores.escalations.find(escalation_id)
    require_seen(operator, row.tenant_id, f"escalation {escalation_id}")
    return row


def labels_of(stores: Stores, operator: Operator) -> list[str]:
    """Every human answer the operator may see, as JSON lines of labeled data."""
    require_reader(operator)
    return export_jsonl(visible(operator, stores.escalations.answered()))


def cache_stats_of(stores: Stores, operator: Operator, *, now: float) -> list[dict[str, Any]]:
    """Live cache entries and hits per layer, tenant and route, of the tenants the operator sees."""
    require_reader(operator)
    return [row for row in stores.cache.stats(now=now) if operator.sees(row["tenant_id"])]


def cache_entries_of(
    stores: Stores, operator: Operator, *, tenant: str | None = None, limit: int = 20, now: float
) -> list[CacheEntry]:
    """The most recently used cached answers the operator may see, newest first."""
    require_reader(operator)
    which = only_tenant(operator, tenant)
    return visible(operator, stores.cache.recent(limit=limit, tenant_id=which, now=now))
