"""The scale-out benchmark at a tiny size: real worker processes do every submitted run exactly once.

Speed is never asserted (these machines are noisy); only that no run is lost or done twice.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import Session, select

from evals.bench_workers import measure_claims, measure_scaling
from memory.engine import make_engine
from memory.tables import ModelCall, QueuedRun, Run


@pytest.mark.slow  # each worker process imports its stack (~15-20 s)
def test_one_then_two_worker_processes_complete_every_submitted_run_exactly_once(database_url, tmp_path):
    runs, warmup = 6, 1

    figures = measure_scaling(database_url, tmp_path, runs=runs, workers=(1, 2), warmup=warmup)

    engine = make_engine(database_url)
    with Session(engine) as session:
        queued = session.exec(select(QueuedRun)).all()
        stored = session.exec(select(Run)).all()
        answers = Counter(call.run_id for call in session.exec(select(ModelCall)).all())
    engine.dispose()
    # Two batches (one per pool size), each after a warm-up of one run per worker.
    assert len(queued) == (warmup * 1 + runs) + (warmup * 2 + runs)
    assert {job.status for job in queued} == {"completed"}
    assert all(job.attempts == 1 for job in queued), "a run was claimed more than once"
    assert sorted(run.id for run in stored) == sorted(job.id for job in queued)
    assert {run.status for run in stored} == {"answered"}
    assert all(answers[job.id] == 1 for job in queued), "a run asked the model more than once"
    assert [(batch["runs"], batch["lost"], batch["repeated"]) for batch in figures.values()] == [(runs, 0, 0)] * 2


def test_contended_claims_hand_each_queued_run_to_exactly_one_claimer(database_url):
    figures = measure_claims(database_url, claimers=4, claims=40)

    assert figures["samples"] == 40
    assert figures["claimed_twice"] == 0
    assert 0 < figures["p50_ms"] <= figures["p95_ms"]
