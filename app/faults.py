"""Fault injection for rehearsing outages, configured in ``[faults."<model-or-tool>"]``.

The plan only decides *what* goes wrong; the caller turns the decision into
its own error type (a LiteLLM exception in the gateway, a tool error in the
tool runner), so an injected fault travels the same path as a real one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass

from core.config import ErrorKind, FaultSettings


@dataclass(frozen=True)
class Fault:
    """What to do to one call: wait, hang, and/or fail with ``error_kind``."""

    latency_s: float
    hang: bool
    error_kind: ErrorKind | None
    latency_after_s: float = 0.0

    async def delay(self) -> None:
        """Apply the added latency, or hang until the caller's timeout cancels us."""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.hang:
            await asyncio.Event().wait()


class FaultPlan:
    """Draws faults for named backends. ``rng`` is injected so tests are deterministic."""

    def __init__(self, faults: Mapping[str, FaultSettings], rng: random.Random | None = None) -> None:
        self._faults = dict(faults)
        self._rng = rng or random.Random()

    def draw(self, name: str) -> Fault | None:
        """The fault for this call to ``name``, or ``None`` when it should run normally."""
        settings = self._faults.get(name)
        if settings is None:
            return None
        fails = settings.error_rate > 0 and self._rng.random() < settings.error_rate
        return Fault(
            latency_s=settings.latency_ms / 1000,
            hang=settings.hang,
            error_kind=settings.error_kind if fails else None,
            latency_after_s=settings.latency_after_ms / 1000,
        )
