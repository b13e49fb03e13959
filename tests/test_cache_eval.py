"""The cache eval: its data splits, its files' validation, and its bookkeeping through the real cache."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.cache.verifier import Calibration, CrossEncoderVerifier
from core.config import load_settings
from evals.cache_pairs import (
    DEV,
    KINDS,
    SWEEP_PROBABILITIES,
    TEST,
    DatasetError,
    Pair,
    Probe,
    Setting,
    evaluate,
    load_pairs,
    probe_pairs,
    stages,
    sweep,
)
from evals.cache_suite import FROZEN_TEST_SHA256
from evals.scenario import file_sha256

NEW_KINDS = {"order_swap", "opposite_goal", "different_target"}

# --- the splits -------------------------------------------------------------------------------------------------


def test_the_test_split_is_the_frozen_file():
    assert file_sha256(TEST) == FROZEN_TEST_SHA256


def _texts(pair: Pair) -> frozenset[str]:
    return frozenset((pair.cached, pair.query))


def test_dev_and_test_share_no_labelled_pair_and_both_have_both_labels():
    dev, test = load_pairs(DEV), load_pairs(TEST)
    # An other_tenant pair reuses a paraphrase's texts across tenants on purpose: its label is about the scope.
    in_dev = {_texts(pair) for pair in dev if pair.kind != "other_tenant"}

    assert not [pair for pair in test if pair.kind != "other_tenant" and _texts(pair) in in_dev]
    for split in (dev, test):
        labels = Counter(pair.same for pair in split)
        assert labels[True] >= 100 and labels[False] >= 100


def test_the_test_split_holds_over_300_pairs_of_kinds_never_tuned_on():
    test, dev = load_pairs(TEST), load_pairs(DEV)
    new = [pair for pair in test if pair.kind in NEW_KINDS]

    assert len(new) + sum(pair.kind == "paraphrase" for pair in test[262:]) >= 300
    assert not [pair for pair in dev if pair.kind in NEW_KINDS]
    assert {pair.kind for pair in dev + test} <= set(KINDS)


# --- a pairs file is validated line by line -------------------------------------------------------------------


def _write(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


GOOD = {"cached": "Where is order 1?", "query": "Track order 1", "same": True, "kind": "paraphrase"}


def test_a_bad_line_is_named_in_the_error(tmp_path):
    path = _write(tmp_path / "pairs.jsonl", [GOOD, GOOD, {**GOOD, "same": "yes"}])
    with pytest.raises(DatasetError, match=r"pairs\.jsonl:3: 'same' must be bool"):
        load_pairs(path)


def test_a_line_that_is_not_json_is_named_in_the_error(tmp_path):
    path = _write(tmp_path / "pairs.jsonl", [GOOD, "{not json"])
    with pytest.raises(DatasetError, match=r"pairs\.jsonl:2: not JSON"):
        load_pairs(path)


def test_a_negative_labelled_as_a_paraphrase_is_rejected(tmp_path):
    path = _write(tmp_path / "pairs.jsonl", [{**GOOD, "same": False}])
    with pytest.raises(DatasetError, match="must have same=true"):
        load_pairs(path)


def test_a_users_file_needs_only_cached_query_and_same(tmp_path):
    path = _write(
        tmp_path / "pairs.jsonl",
        [{"cached": "a?", "query": "b?", "same": True}, {"cached": "a?", "query": "c?", "same": False}],
    )

    assert [(pair.kind, pair.tenant) for pair in load_pairs(path)] == [
        ("paraphrase", "default"),
        ("unlabelled", "default"),
    ]


def test_a_pair_across_tenants_must_not_be_labelled_same(tmp_path):
    path = _write(tmp_path / "pairs.jsonl", [{**GOOD, "cached_tenant": "acme", "tenant": "globex"}])
    with pytest.raises(DatasetError, match="another tenant is never to be served"):
        load_pairs(path)


def test_an_empty_file_is_an_error_not_a_perfect_score(tmp_path):
    with pytest.raises(DatasetError, match="no pairs"):
        load_pairs(_write(tmp_path / "pairs.jsonl", []))


# --- bookkeeping, on table-driven models (the real ones are in test_cache_verifier.py) ----------------------------


# Fixed here, not read from firebreak.toml: these tests are about the bookkeeping, not the shipped setting.
THRESHOLDS = {"verified_at": 0.9, "different_below": 0.5, "guards": []}


class TableEmbedder:
    """Unit vectors from a fixed table."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray([self.table[text] for text in texts], dtype=np.float32)


