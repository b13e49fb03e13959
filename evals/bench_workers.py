"""Scale-out: runs/s of 1, 2 and 4 ``firebreak worker`` processes on one database, and claim latency.

The workers are the real command (``.venv/bin/firebreak worker``), configured through ``FIREBREAK_*``
variables, on a fresh SQLite file or a private PostgreSQL schema. The scripted model answers every run at
once, so what is measured is Firebreak's own work per run (graph, checkpoints, audit rows, budgets, queue)
and how well it spreads over processes sharing one database.

A worker process spends ~15-20 s importing its stack. That is kept out of the figures: the pool grows
(1 → 2 → 4) while the queue is empty, each size first gets a warm-up batch, and a batch's time runs from the
first of its runs' start to the last one's finish (``runs.created_at`` / ``finished_at``). Each batch is
inserted in one transaction, so every worker sees all of it at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.config import Settings, load_settings
from app.queue.worker import submit
from app.services import prepare_database
from evals.bench_cache import _ms
from evals.operations import simulation_config
from memory.queue import QueueStore
from memory.tables import ModelCall, QueuedRun, Run, table_of

MODEL = "scripted/workers"
QUESTION = "Say ok."
WORKER_COUNTS = (1, 2, 4)
WARMUP_PER_WORKER = 2  # runs per new worker before a batch is timed: whatever a process sets up lazily stays out
POSTGRES_URL = os.environ.get("FIREBREAK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
STARTUP_TIMEOUT_S = 240.0  # two workers importing their stack at once (2 → 4) on busy cores
RUNS = table_of(Run)
QUEUE = table_of(QueuedRun)
CALLS = table_of(ModelCall)


def worker_overlay(folder: Path) -> dict[str, Any]:
    """Settings for runs the scripted model answers at once, thousands of them for one tenant."""
    script = folder / "ok.jsonl"
    script.write_text(json.dumps({"repeat": True, "text": "ok"}) + "\n")
    # The operations eval's limits and cache setting are made for exactly this: one tenant, thousands of
    # identical questions (the cache would answer all but the first).
    simulation = simulation_config(folder)
    shared = {key: simulation[key] for key in ("cache", "triggers", "limits", "rate_limits")}
    # An idle worker looks for work every poll_s: at the default 0.5 s a new batch would wait for it.
    return {**shared, "script": str(script), "queue": {"poll_s": 0.02}}


def worker_env(database_url: str, overlay: dict[str, Any]) -> dict[str, str]:
    """The environment of a worker process: the overlay as ``FIREBREAK_*`` JSON values (merged over the files)."""
    env = {**os.environ, "FIREBREAK_DATABASE_URL": database_url, "FIREBREAK_AUTO_MIGRATE": "false"}
    for key, value in overlay.items():
        env[f"FIREBREAK_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


# -- databases -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_schema(admin_url: str) -> Iterator[str]:
    """A private, empty schema in ``admin_url``'s database, dropped afterwards; yields its URL."""
    schema = f"fb_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        separator = "&" if "?" in admin_url else "?"
        yield f"{admin_url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextlib.contextmanager
def fresh_database(backend: str, folder: Path, postgres_url: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'workers-{uuid.uuid4().hex[:6]}.db'}"
    else:
        with postgres_schema(postgres_url) as url:
            yield url


# -- worker processes ----------------------------------------------------------------------------------------


class WorkerPool:
    """Real ``firebreak worker`` processes; each one's stderr goes to a file, read for its start-up line."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env, self.folder = env, folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def grow(self, size: int) -> None:
        """Start workers until there are ``size``; return once each has said it started."""
        command = [str(Path(sys.executable).parent / "firebreak"), "worker"]
        while len(self.processes) < size:
            log = self.folder / f"worker-{uuid.uuid4().hex[:6]}.log"
            with log.open("wb") as stderr:
                self.processes.append(subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL, stderr=stderr))
            self.logs.append(log)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for process, log in zip(self.processes, self.logs, strict=True):
            while "started" not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start: {log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.2)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # the worker finishes its run and closes the agent
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- batches -------------------------------------------------------------------------------------------------


class _BatchStore(QueueStore):
    """Collects what ``submit`` queues and inserts it in one transaction: workers see the batch at once."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.pending: list[QueuedRun] = []

    def submit(self, run: QueuedRun) -> None:
        self.pending.append(run)

    def commit(self) -> list[str]:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add_all(self.pending)
            session.commit()
        return [run.id for run in self.pending]


def submit_batch(engine: Engine, settings: Settings, count: int) -> list[str]:
    """Queue ``count`` one-answer runs, each in its own conversation; their ids."""
    batch = _BatchStore(engine)
    for _ in range(count):
        submit(batch, settings, QUESTION, route=MODEL)
    return batch.commit()


def wait_settled(engine: Engine, ids: Sequence[str], timeout_s: float) -> None:
    """Block until every run of ``ids`` is completed or dead in the queue."""
    deadline = time.monotonic() + timeout_s
    query = select(func.count()).where(QUEUE.c.id.in_(ids), QUEUE.c.status.in_(("completed", "dead")))
    while True:
        with engine.connect() as connection:
            settled = int(connection.execute(query).scalar_one())
        if settled == len(ids):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {settled} of {len(ids)} runs settled within {timeout_s:g} s")
        time.sleep(0.1)


