"""Who runs a command, and what of which tenant they may see (see [operators])."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from core.config import Settings
from core.errors import OperatorRefused

if TYPE_CHECKING:  # imported where used: the CLI starts without the service stack
    from app.operators import Operator


def operator_of(settings: Settings) -> Operator:
    """Who runs this command: the owner of FIREBREAK_OPERATOR_TOKEN, else the local person."""
    from app.operators import cli_operator

    return cli_operator(settings.operators, os.environ)


def reader_of(settings: Settings) -> Operator:
    """The operator, who must be someone to read runs, traces, escalations, dead letters or the cache."""
    operator = operator_of(settings)
    refusal = operator.read_refusal()
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
