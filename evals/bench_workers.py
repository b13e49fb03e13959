"""Scale-out: runs/s of 1, 2 and 4 ``firebreak worker`` processes on one database, and claim latency.

The workers are the real command (``.venv/bin/firebreak worker``), configured through ``FIREBREAK_*``
variables, on a fresh SQLite file or a private PostgreSQL schema. The scripted model answers every run at
once, so what is measured is Firebreak's own work per run (graph, checkpoints, audit rows, budgets, queue)
and how well it spreads over processes sharing one database.

A worker process spends ~15-20 s importing its stack. That is kept out of the figures: all the workers
start (and get a warm-up batch) before anything is timed, and a batch's time runs from the first of its runs'
start to the last one's finish (``runs.created_at`` / ``finished_at``). Each batch is inserted in one
transaction, so every worker sees all of it at once.

The machine is shared and its load drifts, so the pool sizes are interleaved: each round times one batch per
size, in turn ascending and descending (1 2 4, 4 2 1, …), with the workers a size does not use paused
(SIGSTOP) between two claims; a ratio is taken within a round and the median over the rounds reported. Each
batch also records where the CPU went (the workers, the database server's backends, the whole machine) and,
on PostgreSQL, what its backends were doing, sampled from ``pg_stat_activity`` (waiting for a row lock,
working, or idle inside a transaction waiting for the worker).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
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

from app.services import prepare_database
from core.config import Settings, load_settings
from evals.bench_cache import _ms
from evals.bench_worker_pool import Activity, WorkerPool, cpu_s, machine_busy_s
from evals.operations import simulation_config
from graph.worker import submit
from memory.queue import QueueStore
from memory.tables import ModelCall, QueuedRun, Run, table_of

MODEL = "scripted/workers"
QUESTION = "Say ok."
WORKER_COUNTS = (1, 2, 4)
WARMUP_PER_WORKER = 2  # runs per worker before a batch is timed: whatever a process sets up lazily stays out
ROUNDS = 3  # batches per pool size, interleaved with the other sizes' (the median is reported)
POSTGRES_URL = os.environ.get("FIREBREAK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
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


def tagged(database_url: str, tag: str) -> str:
    """``database_url`` with ``application_name=tag`` on PostgreSQL: the bench finds the workers' backends by it."""
    if not database_url.startswith("postgresql"):
        return database_url
    return f"{database_url}{'&' if '?' in database_url else '?'}application_name={tag}"


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
        claimed_again, workers_used = connection.execute(
            select(func.count().filter(QUEUE.c.attempts != 1), func.count(func.distinct(QUEUE.c.lease_owner))).where(
                QUEUE.c.id.in_(ids)
            )
        ).one()
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
        "workers_used": int(workers_used),
        "lost": len(ids) - int(answered),
        # A run claimed twice or answered by two model calls was (at least partly) done twice.
        "repeated": int(claimed_again) + int(asked_twice),
    }


def timed_batch(
    engine: Engine, settings: Settings, runs: int, workers: Sequence[int], activity: Activity
) -> dict[str, Any]:
    """One batch for the workers ``workers`` (process ids): its figures, and where the CPU went meanwhile."""
    backends = set(activity.backends)
    before = [cpu_s(pid) for pid in workers], {pid: cpu_s(pid) for pid in backends}, machine_busy_s()
    began = time.monotonic()
    activity.start()
    batch = submit_batch(engine, settings, runs)
    wait_settled(engine, batch, timeout_s=120 + 2 * runs)
    backend_states = activity.stop()
    elapsed = time.monotonic() - began
    worker_s = sum(cpu_s(pid) for pid in workers) - sum(before[0])
    database_s = sum(cpu_s(pid) - spent for pid, spent in before[1].items())
    machine_s = machine_busy_s() - before[2]
    figures = batch_figures(engine, batch)
    figures["cpu"] = {
        # Cores busy on average while the batch ran: the workers, the database server's backends serving
        # them (PostgreSQL only; SQLite runs inside the workers), everything else on the machine.
        "workers_cores": round(worker_s / elapsed, 2),
        "database_cores": round(database_s / elapsed, 2),
        "others_cores": round(max(machine_s - worker_s - database_s, 0.0) / elapsed, 2),
        "worker_ms_per_run": round(1000 * worker_s / runs, 1),
        "database_ms_per_run": round(1000 * database_s / runs, 1),
    }
    if backend_states:
        figures["backends"] = backend_states
    return figures


