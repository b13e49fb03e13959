"""The semantic cache: answers by meaning, within one scope, in two stages.

Stage 1 (recall): the query's embedding is searched in its scope's FAISS index
(exact inner product on normalised vectors; HNSW once a scope outgrows
``hnsw_above``) for ``candidates`` neighbours at ``recall_similarity`` or more.
Stage 2 (verification): a candidate is served only at ``serve_similarity`` or
more, when none of the configured lexical ``guards`` (``app/cache/guards.py``:
numbers, dates, entities…) finds a conflict between its question and the
query, and, with ``verify`` on, when the cross-encoder that reads both together
(``app/cache/verifier.py``) is sure they are the same question: P(same) at
``verified_at`` or more. An unsure candidate is a miss.

The scope is a digest of everything that must match for an answer to be
reusable (tenant, route and its models, system prompt, tool set, graph, the
conversation so far), so another tenant's or conversation's entries are never
even searched: scoping is part of the key, not a filter applied afterwards. A
lookup may search several scopes at once (a user's own and their tenant's,
see ``nodes/cache.py``); the hit says which one served it.
Entries live in the database (``cache_entries``); each process keeps an index
per scope and catches up with rows other workers added. A large scope's index is
saved to disk and loaded by the next process (``app/cache/scope_index.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.cache.guards import conflict, named
from app.cache.scope_index import ScopeIndex, ScopeIndexes
from app.cache.verifier import PairVerifier, read_by_meaning, same_words
from app.embeddings import Embedder
from core.config import CacheSettings
from memory.cache import EMBEDDING, LLM_RESPONSE, CacheStore
from memory.tables import CacheEntry

EMBEDDING_MODEL = "all-MiniLM-L6-v2"


def scope_key(**parts: Any) -> str:
    """A digest of the parts (tenant, route, models, system prompt, tools, context…): equal parts, equal scope."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Hit:
    scope: str  # the scope the entry was found in
    entry_id: int
    similarity: float
    matched: str  # the earlier question whose answer is served
    answer: str
    saved_tokens: int
    saved_s: float


@dataclass(frozen=True)
class Lookup:
    """What a lookup found: the hit, or why there was none (for the span and the eval)."""

    hit: Hit | None
    candidates: int  # entries at or above the recall threshold
    best_similarity: float | None  # the nearest entry in the scopes, whatever its similarity; None: all empty
    refused: list[str] = field(default_factory=list)
    probability: float | None = None  # the verifier's highest P(same) over the candidates; None: none verified


