"""A scope's index is saved for the next process; the database stays the truth for what may be served.

Real SQLite files, real FAISS; vectors are random unit vectors from an injected embedder (the edge of the world:
what the index stores does not depend on which model made the vectors).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from app.cache.scope_index import SAVE_AFTER_ROWS, index_directory
from app.cache.semantic import SemanticCache
from app.services import prepare_database
from memory.cache import LLM_RESPONSE, CacheStore
from memory.tables import CacheEntry, table_of

DIMENSION = 384
SCOPE = "a" * 64
NOW = 1_000_000.0
ROWS = SAVE_AFTER_ROWS + 200  # enough to be saved, and past hnsw_above below: the saved index is HNSW
REPO = Path(__file__).resolve().parent.parent


class Vectors:
    """An embedder that knows each text's vector: ``entry N`` is the N-th random unit vector."""

    def __init__(self, count: int) -> None:
        rng = np.random.default_rng(7)
        vectors = rng.standard_normal((count, DIMENSION)).astype(np.float32)
        self.table = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.table[int(text.split()[-1])] for text in texts])


VECTORS = Vectors(ROWS + 100)


def _cache(make_settings, database_url: str, **cache) -> SemanticCache:
    """A new cache on ``database_url``: a process starting, as far as the index is concerned."""
    settings = make_settings(database_url, cache={"hnsw_above": SAVE_AFTER_ROWS, **cache})
    store = CacheStore(prepare_database(settings), settings.cache.max_entries)
    return SemanticCache(store, settings.cache, lambda: VECTORS, clock=lambda: NOW)


def _fill(cache: SemanticCache, numbers: range, *, scope: str = SCOPE, answer: str = "answer") -> None:
    """Rows ``entry N`` as ``put`` writes them, inserted in one statement (a put each would take seconds)."""
    rows = [
        CacheEntry(
            layer=LLM_RESPONSE,
            scope=scope,
            tenant_id="acme",
            route="chat",
            text=f"entry {number}",
            vector=VECTORS.table[number].tobytes(),
            payload={"answer": f"{answer} {number}", "tokens": 10, "seconds": 1.0},
            created_at=NOW,
            expires_at=NOW + 3600,
            last_used_at=NOW,
        ).model_dump(exclude={"id"})
        for number in numbers
    ]
    with cache.store.engine.begin() as connection:
        connection.execute(insert(table_of(CacheEntry)), rows)


def _served(cache: SemanticCache, number: int) -> str | None:
    found = cache.lookup(SCOPE, f"entry {number}", route="chat")
    return None if found.hit is None else found.hit.answer


def _saved(cache: SemanticCache) -> Path:
    cache._indexes.wait()
    files = cache._indexes.files
    assert files is not None
    return files.path(SCOPE)


def test_a_restart_loads_the_saved_index_and_finds_rows_added_after_it(sqlite_url, make_settings):
    first = _cache(make_settings, sqlite_url)
    _fill(first, range(ROWS))
    assert _served(first, 5) == "answer 5"  # built from the database, then saved
    assert _saved(first).exists()
    _fill(first, range(ROWS, ROWS + 20))  # another worker's rows, after the save

    restarted = _cache(make_settings, sqlite_url)

    assert [_served(restarted, number) for number in (0, 5, ROWS - 1, ROWS, ROWS + 19)] == [
        f"answer {number}" for number in (0, 5, ROWS - 1, ROWS, ROWS + 19)
    ]
    index = restarted._indexes[SCOPE]
    assert (index.size, index.hnsw, index.unsaved) == (ROWS + 20, True, 20)  # loaded: only the 20 new rows read


def test_a_loaded_index_never_serves_invalidated_or_expired_entries(sqlite_url, make_settings):
    first = _cache(make_settings, sqlite_url)
    _fill(first, range(ROWS))
    _served(first, 0)
    _saved(first)
    first.store.invalidate(key=None, entry_id=1, now=NOW)  # "entry 0"

    restarted = _cache(make_settings, sqlite_url)
    later = _cache(make_settings, sqlite_url)
    later._clock = lambda: NOW + 7200  # every row has expired

    assert _served(restarted, 0) is None and _served(restarted, 1) == "answer 1"
    assert _served(later, 1) is None


