"""Alerts: a log line, a row, and an optional webhook, for things an operator must see now."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from memory.queue import QueueStore
from memory.tables import Alert

log = logging.getLogger("firebreak.alerts")


def raise_alert(
    store: QueueStore,
    kind: str,
    message: str,
    payload: dict[str, Any],
    *,
    webhook: str = "",
    clock: Callable[[], float] = time.time,
) -> Alert:
    """Record and announce an alert. A failing webhook is logged, never raised: alerting must not fail work."""
    alert = Alert(kind=kind, message=message, payload=payload, created_at=clock())
    store.alert(alert)
    log.warning("ALERT %s: %s", kind, message)
    if webhook:
        import httpx  # only here: a process that posts no alert never loads an HTTP client

        try:
            httpx.post(webhook, json={"kind": kind, "message": message, "payload": payload}, timeout=2.0)
        except httpx.HTTPError as exc:
            log.error("alert webhook %s failed: %s", webhook, exc)
    return alert
