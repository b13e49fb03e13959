"""The blast-radius limiter and the rate limits: reserve before a call, settle after, never cross a cap.

Scopes are keyed by period, so no job ever resets a window: ``request:<run>``,
``session:<thread>``, ``day:<tenant>:<YYYY-MM-DD>`` (UTC) for the seed's table
(tokens, tool_calls, db_mutations, emails, cost_usd), and
``minute:tenant:<tenant>:<minute>``, ``minute:user:<tenant>:<user>:<minute>`` for
the gateway's rate limits (requests, tokens). One reservation covers them all,
in one transaction.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from core.config import LimitSettings, RateLimitSettings
from core.errors import BudgetExceeded, RateLimited
from memory.ledger import Entry, LedgerStore

RESOURCES = ("tokens", "tool_calls", "db_mutations", "emails", "cost_usd")
RATE_RESOURCES = ("requests", "tokens")
MINUTE = "minute:"
# Dead workers' holds are given back on a refusal (the only time they stand in the way) and, so that the
# operator views show what is really held, at least this many times per reservation TTL: not on every call.
SWEEPS_PER_TTL = 4


@dataclass(frozen=True)
class Scope:
    """Who is spending: the run, its session, its tenant and (for rate limits) its user."""

    run_id: str | None
    thread_id: str | None
    tenant_id: str
    user_id: str | None = None


@dataclass(frozen=True)
class Reservation:
    id: str
    amounts: dict[str, float]


class BlastRadius:
    def __init__(
        self,
        store: LedgerStore,
        settings: LimitSettings,
        *,
        rates: RateLimitSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.rates = rates
        self._clock = clock
        self._swept_at = -math.inf
        # Caps per scope kind, as plain dicts once: every model and tool call reads them.
        self._caps: dict[str, dict[str, float]] = {
            "day": settings.day.model_dump(),
            "session": settings.session.model_dump(),
            "request": settings.request.model_dump(),
        }
        if rates is not None:
            self._caps[f"{MINUTE}tenant"] = rates.tenant.model_dump()
            self._caps[f"{MINUTE}user"] = rates.user.model_dump()

    def caps(self, scope: Scope, now: float | None = None) -> dict[str, dict[str, float]]:
        """Every scope key this spender is capped in, with its caps per resource."""
        now = self._clock() if now is None else now
        caps = {self.day_scope(scope.tenant_id, now): self._caps["day"]}
        if scope.thread_id:
            caps[f"session:{scope.thread_id}"] = self._caps["session"]
        if scope.run_id:
            caps[f"request:{scope.run_id}"] = self._caps["request"]
        if self.rates is not None:
            minute = int(now // 60)
            caps[f"{MINUTE}tenant:{scope.tenant_id}:{minute}"] = self._caps[f"{MINUTE}tenant"]
            if scope.user_id:
                caps[f"{MINUTE}user:{scope.tenant_id}:{scope.user_id}:{minute}"] = self._caps[f"{MINUTE}user"]
        return caps

    def reserve(self, scope: Scope, amounts: dict[str, float]) -> Reservation:
        """Hold ``amounts`` in every scope that caps them, or raise with nothing held:
        :class:`RateLimited` for a per-minute limit, :class:`BudgetExceeded` for a budget."""
        now = self._clock()
        if now < self._swept_at or now - self._swept_at >= self.settings.reservation_ttl_s / SWEEPS_PER_TTL:
            self._release_expired(now)
        entries = [
            Entry(key, resource, amount, caps[resource])
            for key, caps in self.caps(scope, now).items()
            for resource, amount in amounts.items()
            if amount > 0 and resource in caps
        ]
        reservation = Reservation(str(uuid.uuid4()), amounts)
        expires_at = now + self.settings.reservation_ttl_s
        refusal = self.store.reserve(reservation.id, scope.run_id, entries, expires_at=expires_at, now=now)
        if refusal is not None and self._release_expired(now):  # a dead worker's hold may be what refused it
            refusal = self.store.reserve(reservation.id, scope.run_id, entries, expires_at=expires_at, now=now)
        if refusal is None:
            return reservation
        entry = refusal.entry
        if entry.scope.startswith(MINUTE):
            raise RateLimited(
                scope=entry.scope, resource=entry.resource, limit=entry.limit, retry_after_s=60 - now % 60
            )
        raise BudgetExceeded(
            scope=entry.scope,
            resource=entry.resource,
            limit=entry.limit + refusal.granted,
            used=refusal.used + refusal.reserved,
            requested=entry.amount,
        )

    def _release_expired(self, now: float) -> int:
        self._swept_at = now
        return self.store.release_expired(now, ttl_s=self.settings.reservation_ttl_s)

    def settle(self, reservation: Reservation, actual: dict[str, float]) -> None:
        self.store.settle(reservation.id, actual, now=self._clock())

    def day_scope(self, tenant_id: str, now: float | None = None) -> str:
        now = self._clock() if now is None else now
        return f"day:{tenant_id}:{dt.datetime.fromtimestamp(now, dt.UTC).date().isoformat()}"

    def record_saving(self, tenant_id: str, tokens: float, seconds: float) -> None:
        """Count what a cache hit saved in the tenant's day: uncapped tallies next to its budgets."""
        scope = self.day_scope(tenant_id)
        self.store.count(scope, "cache_saved_tokens", tokens, now=self._clock())
        self.store.count(scope, "cache_saved_s", seconds, now=self._clock())

    def cap_of(self, scope: str, resource: str) -> float | None:
        """The configured cap of ``resource`` in ``scope`` (before grants); None for an uncapped tally."""
        parts = scope.split(":", 2)
        kind = f"{MINUTE}{parts[1]}" if scope.startswith(MINUTE) else parts[0]
        return self._caps.get(kind, {}).get(resource)

    def raise_once(self, scope: str, resource: str) -> float:
        """Raise ``scope``'s cap of ``resource`` by one more configured cap (a reviewer's answer to a breach).

        Returns the amount added. Only that scope (one request, one session or one day) gets the room.
        """
        amount = self.cap_of(scope, resource)
        assert amount is not None, f"{scope} has no cap of {resource} to raise"
        self.store.grant(scope, resource, amount, now=self._clock())
        return amount