def _median_figures(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """One size's batches (one per round) as one row: medians of rates, sums of counts."""
    summary: dict[str, Any] = {
        "runs": sum(batch["runs"] for batch in batches),
        "wall_s": round(sum(batch["wall_s"] for batch in batches), 3),
        "runs_per_s": round(statistics.median(batch["runs_per_s"] for batch in batches), 2),
        "runs_per_s_by_round": [batch["runs_per_s"] for batch in batches],
        "workers_used": max(batch["workers_used"] for batch in batches),
        "lost": sum(batch["lost"] for batch in batches),
        "repeated": sum(batch["repeated"] for batch in batches),
        "cpu": {key: round(statistics.median(b["cpu"][key] for b in batches), 2) for key in batches[0]["cpu"]},
    }
    if all("backends" in batch for batch in batches):
        summary["backends"] = {
            key: round(statistics.median(b["backends"][key] for b in batches), 3)
            for key in ("lock_wait", "active", "idle_in_transaction")
        }
        summary["backends"]["lock_wait_on"] = batches[-1]["backends"]["lock_wait_on"]
    return summary


def measure_scaling(
    database_url: str,
    folder: Path,
    *,
    runs: int,
    workers: Sequence[int] = WORKER_COUNTS,
    warmup: int = WARMUP_PER_WORKER,
    rounds: int = ROUNDS,
) -> dict[int, dict[str, Any]]:
    """Figures per pool size over ``rounds`` interleaved rounds, after a warm-up of ``warmup`` runs per worker.

    ``ratio_to_1`` is the median over the rounds of a size's runs/s over the smallest size's in the same round.
    """
    overlay = worker_overlay(folder)
    settings = load_settings(database_url=database_url, **overlay)
    engine = prepare_database(settings)  # migrated once here: the workers run with auto_migrate = false
    tag = f"fb_bench_{uuid.uuid4().hex[:8]}"
    admin_url = database_url if database_url.startswith("postgresql") else None
    batches: dict[int, list[dict[str, Any]]] = {size: [] for size in workers}
    try:
        with (
            WorkerPool(worker_env(tagged(database_url, tag), overlay), folder) as pool,
            Activity(admin_url, tag) as activity,
        ):
            # All at once, as on N machines: the checkpointer sets its tables up under a lock (memory/checkpointer.py).
            pool.grow(max(workers))
            warm = submit_batch(engine, settings, warmup * max(workers))
            wait_settled(engine, warm, timeout_s=120 + warmup * max(workers))
            for round_ in range(rounds):
                for size in workers if round_ % 2 == 0 else list(reversed(workers)):
                    batches[size].append(timed_batch(engine, settings, runs, pool.use(size), activity))
    finally:
        engine.dispose()
    base = min(workers)
    figures = {size: _median_figures(batches[size]) for size in workers}
    for size in workers:
        ratios = [b["runs_per_s"] / one["runs_per_s"] for b, one in zip(batches[size], batches[base], strict=True)]
        figures[size]["ratio_to_1"] = round(statistics.median(ratios), 2)
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


def measure_workers(
    *,
    runs: int = 100,
    rounds: int = ROUNDS,
    claims: int = 400,
    postgres_url: str = POSTGRES_URL,
    backends: Sequence[str] = ("postgresql", "sqlite"),
    workers: Sequence[int] = WORKER_COUNTS,
) -> dict[str, Any]:
    """Runs/s per pool size on each backend (with ratios to one worker), and claim latency on each."""
    report: dict[str, Any] = {"runs_per_batch": runs, "rounds": rounds, "cores": os.cpu_count(), "backends": {}}
    with tempfile.TemporaryDirectory(prefix="firebreak-workers-") as workdir:
        folder = Path(workdir)
        for backend in backends:
            with fresh_database(backend, folder, postgres_url) as url:
                figures = measure_scaling(url, folder, runs=runs, workers=workers, rounds=rounds)
            scaling = {str(size): batch for size, batch in figures.items()}
            report["backends"][backend] = {"workers": scaling}
            if claims:
                with fresh_database(backend, folder, postgres_url) as url:
                    report["backends"][backend]["claim_alone"] = measure_claims(url, claimers=1, claims=claims)
                with fresh_database(backend, folder, postgres_url) as url:
                    report["backends"][backend]["claim_contended"] = measure_claims(
                        url, claimers=max(WORKER_COUNTS), claims=claims
                    )
    return report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m evals.bench_workers", description="Runs/s of 1, 2 and 4 worker processes (JSON on stdout)."
    )
    parser.add_argument("runs", nargs="?", type=int, default=100, help="runs per timed batch (default 100)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"interleaved rounds (default {ROUNDS})")
    parser.add_argument("--backend", action="append", choices=("postgresql", "sqlite"), help="default: both")
    parser.add_argument("--workers", default=",".join(map(str, WORKER_COUNTS)), help="pool sizes, e.g. 1,2")
    parser.add_argument("--claims", type=int, default=400, help="claims for the claim-latency figures (0: skip)")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args(argv)
    report = measure_workers(
        runs=args.runs,
        rounds=args.rounds,
        claims=args.claims,
        postgres_url=args.postgres_url,
        backends=args.backend or ("postgresql", "sqlite"),
        workers=[int(size) for size in args.workers.split(",")],
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
