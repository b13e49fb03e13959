"""Semantic cache verification guards, and the eval that calibrates them on labelled pairs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.cache.guards import GUARDS, conflict
from app.config import load_settings
from evals.cache_pairs import (
    KINDS,
    SWEEP_THRESHOLDS,
    TARGET_PRECISION,
    TARGET_RECALL,
    DatasetError,
    Pair,
    evaluate,
    guard_contributions,
    load_pairs,
    main,
    probe_pairs,
    sweep,
)

# --- negation -------------------------------------------------------------------------------------------------


def test_a_negation_only_in_one_query_is_a_conflict():
    assert conflict("Cancel my order 1234", "Don't cancel my order 1234") == "negation: 'don't' only in the query"


def test_the_same_negation_in_both_is_no_conflict():
    assert conflict("Can't log in", "unable to sign in") is None
    assert conflict("My refund hasn't arrived yet", "I still haven't received my refund") is None


def test_a_negating_prefix_is_a_conflict():
    assert conflict("Can I return used items?", "Can I return unused items?") == "negation: 'used' vs 'unused'"


def test_a_rhetorical_negative_question_is_no_conflict():
    assert conflict("Is Paris the capital of France?", "Isn't Paris the capital of France?") is None


def test_or_not_and_the_number_sign_are_not_negations():
    assert conflict("Is shipping free or not?", "Is shipping free?") is None
    assert conflict("Refund order No. 5521", "Refund order 5521") is None


# --- numbers, dates, times ------------------------------------------------------------------------------------


def test_different_order_numbers_conflict():
    assert conflict("Where is order 1234?", "Where is order 1243?") == "numbers: 1234 vs 1243"


def test_the_same_number_written_differently_is_no_conflict():
    assert conflict("Where is order #1,000?", "Can you track order 1000 for me?") is None
    assert conflict("I need 2 adapters", "I need two adapters") is None
    assert conflict("Order 6610 was charged twice", "I was charged two times for order 6610") is None


def test_different_weekdays_conflict():
    assert conflict("Are you open on Sunday?", "Are you open on Monday?") == "dates: sunday vs monday"


def test_the_same_date_written_differently_is_no_conflict():
    assert conflict("Deliver order 3021 on March 3rd", "Can order 3021 arrive on 3 March?") is None
    assert conflict("Are you open at 8:00 am on Monday?", "Do you open at 8am Mondays?") is None


def test_different_times_of_day_conflict():
    assert conflict("Can I pick up at 5pm?", "Can I pick up at 5am?") == "dates: 17:00 vs 05:00"
    assert conflict("What time do you close today?", "What time do you close tomorrow?") == "dates: today vs tomorrow"


# --- names and units ------------------------------------------------------------------------------------------


def test_different_cities_conflict():
    assert conflict("Ship to Paris", "Ship to Berlin") == "entities: Paris vs Berlin"


def test_a_name_in_lower_case_is_still_the_same_name():
    assert conflict("capital of japan?", "What is the capital city of Japan?") is None


def test_a_paraphrase_with_the_same_entities_passes():
    assert conflict("Do you have a store in Chicago?", "Is there a Chicago location?") is None
    assert (
        conflict(
            "Send the invoice for order 2201 to billing@acme.com", "Email order 2201's invoice to billing@acme.com"
        )
        is None
    )


def test_different_email_addresses_conflict():
    reason = conflict("Send the invoice to bob@example.com", "Send the invoice to rob@example.com")
    assert reason == "entities: bob@example.com vs rob@example.com"


def test_capitals_in_a_title_case_text_are_not_names():
    assert conflict("How Do I Reset My Password", "how can I reset my password?") is None


def test_different_currencies_conflict():
    assert conflict("Can I pay in euros?", "Can I pay in dollars?") == "units: euro vs dollar"


# --- opposites, order, question, substitution ------------------------------------------------------------------


def test_opposite_verbs_conflict():
    assert conflict("How do I add an item to my cart?", "How do I remove an item from my cart?") == (
        "opposites: add vs remove"
    )


def test_least_expensive_is_not_read_as_expensive():
    assert conflict("What's the least expensive laptop?", "What's the cheapest laptop?") is None
    assert conflict("What's the cheapest laptop?", "What's the most expensive laptop?") == (
        "opposites: cheapest vs most expensive"
    )


def test_the_same_terms_in_the_opposite_direction_conflict():
    reason = conflict("How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?")
    assert reason is not None and reason.startswith("order: ")


def test_questions_after_different_kinds_of_answer_conflict():
    assert conflict("Who invented the telephone?", "When was the telephone invented?") == "question: who vs time"


def test_an_open_question_matches_a_specific_one():
    assert conflict("What are your opening hours?", "When are you open?") is None


def test_one_swapped_content_word_is_a_conflict():
    assert conflict("What's the boiling point of water?", "What's the freezing point of water?") == (
        "substitution: boiling vs freezing"
    )


def test_a_misspelt_word_is_not_a_swap():
    assert conflict("how do i retrun an item", "How do I return an item?") is None


def test_conflict_runs_only_the_guards_it_is_given():
    names = [name for name, _ in GUARDS]
    assert names[:4] == ["negation", "numbers", "dates", "entities"]
    without_numbers = [(name, guard) for name, guard in GUARDS if name != "numbers"]
    assert conflict("Where is order 1234?", "Where is order 1243?", without_numbers) is None


# --- dataset and eval -----------------------------------------------------------------------------------------


def test_the_dataset_has_at_least_300_pairs_and_both_labels():
    pairs = load_pairs()
    labels = Counter(pair.same for pair in pairs)
    assert len(pairs) >= 360
    assert labels[True] >= 150 and labels[False] >= 150
    assert {pair.kind for pair in pairs} == set(KINDS)
    assert len({(pair.cached, pair.query, pair.cached_tenant, pair.tenant) for pair in pairs}) == len(pairs)


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


class TableEmbedder:
    """Unit vectors from a fixed table: the edge of the world for probes that test the eval's bookkeeping."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray([self.table[text] for text in texts], dtype=np.float32)


