"""The read-tool layer of the cache: exact results of read tools declared ``cached``, per tenant or per user.

A tool declared ``@tool(kind="read", cached=True)`` is deterministic for its
arguments over a few minutes (a help-centre search, a price list): its rendered
result is kept for ``[cache.ttl_s] read_tool`` seconds under a key of tenant,
tool and arguments, and of the user when the result is theirs (a tool that
receives the ``ToolContext`` may read who asks, so its results are per user
unless it declares them ``shared``; ``app/tools/runner.py`` decides). Write
tools are never cached, and a write by a tenant drops all of that tenant's
cached reads, every user's included, since it may have changed what they return.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from memory.cache import READ_TOOL, CacheStore
from memory.tables import CacheEntry


def result_key(tenant_id: str, user_id: str | None, tool: str, arguments_digest: str) -> str:
    """The exact key of one read: another tenant, user (None: any user of the tenant), tool or argument is another
    key."""
    return hashlib.sha256(json.dumps([tenant_id, user_id, tool, arguments_digest]).encode()).hexdigest()


class ToolResultCache:
    def __init__(self, store: CacheStore, ttl_s: float, clock: Callable[[], float]) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock

    def get(self, tenant_id: str, user_id: str | None, tool: str, arguments_digest: str) -> str | None:
        """The cached result of this read for this tenant and user (None: shared by the tenant), if still fresh."""
        now = self._clock()
        entry = self.store.exact(READ_TOOL, result_key(tenant_id, user_id, tool, arguments_digest), now=now)
        if entry is None or entry.id is None:
            return None
        self.store.used(entry.id, now=now)
        return str(entry.payload["result"])

    def put(self, tenant_id: str, user_id: str | None, tool: str, arguments_digest: str, result: str) -> None:
        now = self._clock()
        self.store.add(
            CacheEntry(
                layer=READ_TOOL,
                scope=READ_TOOL,
                key=result_key(tenant_id, user_id, tool, arguments_digest),
                tenant_id=tenant_id,  # every user's entries carry the tenant: forget() drops them all
                route="",
                text=tool,
                payload={"result": result},
                created_at=now,
                expires_at=now + self.ttl_s,
                last_used_at=now,
            )
        )

    def forget(self, tenant_id: str) -> int:
        """Drop the tenant's cached reads, every user's (after one of its writes); returns how many went."""
        return self.store.invalidate(tenant_id=tenant_id, layer=READ_TOOL, now=self._clock())