def test_a_corrupt_index_file_is_ignored_and_rebuilt_from_the_database(sqlite_url, make_settings, caplog):
    first = _cache(make_settings, sqlite_url)
    _fill(first, range(ROWS))
    _served(first, 0)
    path = _saved(first)
    path.write_bytes(b"not a faiss index" * 100)

    restarted = _cache(make_settings, sqlite_url)
    with caplog.at_level(logging.WARNING, logger="app.cache.scope_index"):
        answer = _served(restarted, 7)

    assert answer == "answer 7"
    assert "unreadable" in caplog.text
    assert restarted._indexes[SCOPE].size == ROWS
    assert _saved(restarted).stat().st_size > 100 * DIMENSION * 4  # saved again, whole


def test_two_databases_never_share_an_index_file(tmp_path, make_settings):
    shared = str(tmp_path / "indexes")
    one = _cache(make_settings, f"sqlite:///{tmp_path / 'one.db'}", index_dir=shared)
    two = _cache(make_settings, f"sqlite:///{tmp_path / 'two.db'}", index_dir=shared)
    _fill(one, range(ROWS), answer="one")
    _fill(two, range(ROWS), answer="two")

    assert (_served(one, 3), _served(two, 3)) == ("one 3", "two 3")
    assert _saved(one) != _saved(two) and _saved(one).exists() and _saved(two).exists()
    assert _served(_cache(make_settings, f"sqlite:///{tmp_path / 'two.db'}", index_dir=shared), 3) == "two 3"
    # The same file from another working directory is the same database; memory is never saved.
    assert index_directory("", f"sqlite:///{tmp_path / 'one.db'}") == index_directory(
        "", f"sqlite:///{tmp_path}/../{tmp_path.name}/one.db"
    )
    assert index_directory("", "sqlite://") is None


def test_an_index_of_an_earlier_database_at_the_same_path_is_not_trusted(tmp_path, make_settings, caplog):
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    old = _cache(make_settings, url)
    _fill(old, range(ROWS), answer="old")
    _served(old, 0)
    _saved(old)
    old.store.engine.dispose()
    (tmp_path / "cache.db").unlink()
    # A new database at the same path: the same ids now hold other vectors (and other answers).
    new = _cache(make_settings, url)
    _fill(new, range(ROWS - 1, -1, -1), answer="new")

    with caplog.at_level(logging.WARNING, logger="app.cache.scope_index"):
        answers = [_served(new, number) for number in (0, 600, ROWS - 1)]

    assert answers == ["new 0", "new 600", f"new {ROWS - 1}"]
    assert "ignored" in caplog.text


WORKER = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [sys.argv[2], sys.argv[2] + "/tests"]
    from test_cache_index_persisted import SCOPE, _cache, _served
    from conftest import load_settings

    cache = _cache(lambda url, **over: load_settings(database_url=url, **over), sys.argv[1])
    answers = [_served(cache, int(number)) for number in sys.argv[3:]]
    print(json.dumps({"answers": answers, "unsaved": cache._indexes[SCOPE].unsaved}))
    """
)


def test_another_worker_process_loads_the_index_and_sees_rows_written_after_it(sqlite_url, make_settings):
    first = _cache(make_settings, sqlite_url)
    _fill(first, range(ROWS))
    _served(first, 0)
    _saved(first)
    _fill(first, range(ROWS, ROWS + 3))

    numbers = ["2", str(ROWS - 2), str(ROWS + 2)]
    worker = subprocess.run(
        [sys.executable, "-c", WORKER, sqlite_url, str(REPO), *numbers], capture_output=True, text=True, check=True
    )

    assert json.loads(worker.stdout.strip().splitlines()[-1]) == {
        "answers": [f"answer {number}" for number in numbers],
        "unsaved": 3,
    }