def test_probes_go_through_the_real_cache_and_never_cross_tenants(tmp_path):
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}")
    embedder = TableEmbedder({"Where is my parcel?": [1.0, 0.0], "Where's my parcel?": [0.96, 0.28]})
    same = Pair("Where is my parcel?", "Where's my parcel?", True, "paraphrase")
    crossing = replace(same, same=False, kind="other_tenant", cached_tenant="acme", tenant="globex")

    probes = probe_pairs([same, crossing], settings, embedder, route="chat")

    assert probes[0].served and probes[0].similarity == pytest.approx(0.96)
    assert not probes[1].served and probes[1].similarity is None  # another scope: never even searched


PAIRS = [
    Pair("Where is order 1234?", "Can you track order #1234 for me?", True, "paraphrase"),
    Pair("What's the refund policy?", "How do I get a refund?", True, "paraphrase"),
    Pair("Cancel my order 1234", "Don't cancel my order 1234", False, "negation"),
    Pair("How long is the warranty?", "What does the warranty cover?", False, "related_topic"),
]


def test_evaluate_counts_served_pairs_and_false_hits_by_kind():
    report = evaluate(PAIRS, [0.69, 0.72, 0.98, 0.81], recall_threshold=0.6, serve_threshold=0.7)

    assert (report["tp"], report["fp"], report["fn"], report["tn"]) == (1, 1, 1, 1)
    assert report["precision"] == 0.5 and report["recall"] == 0.5
    assert report["false_hits_by_kind"]["related_topic"] == 1 and report["false_hits_by_kind"]["negation"] == 0
    assert report["false_pairs_blocked_by_guards"] == 1


def test_without_guards_every_pair_above_the_threshold_is_served():
    report = evaluate(PAIRS, [0.69, 0.72, 0.98, 0.81], recall_threshold=0.6, serve_threshold=0.7, guards=False)

    assert report["fp"] == 2 and report["false_hits_by_kind"]["negation"] == 1


def test_the_report_counts_true_pairs_the_recall_stage_lost():
    report = evaluate(PAIRS, [0.55, 0.72, 0.98, 0.81], recall_threshold=0.6, serve_threshold=0.7)

    assert report["true_pairs_lost_at_recall"] == 1
    assert report["candidates"] == 3


def test_a_recall_threshold_above_the_serve_threshold_is_refused():
    with pytest.raises(ValueError, match="recall_threshold"):
        evaluate(PAIRS, [0.5] * 4, recall_threshold=0.8, serve_threshold=0.7)


def test_the_sweep_has_each_threshold_with_and_without_guards():
    rows = sweep(PAIRS, [0.69, 0.72, 0.98, 0.81], recall_threshold=0.6)

    assert [(row["serve_threshold"], row["guards"]) for row in rows] == [
        (threshold, guards) for threshold in SWEEP_THRESHOLDS for guards in (True, False)
    ]
    assert SWEEP_THRESHOLDS[0] == 0.5 and SWEEP_THRESHOLDS[-1] == 0.95


def test_each_guard_reports_what_it_removes_and_what_it_costs():
    rows = guard_contributions(PAIRS, [0.69, 0.72, 0.98, 0.81], recall_threshold=0.6, serve_threshold=0.7)

    assert [row["guard"] for row in rows] == [name for name, _ in GUARDS]
    negation = next(row for row in rows if row["guard"] == "negation")
    assert negation["removes_false_hits"] == 1 and negation["blocks_true_pairs"] == 0


@pytest.mark.slow  # the real embedder encodes about 950 texts: some 30 s on two CPU cores
def test_the_default_thresholds_reach_the_targets_on_the_dataset(tmp_path):
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}")
    report = main(settings)

    default = report["default"]
    assert (default["recall_threshold"], default["serve_threshold"]) == (
        settings.cache.recall_similarity,
        settings.cache.serve_similarity,
    )
    assert report["agrees_with_cache"]
    assert report["cross_tenant"] == {"probes": 48, "hits": 0}
    assert default["precision"] >= TARGET_PRECISION
    assert default["recall"] >= TARGET_RECALL
    assert report["passed"]
    # The guards are what make the targets reachable: without them precision collapses.
    assert report["without_guards"]["precision"] < TARGET_PRECISION
