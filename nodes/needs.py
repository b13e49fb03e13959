"""What a node may read of the services: the slices several nodes share.

``RunContext.services`` is the whole bag (``app.services.Services``). A node binds it once to the protocol that
names what it reads (``services: Escalating = ctx.services``) and hands that on to its helpers (a helper that reads
one part is given that part), so mypy rejects any other. Members are read-only properties: a node reads the
services, never replaces one, and a callable field (the clock, the alert hook) satisfies a property but not a
settable attribute. A node's wider needs are a protocol in its own module, built on these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from app.canary.controller import AlertHook
from app.gateway import Gateway
from core.config import Settings
from memory.escalations import EscalationStore
from memory.runs import RunStore


class Recording(Protocol):
    """Records the run's events."""

    @property
    def runs(self) -> RunStore: ...


class Configured(Recording, Protocol):
    """Reads the settings too."""

    @property
    def settings(self) -> Settings: ...


class Prompting(Configured, Protocol):
    """Calls a model through the gateway."""

    @property
    def gateway(self) -> Gateway: ...


class Escalating(Configured, Protocol):
    """Opens escalations: their policy is ``[escalation]``, their times the services' clock."""

    @property
    def escalations(self) -> EscalationStore: ...

    @property
    def clock(self) -> Callable[[], float]: ...


class Alerting(Escalating, Protocol):
    """Opens an escalation and raises an alert about it."""

    @property
    def alert(self) -> AlertHook: ...
