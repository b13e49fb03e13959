"""Circuit breakers shared by every worker through the database.

States and semantics follow resilience4j: a rolling window of whole-second
buckets counts calls, failures and slow calls while closed; the breaker opens
once the window holds ``minimum_calls`` and ``failure_threshold`` failures (or
``slow_call_threshold`` slow calls). Open fails fast until the cooldown ends;
then exactly ``half_open_permits`` probes are admitted, each taken by a
compare-and-set with an expiry so a probe that never returns cannot wedge the
breaker. A probe success closes it; a failure reopens it with a longer
cooldown. Ignored outcomes (client errors) count as neither and release their
permit. No lock is held around the protected call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from core.errors import CircuitOpen
from memory.breakers import BreakerRow, BreakerStore

Outcome = Literal["success", "failure", "slow", "ignored"]
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """One breaker's thresholds (``[breakers]`` in firebreak.toml)."""

    window_s: int
    minimum_calls: int
    failure_threshold: int
    slow_call_threshold: int
    cooldown_s: float
    cooldown_growth: float
    max_cooldown_s: float
    half_open_permits: int
    permit_ttl_s: float

    def cooldown(self, trips: int) -> float:
        return min(self.max_cooldown_s, self.cooldown_s * self.cooldown_growth ** max(trips - 1, 0))


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; ``probe`` when it is a half-open trial call."""

    name: str
    probe: bool
    issued_at: float = 0.0  # a probe's: its permit counts only while its lease (permit_ttl_s) lasts


@dataclass(frozen=True)
class Transition:
    name: str
    from_state: str
    to_state: str
    reason: str


class CircuitBreakers:
    """Every backend's breaker. ``clock`` is wall time (shared across machines) and injectable for tests."""

    def __init__(
        self,
        store: BreakerStore,
        policy: Callable[[str], BreakerPolicy],
        *,
        clock: Callable[[], float] = time.time,
        on_transition: Callable[[Transition], None] = lambda _: None,
    ) -> None:
        self.store = store
        self._policy = policy
        self._clock = clock
        self._on_transition = on_transition

    def acquire(self, name: str) -> Permit:
        """A permit for one call, or :class:`CircuitOpen` with no call made."""
        policy = self._policy(name)
        while True:
            now = self._clock()
            row = self.store.get(name, now)
            if row.state == CLOSED:
                return Permit(name, probe=False)
            stale = self._stale_deadline(row, policy, now)
            if stale is not None:
                self._change(row, stale, None, now)
                continue
            if row.state == OPEN:
                if now < row.open_until:
                    raise CircuitOpen(name, row.open_until - now)
                changes = {"state": HALF_OPEN, "permits_taken": 1, "permits_expire_at": now + policy.permit_ttl_s}
                if self._change(row, changes, "cooldown over: probing", now):
                    return Permit(name, probe=True, issued_at=now)
                continue
            taken = row.permits_taken if now < row.permits_expire_at else 0
            if taken >= policy.half_open_permits:
                raise CircuitOpen(name, row.permits_expire_at - now)
            changes = {"permits_taken": taken + 1, "permits_expire_at": now + policy.permit_ttl_s}
            if self._change(row, changes, None, now):
                return Permit(name, probe=True, issued_at=now)

    @staticmethod
    def _stale_deadline(row: BreakerRow, policy: BreakerPolicy, now: float) -> dict[str, object] | None:
        """A cooldown or a probe's lease that ends later than its full length from now was set by a clock that
        has since jumped back: left alone it would last as long as the jump (a day ahead: a day refusing every
        call). Such a deadline restarts from now at its full length; None when every deadline is plausible."""
        if row.state == OPEN and row.open_until > now + policy.cooldown(max(row.trips, 1)):
            return {"open_until": now + policy.cooldown(max(row.trips, 1))}
        if row.state == HALF_OPEN and row.permits_expire_at > now + policy.permit_ttl_s:
            return {"permits_expire_at": now + policy.permit_ttl_s}
        return None

    def record(self, permit: Permit, outcome: Outcome) -> None:
        """Count the outcome of a call made under ``permit``; may open or close the breaker."""
        now = self._clock()
        if permit.probe:
            self._settle_probe(permit, outcome, now)
        elif outcome != "ignored":
            self._count(permit.name, outcome, now)

    def _settle_probe(self, permit: Permit, outcome: Outcome, now: float) -> None:
        name = permit.name
        policy = self._policy(name)
        if outcome == "ignored" and now >= permit.issued_at + policy.permit_ttl_s:
            # Its lease ran out, so its permit may already count for a newer probe: freeing one now could admit
            # one probe too many. The shared lease expiry frees whatever is still counted.
            return
        while True:
            row = self.store.get(name, now)
            if row.state != HALF_OPEN:
                return  # another probe already decided
            if outcome == "success":
                changes = {"state": CLOSED, "trips": 0, "permits_taken": 0, "open_until": 0.0}
                reason = "probe succeeded"
            elif outcome == "ignored":
                changes, reason = {"permits_taken": max(row.permits_taken - 1, 0)}, None
            else:
                trips = row.trips + 1
                changes = {
                    "state": OPEN,
                    "trips": trips,
                    "permits_taken": 0,
                    "open_until": now + policy.cooldown(trips),
                }
                reason = f"probe {'was slow' if outcome == 'slow' else 'failed'}; cooldown {policy.cooldown(trips):g}s"
            if self._change(row, changes, reason, now):
                return

    def _count(self, name: str, outcome: Outcome, now: float) -> None:
        policy = self._policy(name)
        second = math.floor(now)
        self.store.count(name, second, failure=outcome == "failure", slow=outcome == "slow")
        if outcome == "success":
            return
        totals = self.store.window(name, second - policy.window_s + 1, second)
        if totals.calls < policy.minimum_calls:
            return
        if totals.failures >= policy.failure_threshold:
            reason = f"{totals.failures} failures in {totals.calls} calls within {policy.window_s}s"
        elif totals.slow >= policy.slow_call_threshold:
            reason = f"{totals.slow} slow calls in {totals.calls} calls within {policy.window_s}s"
        else:
            return
        row = self.store.get(name, now)
        if row.state == CLOSED:
            changes = {"state": OPEN, "trips": 1, "open_until": now + policy.cooldown(1), "permits_taken": 0}
            self._change(row, changes, reason, now)

    def _change(self, row: BreakerRow, changes: dict[str, object], reason: str | None, now: float) -> bool:
        if not self.store.compare_and_set(row, changes, reason=reason, now=now):
            return False
        new_state = str(changes.get("state", row.state))
        if reason is not None and new_state != row.state:
            self._on_transition(Transition(row.name, row.state, new_state, reason))
        return True
