"""Per-scope FAISS indexes of the semantic cache: built from the database, saved to disk, loaded by the next process.

The database (``cache_entries``) is the source of truth; an index file only spares a new process reading and
re-indexing every vector of a large scope (100k vectors: ~24 s to build HNSW, well under a second to load).
One file per database, scope and embedding model, written atomically (temp file + ``os.replace``), holding the
FAISS index alone: the highest row id it covers is the largest id in it. A file is trusted only after a check
against the database (its newest rows must be the database's rows, with the same vectors); anything else, an
unreadable file included, is ignored with a warning and the scope is rebuilt from the database. See
docs/decisions/0042-persisted-cache-index.md.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import make_url

from core.config import CacheSettings
from memory.cache import LLM_RESPONSE, CacheStore

log = logging.getLogger(__name__)

HNSW_SEARCH_DEPTH = 128  # FAISS's default (16) missed a quarter of stored paraphrases at 100k entries (make bench)
# A scope's index is saved once this many rows were added to it since it was last saved or loaded: a full
# rebuild (a new process without a file) always qualifies past this size, single puts only every so often.
SAVE_AFTER_ROWS = 1_000
# How many of a file's newest vectors are compared with the database's rows before the file is trusted.
CHECKED_ROWS = 32
DEFAULT_DIRECTORY = "~/.cache/firebreak/cache-index"


def flat_index(dimension: int) -> Any:
    import faiss

    # IDMap2 keeps id -> position, so that a loaded file's vectors can be checked by row id.
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def hnsw_index(dimension: int) -> Any:
    import faiss

    hnsw = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efSearch = HNSW_SEARCH_DEPTH
    return faiss.IndexIDMap2(hnsw)


@dataclass
class ScopeIndex:
    """One scope's index in this process, and the newest row id it has looked at."""

    index: Any
    dimension: int
    newest_id: int = 0
    size: int = 0
    hnsw: bool = False
    unsaved: int = 0  # rows added since the file was last written or read
    # Held while the index changes or is written: a save never sees a half-added batch. Searches do not take it.
    writing: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, rows: Sequence[Any], hnsw_above: int) -> None:
        """Index ``rows`` ((id, vector, …) in id order); past ``hnsw_above`` vectors the index becomes HNSW."""
        if not rows:
            return
        vectors = np.stack([np.frombuffer(row.vector, dtype=np.float32) for row in rows])
        ids = np.asarray([row.id for row in rows], dtype=np.int64)
        if not self.hnsw and self.size + len(rows) > hnsw_above:
            # Exact search is linear in the scope's size; past the bound, HNSW keeps lookups in milliseconds.
            import faiss

            previous = self.index
            self.index, self.hnsw = hnsw_index(self.dimension), True
            if previous.ntotal:
                old_ids = faiss.vector_to_array(previous.id_map).astype(np.int64)
                self.index.add_with_ids(previous.index.reconstruct_n(0, previous.ntotal), old_ids)
        self.index.add_with_ids(vectors, ids)
        self.size += len(rows)
        self.unsaved += len(rows)

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self.index.id_map).astype(np.int64)


def index_directory(configured: str, database_url: str) -> Path | None:
    """Where this database's index files go; None for an in-memory database (its rows die with the process).

    ``configured`` empty: beside a SQLite file (``<file>-cache-index``), else ``~/.cache/firebreak/cache-index``.
    Always a sub-folder named by a digest of the database, so that two databases never share a file.
    """
    url = make_url(database_url)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and (not url.database or url.database == ":memory:" or url.query.get("mode") == "memory"):
        return None
    # A SQLite file is the same database whatever the working directory: key it by its absolute path.
    identity = str(Path(url.database).resolve()) if sqlite and url.database else url.render_as_string(False)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    if configured:
        base = Path(os.path.expanduser(configured))
    elif sqlite and url.database:
        base = Path(f"{Path(url.database).resolve()}-cache-index")
    else:
        base = Path(os.path.expanduser(DEFAULT_DIRECTORY))
    return base / digest


