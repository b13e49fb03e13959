"""An operator moves a rollout: start, promote or roll back, each checked against their role and audited."""

from __future__ import annotations

from app.canary.controller import Canary
from app.operators import Operator, acting
from memory.audit import AuditLog
from memory.tables import Rollout


def start_as(canary: Canary, log: AuditLog, operator: Operator, release: str) -> Rollout:
    """Start rolling ``release`` out against the stable release, as ``operator``."""
    with acting(log, operator, "canary.start", target=release):
        return canary.start(release, by=operator.name)


def promote_as(canary: Canary, log: AuditLog, operator: Operator, *, full: bool = False) -> Rollout:
    """Advance the active rollout one step (or to 100% with ``full``), as ``operator``."""
    with acting(log, operator, "canary.promote", target="active rollout", detail="to 100%" if full else "one step"):
        return canary.promote(by=operator.name, full=full)


def rollback_as(canary: Canary, log: AuditLog, operator: Operator, *, reason: str = "rolled back by hand") -> Rollout:
    """Send all new traffic back to the control at once, as ``operator``."""
    with acting(log, operator, "canary.rollback", target="active rollout", detail=reason):
        return canary.rollback(by=operator.name, reason=reason)
