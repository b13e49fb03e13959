"""Semantic-cache figures: search latency by scope size, a lookup of a fresh text, and a replayed workload.

Search: the real :class:`SemanticCache` (built by ``build_services``) over its real :class:`CacheStore` on a
temporary SQLite file. One scope is filled in bulk, rows inserted directly as ``put`` would write them but
without embedding each: random unit vectors, plus the ``STORED`` questions embedded by the cache's own model,
so that their paraphrases find candidates, read their rows, pass the guards and are served. The queries are
those paraphrases and as many unrelated questions (which recall nothing). Timed per size:

- ``search``: the FAISS search of the scope's index alone (the call ``lookup()`` makes), on query vectors
  embedded beforehand;
- ``lookup_embedded``: ``lookup()`` of a text whose embedding is already in the embedding layer, on the same cache
  with ``verify`` off, so no model runs: the embedding row read, the scope's ``max(id)``, the FAISS search, the
  candidates' rows, the guards and, on a hit, the hit count written;
- ``lookup_fresh``: the same lookup of a text never seen before (verifier off): plus the embedding model and
  the embedding row written, i.e. embed + search;
- ``lookup_fresh_verified``: ``lookup()`` with the verifier on, of a paraphrase never seen before, each of which
  has a candidate that the verifier reads: embed + search + verify;
- ``verifier``: the verifier alone on one (stored question, paraphrase) pair;
- ``embedding_model``: the embedding model alone on another unseen text, interleaved with ``lookup_fresh``.

``index_load_s`` is the first lookup in the scope, which reads every vector of the scope and builds its index
(flat up to ``[cache] hnsw_above``, HNSW above), then saves it in the background (``app/cache/scope_index.py``).
``index_save_s`` is one save of that index (write + rename). ``lookup_during_save`` is ``lookup_embedded``
while a save runs. ``new_process`` is the first lookup of the scope in a new process (a subprocess: the
``faiss`` import, the scope's ``max(id)``, the index, the search, the candidates' rows), of a text whose
embedding is stored, so no model loads: ``saved_s`` with the index file the first lookup saved, ``rebuilt_s``
with an empty index folder (the baseline: every vector read and indexed), and their ratio.

Workload: every ``FAQ`` question once, then again verbatim, then paraphrased, each in a new thread (the scope
holds the conversation so far), through the real agent on the default route (the embedded model), twice in
the same run: with the cache, then without it, each on a fresh SQLite database, each after one warm-up
question. Tokens are the runs' model-call audit rows (input + output); time is the questions' wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert

from app.cache.semantic import scope_key
from app.cache.verifier import default_verifier
from app.embeddings import default_embedder
from app.services import build_services
from core.config import load_settings
from core.status import RunStatus
from graph.agent import Agent
from memory.cache import CacheStore
from memory.tables import CacheEntry, table_of

SIZES = (10_000, 100_000)
DIMENSION = 384  # all-MiniLM-L6-v2
TENANT = "bench"
ROUTE = "chat"
SEARCH_ROUNDS = 25
EMBEDDED_ROUNDS = 5
INSERT_BATCH = 5_000

# Stored in every filled scope next to the random vectors; their variants below are served from them.
STORED = (
    "What is your refund policy?",
    "How long does standard shipping take?",
    "What are your opening hours on weekdays?",
    "How do I get a copy of my invoice?",
    "Do you ship to Canada?",
    "What payment methods do you accept?",
    "How do I contact customer support?",
    "Is there a warranty on electronics?",
    "Where can I find my order history?",
    "How do I log in to my account?",
    "What is the capital of France?",
    "Who wrote Romeo and Juliet?",
    "Why is the sky blue?",
    "What does HTTP stand for?",
    "What is photosynthesis?",
    "How does a refrigerator keep food cold?",
    "What is the speed of light?",
    "Who painted the Mona Lisa?",
    "What is machine learning?",
    "How do vaccines work?",
)
# Questions with nothing stored near them: recall finds no candidate.
UNRELATED = (
    "How do I make sourdough bread at home?",
    "What is the tallest mountain in Africa?",
    "Which programming language is best for beginners?",
    "How often should I water a cactus?",
    "What causes earthquakes?",
    "How do I tie a bowline knot?",
    "What is the difference between weather and climate?",
    "Why do cats purr?",
    "How do solar panels generate electricity?",
    "What is a black hole?",
    "How can I improve my handwriting?",
    "What is the history of the Olympic Games?",
    "Why do leaves change colour in autumn?",
    "How do noise cancelling headphones work?",
    "What is compound interest?",
    "How do bees make honey?",
    "What is the largest desert in the world?",
    "How does a compass work?",
    "What makes a good cup of coffee?",
    "Why is the ocean salty?",
)

# The replayed workload: questions the embedded model answers without a tool, and a paraphrase of each that
# the guards and the 0.70 serve threshold accept (checked with the cache's own embedder and guards).
FAQ = (
    ("What is the capital of France?", "Which city is the capital of France?"),
    ("Who painted the Mona Lisa?", "Which artist painted the Mona Lisa?"),
    ("Why is the sky blue?", "Why does the sky look blue?"),
    ("What does HTTP stand for?", "What is the full form of HTTP?"),
    ("What is photosynthesis?", "Can you explain what photosynthesis is?"),
    ("What is the largest planet in the solar system?", "Which planet is the biggest in the solar system?"),
    ("How does a refrigerator keep food cold?", "How do refrigerators keep food cold?"),
    ("What is machine learning?", "Explain what machine learning is."),
)
KINDS = ("first", "repeat", "paraphrase")
WARM_UP = "Say hello."  # loads the embedded model before the timed questions; not counted


def variant(text: str) -> str:
    """A paraphrase by wording only: "What is X?" becomes "hi, what is X" (a filler, no capital, no mark)."""
    return f"hi, {text[0].lower()}{text[1:].rstrip('?.')}"


def workload() -> list[tuple[str, str]]:
    """(kind, question): every FAQ question once, then each again verbatim, then each paraphrased."""
    return (
        [("first", first) for first, _ in FAQ]
        + [("repeat", first) for first, _ in FAQ]
        + [("paraphrase", paraphrase) for _, paraphrase in FAQ]
    )


# -- search latency ------------------------------------------------------------------------------------------


def _ms(samples: Sequence[float]) -> dict[str, float]:
    values = np.asarray(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p95_ms": round(float(np.percentile(values, 95)), 3),
        "samples": len(samples),
    }


def _timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Seconds ``call(*args, **kwargs)`` took, and what it returned."""
    started = time.perf_counter()
    result = call(*args, **kwargs)
    return time.perf_counter() - started, result