def batch_figures(engine: Engine, ids: Sequence[str]) -> dict[str, Any]:
    """Throughput of a settled batch, and whether each of its runs was done exactly once."""
    with engine.connect() as connection:
        started, finished, answered = connection.execute(
            select(func.min(RUNS.c.created_at), func.max(RUNS.c.finished_at), func.count()).where(
                RUNS.c.id.in_(ids), RUNS.c.status == "answered"
            )
        ).one()
        claimed_again = connection.execute(
            select(func.count()).where(QUEUE.c.id.in_(ids), QUEUE.c.attempts != 1)
        ).scalar_one()
        asked_twice = connection.execute(
            select(func.count()).select_from(
                select(CALLS.c.run_id)
                .where(CALLS.c.run_id.in_(ids), CALLS.c.task_class == "answer")
                .group_by(CALLS.c.run_id)
                .having(func.count() > 1)
                .subquery()
            )
        ).scalar_one()
    wall_s = (finished - started).total_seconds()
    return {
        "runs": len(ids),
        "wall_s": round(wall_s, 3),
        "runs_per_s": round(len(ids) / wall_s, 2),
        "lost": len(ids) - int(answered),
        # A run claimed twice or answered by two model calls was (at least partly) done twice.
        "repeated": int(claimed_again) + int(asked_twice),
    }


def measure_scaling(
    database_url: str,
    folder: Path,
    *,
    runs: int,
    workers: Sequence[int] = WORKER_COUNTS,
    warmup: int = WARMUP_PER_WORKER,
) -> dict[int, dict[str, Any]]:
    """Figures per pool size; the pool grows in order, each size warmed up with ``warmup`` runs per worker."""
    overlay = worker_overlay(folder)
    settings = load_settings(database_url=database_url, **overlay)
    engine = prepare_database(settings)  # migrated once here: the workers run with auto_migrate = false
    figures: dict[int, dict[str, Any]] = {}
    try:
        with WorkerPool(worker_env(database_url, overlay), folder) as pool:
            for size in workers:
                pool.grow(size)
                warm = submit_batch(engine, settings, warmup * size)
                wait_settled(engine, warm, timeout_s=120 + warmup * size)
                batch = submit_batch(engine, settings, runs)
                wait_settled(engine, batch, timeout_s=120 + 2 * runs)
                figures[size] = batch_figures(engine, batch)
    finally:
        engine.dispose()
    return figures


# -- claims under contention ---------------------------------------------------------------------------------


def measure_claims(database_url: str, *, claimers: int, claims: int) -> dict[str, Any]:
    """Latency of ``QueueStore.claim`` with ``claimers`` threads claiming and settling back to back.

    This is the queue's worst case: workers that spend no time running what they claim. Each thread has
    its own connection from the engine's pool, as each worker process has its own.
    """
    settings = load_settings(database_url=database_url)
    engine = prepare_database(settings)
    store = QueueStore(engine)
    submit_batch(engine, settings, claims)
    latencies: list[float] = []
    claimed: list[str] = []
    lock = threading.Lock()

    def claim_until_empty(name: str) -> None:
        while True:
            began = time.perf_counter()
            job = store.claim(name, now=time.time(), lease_s=60.0)
            elapsed = time.perf_counter() - began
            if job is None:
                return
            with lock:
                latencies.append(elapsed)
                claimed.append(job.id)
            store.settle(job.id, name, now=time.time(), status="completed")

    threads = [threading.Thread(target=claim_until_empty, args=(f"claimer-{n}",)) for n in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    return {"claimers": claimers, **_ms(latencies), "claimed_twice": len(claimed) - len(set(claimed))}


# -- the whole measurement -----------------------------------------------------------------------------------


def _with_ratios(figures: dict[int, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    one = figures[1]["runs_per_s"]
    return {str(size): {**batch, "ratio_to_1": round(batch["runs_per_s"] / one, 2)} for size, batch in figures.items()}


def measure_workers(
    *,
    runs: int = 200,
    claims: int = 400,
    postgres_url: str = POSTGRES_URL,
    backends: Sequence[str] = ("postgresql", "sqlite"),
) -> dict[str, Any]:
    """Runs/s per pool size on each backend (with ratios to one worker), and claim latency on each."""
    report: dict[str, Any] = {"runs_per_batch": runs, "cores": os.cpu_count(), "backends": {}}
    with tempfile.TemporaryDirectory(prefix="firebreak-workers-") as workdir:
        folder = Path(workdir)
        for backend in backends:
            with fresh_database(backend, folder, postgres_url) as url:
                scaling = _with_ratios(measure_scaling(url, folder, runs=runs))
            with fresh_database(backend, folder, postgres_url) as url:
                alone = measure_claims(url, claimers=1, claims=claims)
            with fresh_database(backend, folder, postgres_url) as url:
                contended = measure_claims(url, claimers=max(WORKER_COUNTS), claims=claims)
            report["backends"][backend] = {"workers": scaling, "claim_alone": alone, "claim_contended": contended}
    return report


if __name__ == "__main__":
    print(json.dumps(measure_workers(runs=int(sys.argv[1]) if len(sys.argv) > 1 else 200), indent=2))
