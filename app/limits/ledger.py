"""The blast-radius limiter: reserve before a call, settle after, never cross a cap.

Scopes are keyed by period, so no job ever resets a window: ``request:<run>``,
``session:<thread>``, ``day:<tenant>:<YYYY-MM-DD>`` (UTC). Resources are the
seed's table: tokens, tool_calls, db_mutations, emails, cost_usd.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from app.config import Caps, LimitSettings
from app.errors import BudgetExceeded
from memory.ledger import Entry, LedgerStore

RESOURCES = ("tokens", "tool_calls", "db_mutations", "emails", "cost_usd")


@dataclass(frozen=True)
class Scope:
    """Who is spending: the run, its session and its tenant."""

    run_id: str | None
    thread_id: str | None
    tenant_id: str


@dataclass(frozen=True)
class Reservation:
    id: str
    amounts: dict[str, float]


class BlastRadius:
    def __init__(self, store: LedgerStore, settings: LimitSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock

    def caps(self, scope: Scope) -> dict[str, Caps]:
        day = dt.datetime.fromtimestamp(self._clock(), dt.UTC).date().isoformat()
        caps = {f"day:{scope.tenant_id}:{day}": self.settings.day}
        if scope.thread_id:
            caps[f"session:{scope.thread_id}"] = self.settings.session
        if scope.run_id:
            caps[f"request:{scope.run_id}"] = self.settings.request
        return caps

    def reserve(self, scope: Scope, amounts: dict[str, float]) -> Reservation:
        """Hold ``amounts`` in every scope, or raise :class:`BudgetExceeded` with nothing held."""
        now = self._clock()
        self.store.release_expired(now)
        entries = [
            Entry(key, resource, amount, getattr(caps, resource))
            for key, caps in self.caps(scope).items()
            for resource, amount in amounts.items()
            if amount > 0
        ]
        reservation = Reservation(str(uuid.uuid4()), amounts)
        refusal = self.store.reserve(
            reservation.id, scope.run_id, entries, expires_at=now + self.settings.reservation_ttl_s, now=now
        )
        if refusal is not None:
            entry = refusal.entry
            raise BudgetExceeded(
                scope=entry.scope,
                resource=entry.resource,
                limit=entry.limit + refusal.granted,
                used=refusal.used + refusal.reserved,
                requested=entry.amount,
            )
        return reservation

    def settle(self, reservation: Reservation, actual: dict[str, float]) -> None:
        self.store.settle(reservation.id, actual, now=self._clock())

    def raise_once(self, scope: str, resource: str) -> float:
        """Raise ``scope``'s cap of ``resource`` by one more configured cap (a reviewer's answer to a breach).

        Returns the amount added. Only that scope (one request, one session or one day) gets the room.
        """
        caps = {"request": self.settings.request, "session": self.settings.session, "day": self.settings.day}
        amount = float(getattr(caps[scope.split(":", 1)[0]], resource))
        self.store.grant(scope, resource, amount, now=self._clock())
        return amount
