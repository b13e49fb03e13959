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
def test_interleaved_pool_sizes_complete_every_submitted_run_exactly_once(database_url, tmp_path):
    runs, warmup, rounds = 6, 1, 2

    figures = measure_scaling(database_url, tmp_path, runs=runs, workers=(1, 2), warmup=warmup, rounds=rounds)

    engine = make_engine(database_url)
    with Session(engine) as session:
        queued = session.exec(select(QueuedRun)).all()
        stored = session.exec(select(Run)).all()
        answers = Counter(call.run_id for call in session.exec(select(ModelCall)).all())
    engine.dispose()
    # One warm-up for the whole pool, then a batch per size in each round (1 2, then 2 1).
    assert len(queued) == warmup * 2 + rounds * 2 * runs
    assert {job.status for job in queued} == {"completed"}
    assert all(job.attempts == 1 for job in queued), "a run was claimed more than once"
    assert sorted(run.id for run in stored) == sorted(job.id for job in queued)
    assert {run.status for run in stored} == {"answered"}
    assert all(answers[job.id] == 1 for job in queued), "a run asked the model more than once"
    assert [(batch["runs"], batch["lost"], batch["repeated"]) for batch in figures.values()] == [
        (rounds * runs, 0, 0)
    ] * 2
    # The paused worker claimed nothing while one worker's batches ran.
    assert figures[1]["workers_used"] == 1
    assert figures[1]["ratio_to_1"] == 1.0
    assert len(figures[2]["runs_per_s_by_round"]) == rounds
    assert figures[2]["cpu"]["workers_cores"] > 0


def test_contended_claims_hand_each_queued_run_to_exactly_one_claimer(database_url):
    figures = measure_claims(database_url, claimers=4, claims=40)

    assert figures["samples"] == 40
    assert figures["claimed_twice"] == 0
    assert 0 < figures["p50_ms"] <= figures["p95_ms"]