class TableModel:
    """A pair model whose raw score for (cached, query) comes from a table; with the identity calibration
    (slope 1, intercept 0) a score s is P(same) = sigmoid(s)."""

    def __init__(self, table: dict[tuple[str, str], float]) -> None:
        self.table = table

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return np.asarray([self.table[pair] for pair in pairs])


def test_probes_go_through_the_real_cache_and_never_cross_tenants(tmp_path):
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", cache=THRESHOLDS)
    embedder = TableEmbedder({"Where is my parcel?": [1.0, 0.0], "Has my parcel shipped?": [0.96, 0.28]})
    verifier = CrossEncoderVerifier(
        TableModel({("Where is my parcel?", "Has my parcel shipped?"): 5.0}), Calibration(1, 0)
    )
    same = Pair("Where is my parcel?", "Has my parcel shipped?", True, "paraphrase")
    crossing = replace(same, same=False, kind="other_tenant", cached_tenant="acme", tenant="globex")

    probes, _ = probe_pairs([same, crossing], settings, embedder, verifier, route="chat")

    assert probes[0].served and probes[0].similarity == pytest.approx(0.96)
    assert probes[0].probability == pytest.approx(1 / (1 + np.exp(-5.0)))
    assert not probes[1].served and probes[1].similarity is None  # another scope: never even searched


def test_the_same_words_need_no_model_and_are_the_same_question():
    verifier = CrossEncoderVerifier(TableModel({}), Calibration(1, 0))  # an empty table: any model call fails

    assert verifier.probabilities([("What's your refund policy?", "what is your refund policy")]) == [1.0]


def test_the_cache_misses_when_the_verifier_is_unsure(tmp_path):
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", cache=THRESHOLDS)
    embedder = TableEmbedder({"Refund to card": [1.0, 0.0], "Refund to store credit": [0.99, 0.141]})
    pair = Pair("Refund to card", "Refund to store credit", False, "different_target")
    unsure = CrossEncoderVerifier(TableModel({(pair.cached, pair.query): 0.5}), Calibration(1, 0))  # P 0.62

    [probe], _ = probe_pairs([pair], settings, embedder, unsure, route="chat")

    assert not probe.served and probe.similarity == pytest.approx(0.99, abs=1e-3)


SHIPPED = Setting(recall=0.6, serve=0.6, verified_at=0.9, different_below=0.5, guards=[], verify=True)
PAIRS = [
    Pair("Where is order 1234?", "Can you track order #1234 for me?", True, "paraphrase"),
    Pair("What's the refund policy?", "How do I get a refund?", True, "paraphrase"),
    Pair("Is premium cheaper than basic?", "Is basic cheaper than premium?", False, "order_swap"),
    Pair("How long is the warranty?", "What does the warranty cover?", False, "related_topic"),
]
PROBES = [Probe(0.69, False, 0.95), Probe(0.72, False, 0.7), Probe(0.98, False, 0.2), Probe(0.81, False, 0.92)]


def test_evaluate_serves_only_what_the_verifier_is_sure_of_and_counts_false_hits_by_kind():
    report = evaluate(PAIRS, PROBES, SHIPPED)

    assert (report["tp"], report["fp"], report["fn"], report["tn"]) == (1, 1, 1, 1)
    assert report["unsure"] == 1  # the refund paraphrase at 0.7: a miss, never a hit
    assert report["false_hits_by_kind"] == {"order_swap": 0, "related_topic": 1}


def test_without_the_verifier_every_candidate_above_the_serve_threshold_is_served():
    report = evaluate(PAIRS, PROBES, replace(SHIPPED, verify=False))

    assert report["fp"] == 2 and report["false_hits_by_kind"]["order_swap"] == 1


def test_the_report_counts_true_pairs_the_recall_stage_lost():
    probes = [replace(PROBES[0], similarity=0.55), *PROBES[1:]]
    report = evaluate(PAIRS, probes, SHIPPED)

    assert report["true_pairs_lost_at_recall"] == 1 and report["candidates"] == 3


def test_the_sweep_has_each_verifier_threshold():
    rows = sweep(PAIRS, PROBES, SHIPPED)

    assert [row["verified_at"] for row in rows] == list(SWEEP_PROBABILITIES)
    assert rows[0]["recall"] == 1.0  # at 0.3 both paraphrases pass


def test_the_stages_show_what_each_part_of_verification_contributes():
    rows = {row["stage"]: row for row in stages(PAIRS, PROBES, SHIPPED)}

    assert list(rows) == ["similarity_only", "guards_only", "all_nine_guards", "verifier_only", "shipped"]
    assert rows["similarity_only"]["fp"] == 2 and rows["verifier_only"]["fp"] == 1
