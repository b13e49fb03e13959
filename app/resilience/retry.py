"""Retries with exponential backoff and full jitter, always through the breaker.

Every attempt asks the breaker for a permit first, so a retry can never reach a
backend whose breaker opened meanwhile, and no retry sleeps past the run's
deadline. Only errors the caller classifies as transient are retried.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from app.resilience.breaker import CircuitBreakers

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    base_delay_s: float
    max_delay_s: float

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in ``[0, min(max, base * 2^(attempt-1))]`` (AWS's recommendation)."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


@dataclass
class Guard:
    """What every guarded call shares: the breakers, the retry policy, randomness and time."""

    breakers: CircuitBreakers
    retry: RetryPolicy
    rng: random.Random
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    monotonic: Callable[[], float] = time.monotonic

    async def call(
        self,
        backend: str,
        attempt: Callable[[], Awaitable[T]],
        *,
        is_transient: Callable[[BaseException], bool],
        slow_after_s: float | None = None,
        deadline: float | None = None,
        attempts: int | None = None,
        on_retry: Callable[[int, BaseException, float], None] = lambda *_: None,
    ) -> T:
        """Run ``attempt`` under ``backend``'s breaker, retrying transient failures.

        Raises :class:`~core.errors.CircuitOpen` when the breaker refuses (no call
        made) and otherwise the last attempt's error.
        """
        tries = attempts or self.retry.attempts
        number = 1
        while True:
            permit = self.breakers.acquire(backend)
            started = self.monotonic()
            try:
                result = await attempt()
            except asyncio.CancelledError:
                self.breakers.record(permit, "ignored")
                raise
            except Exception as exc:
                transient = is_transient(exc)
                self.breakers.record(permit, "failure" if transient else "ignored")
                delay = self.retry.delay(number, self.rng)
                out_of_time = deadline is not None and self.monotonic() + delay >= deadline
                if not transient or number >= tries or out_of_time:
                    raise
                on_retry(number, exc, delay)
                await self.sleep(delay)
                number += 1
                continue
            slow = slow_after_s is not None and self.monotonic() - started > slow_after_s
            self.breakers.record(permit, "slow" if slow else "success")
            return result
