"""What an operator may see: the checks every face (the CLI, the Python API) makes before it shows a row.

Pure functions of an :class:`~app.operators.Operator`, so a face imports them without the service stack.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from core.errors import OperatorRefused

if TYPE_CHECKING:  # imported where used: the CLI starts without the service stack
    from app.operators import Operator


def require_reader(operator: Operator) -> Operator:
    """``operator``, who must be someone to read runs, traces, escalations, dead letters or the cache."""
    refusal = operator.read_refusal()
    if refusal is not None:
        raise OperatorRefused(refusal)
    return operator


def require_fleet_reader(operator: Operator) -> Operator:
    """``operator``, who must read every tenant: ops, breakers, budgets and the canary mix every tenant's figures
    (decision 0034), so an operator limited to some tenants is refused them, as in the UI."""
    refusal = operator.read_refusal(fleet=True)
    if refusal is not None:
        raise OperatorRefused(refusal)
    return operator


def require_seen(operator: Operator, tenant_id: str | None, what: str) -> None:
    """Refuse to show ``what`` of a tenant the operator may not see; it reads as if it did not exist."""
    if not operator.sees(tenant_id):
        raise OperatorRefused(f"{operator.name} may not see {what}")


def only_tenant(operator: Operator, tenant: str | None) -> str | None:
    """The tenant a listing is narrowed to: the one asked for (if seen), else an operator's only tenant."""
    if tenant is not None:
        require_seen(operator, tenant, f"tenant {tenant!r}")
        return tenant
    return operator.tenants[0] if len(operator.tenants) == 1 else None


def everyone(operator: Operator) -> Operator:
    """``operator`` able to see every tenant, to find a target: acting on it then checks their tenants."""
    return replace(operator, tenants=())