class IndexFiles:
    """One file per scope and embedding model in one database's folder."""

    def __init__(self, directory: Path, model: str) -> None:
        self.directory = directory
        self.model = "".join(char if char.isalnum() or char in "-_." else "_" for char in model)

    def path(self, scope: str) -> Path:
        return self.directory / f"{scope}-{self.model}.faiss"

    def read(self, scope: str) -> Any | None:
        """The saved index of ``scope``, or None: absent, or unreadable (logged; the caller rebuilds)."""
        path = self.path(scope)
        if not path.exists():
            return None
        import faiss

        try:
            index = faiss.read_index(str(path))
            if not isinstance(index, faiss.IndexIDMap2):
                raise ValueError(f"unexpected index type {type(index).__name__}")
        except (RuntimeError, ValueError, OSError) as error:
            log.warning("cache index %s is unreadable, rebuilding it from the database: %s", path, error)
            path.unlink(missing_ok=True)
            return None
        return index

    def write(self, scope: str, index: Any) -> None:
        """Write atomically: a reader sees the previous file or this one, never a partial one."""
        import faiss

        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{scope[:16]}-", suffix=".tmp", dir=self.directory)
        os.close(handle)
        try:
            faiss.write_index(index, temporary)
            os.replace(temporary, self.path(scope))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class ScopeIndexes(Mapping[str, ScopeIndex]):
    """This process's index of each scope it has searched, caught up with the database on every use."""

    def __init__(self, store: CacheStore, settings: CacheSettings, *, model: str, clock: Any) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        url = store.engine.url.render_as_string(hide_password=False)
        directory = index_directory(settings.index_dir, url)
        self.files = None if directory is None else IndexFiles(directory, model)
        self._indexes: dict[str, ScopeIndex] = {}
        self._lock = threading.Lock()  # guards the dict; each scope has its own lock for its index
        self._scope_locks: dict[str, threading.Lock] = {}
        self._saves: list[threading.Thread] = []

    def __getitem__(self, scope: str) -> ScopeIndex:
        return self._indexes[scope]

    def __iter__(self) -> Iterator[str]:
        return iter(self._indexes)

    def __len__(self) -> int:
        return len(self._indexes)

    def catch_up(self, scope: str, dimension: int) -> ScopeIndex | None:
        """``scope``'s index with every row other workers added since it last looked; None while nothing was
        ever stored in the scope (most users' own scopes): an empty index is not kept for it."""
        newest = self.store.newest_id(scope)
        with self._lock:
            if newest == 0 and scope not in self._indexes:
                return None  # no lock kept either: most scopes (one per conversation so far) are never stored
            scope_lock = self._scope_locks.setdefault(scope, threading.Lock())
        with scope_lock:  # one thread loads or builds a scope; lookups of other scopes go on meanwhile
            index = self._indexes.get(scope)
            if index is None:
                index = self._load(scope, dimension, newest) or ScopeIndex(flat_index(dimension), dimension)
                with self._lock:
                    self._indexes[scope] = index
            if newest > index.newest_id:
                rows = self.store.vectors_after(scope, index.newest_id, now=self._clock())
                with index.writing:
                    index.add(rows, self.settings.hnsw_above)
                # Rows written since ``newest`` was read are in ``rows`` too: never read them twice.
                index.newest_id = max([newest, *(row.id for row in rows[-1:])])
            if index.unsaved >= SAVE_AFTER_ROWS and self.files is not None:
                index.unsaved = 0
                self._save_later(scope, index)
            return index

    def wait(self) -> None:
        """Until every save started so far is on disk (tests, benchmarks, a clean shutdown)."""
        for thread in list(self._saves):
            thread.join()

    def _save_later(self, scope: str, index: ScopeIndex) -> None:
        # Not a daemon: a short-lived process (`firebreak ask`) still leaves its index for the next one.
        thread = threading.Thread(target=self._save, args=(scope, index), name=f"cache-index-{scope[:8]}")
        self._saves = [*[saving for saving in self._saves if saving.is_alive()], thread]
        thread.start()

    def _save(self, scope: str, index: ScopeIndex) -> None:
        assert self.files is not None
        try:
            with index.writing:
                self.files.write(scope, index.index)
        except Exception:  # a cache that cannot save is slower to start, never wrong: log and go on
            log.warning("could not save the cache index of scope %s", scope, exc_info=True)

    def _load(self, scope: str, dimension: int, newest: int) -> ScopeIndex | None:
        """The saved index of ``scope`` if the database confirms it, with every newer row added; else None."""
        if self.files is None:
            return None
        saved = self.files.read(scope)
        if saved is None:
            return None
        import faiss

        inner: Any = faiss.downcast_index(saved.index)
        hnsw = isinstance(inner, faiss.IndexHNSW)
        if hnsw:
            inner.hnsw.efSearch = HNSW_SEARCH_DEPTH  # set again: the search depth is this code's, not the file's
        index = ScopeIndex(saved, dimension, size=int(saved.ntotal), hnsw=hnsw)
        ids = index.ids() if saved.ntotal else np.zeros(0, dtype=np.int64)
        covered = int(ids.max()) if ids.size else 0
        if saved.d != dimension or not ids.size or newest < covered:
            # Its newest rows are gone from the database (invalidated, or another database at this path):
            # their ids may be given to new rows, which this index would know by the old vectors.
            self._discard(scope, "it does not match the database")
            return None
        tail = ids[-CHECKED_ROWS:]
        now = self._clock()
        # One read for both: the rows the check compares and the rows written after the file.
        rows = self.store.vectors_after(scope, int(tail.min()) - 1, now=now)
        known = set(tail.tolist())
        for row in rows:
            if row.id > covered:
                break
            if row.id not in known or saved.reconstruct(int(row.id)).tobytes() != bytes(row.vector):
                self._discard(scope, f"row {row.id} differs from the database")
                return None
        for entry in self.store.live(tail.tolist(), now=now).values():
            if entry.scope != scope or entry.layer != LLM_RESPONSE:
                self._discard(scope, f"row {entry.id} belongs to another scope in the database")
                return None
        index.add([row for row in rows if row.id > covered], self.settings.hnsw_above)
        index.newest_id = max([covered, newest, *(row.id for row in rows[-1:])])
        return index

    def _discard(self, scope: str, why: str) -> None:
        assert self.files is not None
        path = self.files.path(scope)
        log.warning("cache index %s ignored, rebuilding it from the database: %s", path, why)
        path.unlink(missing_ok=True)  # a small scope is never saved again: do not check the file at every start