def _fill(store: CacheStore, scope: str, size: int, stored: np.ndarray, ttl_s: float) -> None:
    """``size`` rows in ``scope``: random unit vectors, with the ``STORED`` questions spread among them."""
    rng = np.random.default_rng(size)
    now = time.time()
    at = {int(position): index for index, position in enumerate(np.linspace(0, size - 1, len(STORED)))}
    table = table_of(CacheEntry)
    for start in range(0, size, INSERT_BATCH):
        count = min(INSERT_BATCH, size - start)
        vectors = rng.standard_normal((count, DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = []
        for offset in range(count):
            position = start + offset
            index = at.get(position)
            text, vector = (STORED[index], stored[index]) if index is not None else (f"entry {position}", None)
            entry = CacheEntry(
                layer="llm_response",
                scope=scope,
                tenant_id=TENANT,
                route=ROUTE,
                text=text,
                vector=(vectors[offset] if vector is None else vector).tobytes(),
                payload={"answer": f"answer {position}", "tokens": 200, "seconds": 5.0},
                created_at=now,
                expires_at=now + ttl_s,
                last_used_at=now,
            )
            rows.append(entry.model_dump(exclude={"id"}))
        with store.engine.begin() as connection:
            connection.execute(insert(table), rows)


def measure_search(size: int, workdir: Path) -> dict[str, Any]:
    """Latencies of one scope of ``size`` entries (see the module docstring for what each one holds)."""
    # Room above the fill, so that no eviction runs while measuring (eviction is not what is measured here).
    database_url = f"sqlite:///{workdir / f'search-{size}.db'}"
    settings = load_settings(database_url=database_url, cache={"max_entries": 2 * size})
    services = build_services(settings)
    # The same cache with its verifier off, on the same database and index files: stage 1 alone, for the
    # figures that name no verifier (embed + search; a lookup whose embedding is stored).
    unverified = build_services(
        load_settings(database_url=database_url, cache={"max_entries": 2 * size, "verify": False})
    )
    try:
        cache, stage_one = services.cache, unverified.cache
        scope = scope_key(bench="semantic-cache", size=size)
        embedder = default_embedder()
        stored = embedder.encode(list(STORED))
        fill_s, _ = _timed(_fill, cache.store, scope, size, stored, settings.cache.ttl_s.llm_response)
        index_load_s, _ = _timed(cache.lookup, scope, "What time is it in Tokyo?", route=ROUTE)
        cache._indexes.wait()  # the save the first lookup started (private: no public API waits for it)
        queries = [variant(text) for text in STORED] + list(UNRELATED)

        stage_one.lookup(scope, "What time is it in Tokyo?", route=ROUTE)  # its index, from the file just saved
        verified, fresh, model, found = _fresh_lookups(cache, stage_one, embedder, scope, queries)
        embedded = [
            _timed(stage_one.lookup, scope, text, route=ROUTE)[0] for _ in range(EMBEDDED_ROUNDS) for text in queries
        ]
        # The verifier alone on each paraphrase and the question it was stored for: one candidate, as served.
        verifier = default_verifier()
        verify = [
            _timed(verifier.probabilities, [(text, variant(text))])[0]
            for _ in range(EMBEDDED_ROUNDS)
            for text in STORED
        ]

        # The FAISS part of lookup() alone: the call lookup() makes, on the scope's own index (a private attribute:
        # no public API exposes it).
        index = cache._indexes[scope]
        vectors = embedder.encode(queries)
        k = min(settings.cache.candidates, index.size)
        search = [
            _timed(index.index.search, vector.reshape(1, -1), k)[0] for _ in range(SEARCH_ROUNDS) for vector in vectors
        ]
        import faiss  # imported late, as the cache does, so the process loads its libraries in the same order

        depth = getattr(faiss.downcast_index(index.index.index), "hnsw", None) if index.hnsw else None
        save_s, during_save = _save_figures(stage_one, scope, queries)
        saved_s, saved_hit = _first_lookup_in_new_process(settings.database_url, scope, queries[0], 2 * size, "")
        rebuilt_s, rebuilt_hit = _first_lookup_in_new_process(
            settings.database_url, scope, queries[0], 2 * size, str(workdir / f"no-index-{size}")
        )
        new_process = {
            "saved_s": saved_s,
            "rebuilt_s": rebuilt_s,
            "ratio": round(saved_s / rebuilt_s, 4),
            "served": saved_hit and rebuilt_hit,  # the paraphrase of STORED[0] was served by both
        }
        served = [result.hit.matched if result.hit else None for result in found[: len(STORED)]]
        return {
            "entries": size,
            "index": "hnsw" if index.hnsw else "flat",
            "hnsw_ef_search": None if depth is None else int(depth.efSearch),
            "fill_s": round(fill_s, 2),
            "index_load_s": round(index_load_s, 2),
            "index_save_s": round(save_s, 3),
            "new_process": new_process,
            "lookup_during_save": _ms(during_save),
            "search": _ms(search),
            "lookup_embedded": _ms(embedded),
            "lookup_fresh": _ms(fresh),
            "lookup_fresh_verified": _ms(verified[: len(STORED)]),  # the paraphrases: embed + search + verify
            "verifier": _ms(verify),
            "embedding_model": _ms(model),
            "paraphrases": len(STORED),
            "paraphrases_served": sum(1 for text, matched in zip(STORED, served, strict=True) if matched == text),
            "unrelated_with_candidates": sum(1 for result in found[len(STORED) :] if result.candidates),
        }
    finally:
        unverified.close()
        services.close()


def _fresh_lookups(
    cache: Any, stage_one: Any, embedder: Any, scope: str, queries: Sequence[str]
) -> tuple[list[float], list[float], list[float], list[Any]]:
    """Per query, interleaved: ``cache.lookup`` (verifier on) of the query, ``stage_one.lookup`` (verifier off)
    of another wording never seen (the two share the embedding layer), and the embedding model alone on a third
    (its speed depends on what ran just before). Seconds of each, and the verified lookups' results."""
    verified, fresh, model, found = [], [], [], []
    for text in queries:
        model.append(_timed(embedder.encode, [f"{text} (once more)"])[0])
        elapsed, result = _timed(cache.lookup, scope, text, route=ROUTE)
        verified.append(elapsed)
        found.append(result)
        fresh.append(_timed(stage_one.lookup, scope, f"{text} then", route=ROUTE)[0])
    return verified, fresh, model, found


def _save_figures(cache: Any, scope: str, queries: Sequence[str]) -> tuple[float, list[float]]:
    """Seconds one save of ``scope``'s index takes, and lookups (embeddings stored) timed while another runs."""
    indexes = cache._indexes  # private: the index files have no public API
    save_s, _ = _timed(indexes._save, scope, indexes[scope])
    saving = threading.Thread(target=indexes._save, args=(scope, indexes[scope]))
    saving.start()
    during: list[float] = []
    while saving.is_alive() or not during:
        during.append(_timed(cache.lookup, scope, queries[len(during) % len(queries)], route=ROUTE)[0])
    saving.join()
    return save_s, during


# Run by _first_lookup_in_new_process: time the first lookup in a process that never searched the scope.
NEW_PROCESS = """
import json, sys, time
from core.config import load_settings
from app.services import build_services

url, scope, text, max_entries, index_dir = sys.argv[1:6]
services = build_services(
    load_settings(database_url=url, cache={"max_entries": int(max_entries), "index_dir": index_dir})
)
services.cache.warm()  # the models load once per process whatever the scope: the figure is the index's
started = time.perf_counter()
found = services.cache.lookup(scope, text, route=sys.argv[6])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "hit": found.hit is not None}))
services.cache._indexes.wait()
services.close()
"""


def _first_lookup_in_new_process(
    database_url: str, scope: str, text: str, max_entries: int, index_dir: str
) -> tuple[float, bool]:
    """Seconds of the first lookup of ``scope`` in a new process (``index_dir`` "": the configured folder), and
    whether it served an answer."""
    done = subprocess.run(
        [sys.executable, "-c", NEW_PROCESS, database_url, scope, text, str(max_entries), index_dir, ROUTE],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return round(float(figures["seconds"]), 3), bool(figures["hit"])


# -- replayed workload ---------------------------------------------------------------------------------------


async def replay(database_url: str, *, enabled: bool, label: str) -> list[dict[str, Any]]:
    """Every workload question in a new thread through the agent on the default route, one row per question."""
    settings = load_settings(database_url=database_url, cache={"enabled": enabled})
    rows = []
    async with Agent.open(settings) as agent:
        await agent.ask(WARM_UP, thread_id=f"{label}-warm-up")
        for number, (kind, question) in enumerate(workload()):
            asked = time.perf_counter()
            result = await agent.ask(question, thread_id=f"{label}-{number}")
            seconds = time.perf_counter() - asked
            calls = agent.services.runs.model_calls(result.run_id)
            hit = result.cache or {}
            rows.append(
                {
                    "kind": kind,
                    "question": question,
                    "status": result.status,
                    "seconds": seconds,
                    "model_calls": len(calls),
                    "tokens": sum(call.input_tokens + call.output_tokens for call in calls),
                    "matched": hit.get("matched"),
                    "saved_tokens": int(hit.get("saved_tokens", 0)),
                }
            )
    return rows


def _totals(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "wall_s": round(sum(row["seconds"] for row in rows), 2),
        "tokens": sum(row["tokens"] for row in rows),
        "model_calls": sum(row["model_calls"] for row in rows),
        "not_answered": [f"{row['question']} ({row['status']})" for row in rows if row["status"] != RunStatus.ANSWERED],
    }


def _median_s(rows: Sequence[dict[str, Any]]) -> float | None:
    return round(float(np.median([row["seconds"] for row in rows])), 3) if rows else None


async def measure_workload(workdir: Path) -> dict[str, Any]:
    """The workload with the cache, then without it, each on a fresh database; totals and their ratios."""
    cached = await replay(f"sqlite:///{workdir / 'cached.db'}", enabled=True, label="cached")
    uncached = await replay(f"sqlite:///{workdir / 'uncached.db'}", enabled=False, label="uncached")
    asked_first = {paraphrase: first for first, paraphrase in FAQ} | {first: first for first, _ in FAQ}
    hits = [row for row in cached if row["matched"]]
    with_cache, without_cache = _totals(cached), _totals(uncached)
    return {
        "questions": len(cached),
        "distinct": len(FAQ),
        "cached": with_cache,
        "uncached": without_cache,
        "hits": len(hits),
        "hits_by_kind": {
            kind: sum(1 for row in hits if row["kind"] == kind) for kind in ("first", "repeat", "paraphrase")
        },
        "wrong_hits": [row["question"] for row in hits if row["matched"] != asked_first[row["question"]]],
        "unserved": [row["question"] for row in cached if row["kind"] != "first" and not row["matched"]],
        "saved_tokens_claimed": sum(row["saved_tokens"] for row in hits),
        "hit_median_s": _median_s(hits),
        "miss_median_s": _median_s([row for row in cached if not row["matched"]]),
        "uncached_median_s": _median_s(uncached),
        "token_ratio": round(with_cache["tokens"] / without_cache["tokens"], 3),
        "time_ratio": round(with_cache["wall_s"] / without_cache["wall_s"], 3),
    }


def measure_cache() -> dict[str, Any]:
    """Every figure of the cache section of docs/benchmarks.md (about three minutes on two cores)."""
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-cache-") as workdir:
        folder = Path(workdir)
        search = {str(size): measure_search(size, folder) for size in SIZES}
        workload_figures = asyncio.run(measure_workload(folder))
    settings = load_settings().cache
    configured = {
        "candidates": settings.candidates,
        "hnsw_above": settings.hnsw_above,
        "recall_similarity": settings.recall_similarity,
        "serve_similarity": settings.serve_similarity,
    }
    return {"settings": configured, "search": search, "workload": workload_figures}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", type=int, metavar="ENTRIES", help="only the search figures of one scope size")
    arguments = parser.parse_args()
    if arguments.search:
        with tempfile.TemporaryDirectory(prefix="firebreak-bench-cache-") as folder:
            print(json.dumps(measure_search(arguments.search, Path(folder)), indent=2))
    else:
        print(json.dumps(measure_cache(), indent=2))