class SemanticCache:
    def __init__(
        self,
        store: CacheStore,
        settings: CacheSettings,
        embedder: Callable[[], Embedder],
        clock: Callable[[], float],
        verifier: Callable[[], PairVerifier] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._embedder = embedder  # a factory: the model loads on the first lookup, not at start-up
        if verifier is None:
            from app.cache.verifier import default_verifier

            verifier = default_verifier
        self._verifier = verifier  # a factory too; not called while ``verify`` is off
        self._guards = named(settings.guards)
        self._clock = clock
        self._indexes = ScopeIndexes(store, settings, model=EMBEDDING_MODEL, clock=clock)

    def warm(self) -> None:
        """Load the embedding model (and the verifier) now, so that no run's wall clock pays for it."""
        self._embedder()
        if self.settings.verify:
            self._verifier()

    # -- embeddings (the cache's own exact layer) --------------------------------------------------------

    def embed(self, text: str) -> np.ndarray:
        """The text's normalised embedding, from the embedding layer when it was computed before."""
        now = self._clock()
        key = hashlib.sha256(f"{EMBEDDING_MODEL}\n{text}".encode()).hexdigest()
        cached = self.store.exact(EMBEDDING, key, now=now)
        if cached is not None and cached.vector is not None:
            return np.frombuffer(cached.vector, dtype=np.float32)
        vector = np.asarray(self._embedder().encode([text])[0], dtype=np.float32)
        self.store.add(
            CacheEntry(
                layer=EMBEDDING,
                scope=EMBEDDING,
                key=key,
                tenant_id="",
                route="",
                text=text[:2000],
                vector=vector.tobytes(),
                created_at=now,
                expires_at=now + self.settings.ttl_s.embedding,
                last_used_at=now,
            )
        )
        return vector

    # -- the semantic layer ------------------------------------------------------------------------------

    def lookup(self, scopes: str | tuple[str, ...], text: str, *, route: str) -> Lookup:
        """Stage 1 then stage 2 over one scope or several searched as one; a hit is counted on its entry.

        Candidates from every scope are verified best first; between equally similar ones, the first scope
        given wins.
        """
        thresholds = self.settings.for_route(route)
        vector = self.embed(text)
        nearest: list[tuple[float, int, str]] = []
        for scope in (scopes,) if isinstance(scopes, str) else scopes:
            index = self._catch_up(scope, vector.shape[0])
            if index is None or index.size == 0:
                continue
            similarities, ids = index.index.search(vector.reshape(1, -1), min(self.settings.candidates, index.size))
            nearest += [(float(s), int(i), scope) for s, i in zip(similarities[0], ids[0], strict=True) if i >= 0]
        if not nearest:
            return Lookup(None, 0, None)
        nearest.sort(key=lambda candidate: -candidate[0])  # stable: ties keep the order of the scopes
        found = [candidate for candidate in nearest if candidate[0] >= thresholds.recall_similarity]
        now = self._clock()
        live = self.store.live([entry_id for _, entry_id, _ in found], now=now)
        # The nearest entry's similarity even below the recall stage: near misses are what calibration needs.
        best = nearest[0][0]
        refused: list[str] = []
        passed: list[tuple[float, int, str, CacheEntry]] = []
        readable = read_by_meaning(text)
        for similarity, entry_id, scope in found:
            entry = live.get(entry_id)
            if entry is None or entry.scope != scope:
                continue  # expired or invalidated since this process indexed it, or its id reused by another scope
            if similarity < thresholds.serve_similarity:
                refused.append(f"similarity {similarity:.2f} below {thresholds.serve_similarity:g}: {entry.text!r}")
                continue
            if not (readable and read_by_meaning(entry.text)) and not same_words(entry.text, text):
                refused.append(
                    f"unreadable: the models cannot read it for its meaning, only the same words: {entry.text!r}"
                )
                continue
            why = conflict(entry.text, text, self._guards)
            if why is not None:
                refused.append(f"{why}: {entry.text!r}")
                continue
            passed.append((similarity, entry_id, scope, entry))
        probabilities = (
            self._verifier().probabilities([(entry.text, text) for *_, entry in passed]).tolist()
            if self.settings.verify and passed
            else [1.0] * len(passed)
        )
        for (similarity, entry_id, scope, entry), probability in zip(passed, probabilities, strict=True):
            if probability < thresholds.verified_at:
                verdict = "unsure" if probability >= thresholds.different_below else "different"
                refused.append(f"verifier: {verdict} (P(same) {probability:.2f}): {entry.text!r}")
                continue
            self.store.used(entry_id, now=now)
            payload = entry.payload
            hit = Hit(
                scope,
                entry_id,
                similarity,
                entry.text,
                str(payload["answer"]),
                int(payload.get("tokens", 0)),
                float(payload.get("seconds", 0.0)),
            )
            return Lookup(hit, len(found), best, refused, _top(probabilities, self.settings.verify))
        return Lookup(None, len(found), best, refused, _top(probabilities, self.settings.verify))

    def put(
        self,
        scope: str,
        text: str,
        answer: str,
        *,
        tenant_id: str,
        route: str,
        tokens: int,
        seconds: float,
    ) -> int:
        """Store an answer for ``text`` in ``scope`` (with what it cost, to count what a hit saves)."""
        now = self._clock()
        vector = self.embed(text)
        entry_id = self.store.add(
            CacheEntry(
                layer=LLM_RESPONSE,
                scope=scope,
                tenant_id=tenant_id,
                route=route,
                text=text,
                vector=vector.tobytes(),
                payload={"answer": answer, "tokens": tokens, "seconds": round(seconds, 3)},
                created_at=now,
                expires_at=now + self.settings.ttl_s.llm_response,
                last_used_at=now,
            )
        )
        return entry_id

    def _catch_up(self, scope: str, dimension: int) -> ScopeIndex | None:
        """This process's index of ``scope``, caught up with the database (see ``ScopeIndexes.catch_up``)."""
        return self._indexes.catch_up(scope, dimension)


def _top(probabilities: list[float], verified: bool) -> float | None:
    return max(probabilities) if verified and probabilities else None


def hit_note(hit: Mapping[str, Any]) -> str:
    """One line saying that an answer came from the cache, why, and what it saved (chat and CLI)."""
    matched = hit["matched"] if len(hit["matched"]) <= 80 else hit["matched"][:79] + "…"
    return (
        f"cached (similarity {hit['similarity']:.2f}, matched: \u201c{matched}\u201d, "
        f"saved ~{hit['saved_tokens']} tokens, ~{hit['saved_s']:.1f} s)"
    )
