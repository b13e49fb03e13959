"""A cross-encoder that reads a cached question and a new one together and scores "same question, same answer".

Built on the packaged all-MiniLM-L6-v2: its embeddings are used as shipped (frozen); the top ``TRAINED_LAYERS``
transformer layers (all six since decision 0051) and a linear head are fine-tuned (``evals/train_verifier.py``,
on torch: :class:`PairModel`) and shipped as a safetensors file (21 MB, float16). It is served by
:class:`PairScorer`, the same network in NumPy (``app/minilm.py``), so a lookup never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from app.minilm import MiniLM

TRAINED_LAYERS = 6  # the top layers of the 6 that are fine-tuned and stored in the weights file: all of them
MAX_TOKENS = 128  # the pair's length cap; cache questions are far shorter, so this only bounds pathological input
BASE_LAYERS = 6
HIDDEN = 384
HEAD_PREFIX = "head."
HEAD_WEIGHT, HEAD_BIAS = HEAD_PREFIX + "weight", HEAD_PREFIX + "bias"


class PairLogits(Protocol):
    """What scores pairs: the torch model while training, :class:`PairScorer` when served."""

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray: ...


def trained_layer_ids() -> range:
    """Indices of the encoder layers whose weights come from the weights file, not the base model."""
    return range(BASE_LAYERS - TRAINED_LAYERS, BASE_LAYERS)


def expected_names(encoder_state: dict[str, Any]) -> set[str]:
    """Tensor names the weights file must hold: the trained layers (BertModel naming) and the head."""
    prefixes = tuple(f"encoder.layer.{i}." for i in trained_layer_ids())
    return {name for name in encoder_state if name.startswith(prefixes)} | {HEAD_WEIGHT, HEAD_BIAS}


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Mean of the token vectors the attention mask keeps (padding excluded)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class PairModel:
    """Scores (cached, query) pairs; higher means more likely the same question."""

    def __init__(self, encoder: Any, head: Any, tokenizer: Any) -> None:
        self.encoder = encoder
        self.head = head
        self.tokenizer = tokenizer

    def encode(self, firsts: Sequence[str], seconds: Sequence[str]) -> dict[str, Any]:
        """Pair encoding ([CLS] a [SEP] b [SEP]) padded to the longest pair in the batch."""
        return self.tokenizer(
            list(firsts), list(seconds), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )

    def forward(self, batch: dict[str, Any]) -> Any:
        """One logit per encoded pair (a torch tensor; gradients flow when the caller allows them)."""
        out = self.encoder(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
        )
        return self.head(mean_pool(out.last_hidden_state, batch["attention_mask"])).squeeze(-1)

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw, uncalibrated score per pair: the mean over both orders, so score(a, b) == score(b, a)."""
        import torch

        if not pairs:
            return np.zeros(0, dtype=np.float32)
        firsts = [a for a, _ in pairs] + [b for _, b in pairs]
        seconds = [b for _, b in pairs] + [a for a, _ in pairs]
        with torch.inference_mode():
            both = self.forward(self.encode(firsts, seconds)).float().numpy()
        n = len(pairs)
        return ((both[:n] + both[n:]) / 2.0).astype(np.float32)


def build_pair_model(base_path: Path) -> PairModel:
    """The packaged MiniLM with a fresh (untrained) head: the starting point for training."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base_path), local_files_only=True)
    encoder = transformers.AutoModel.from_pretrained(str(base_path), local_files_only=True)
    if encoder.config.num_hidden_layers != BASE_LAYERS or encoder.config.hidden_size != HIDDEN:
        raise ValueError(f"{base_path} is not MiniLM-L6 ({BASE_LAYERS} layers, {HIDDEN} hidden)")
    return PairModel(encoder, torch.nn.Linear(HIDDEN, 1), tokenizer)


def trained_state(model: PairModel) -> dict[str, Any]:
    """The tensors the weights file stores: trained layers and head, float16 (halves the file, no measured loss)."""
    import torch

    encoder_state = model.encoder.state_dict()
    names = expected_names(encoder_state)
    state = {name: encoder_state[name] for name in names if name in encoder_state}
    state |= {HEAD_PREFIX + name: tensor for name, tensor in model.head.state_dict().items()}
    return {name: tensor.detach().to(torch.float16).contiguous() for name, tensor in state.items()}


class PairScorer:
    """The served pair model: the NumPy encoder (``app/minilm.py``) with the trained layers, and the head."""

    def __init__(self, model: MiniLM, head_weight: np.ndarray, head_bias: np.ndarray) -> None:
        self.model = model
        self.head_weight = head_weight.reshape(-1)
        self.head_bias = float(head_bias.reshape(-1)[0])

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw, uncalibrated score per pair: the mean over both orders, so score(a, b) == score(b, a)."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        both = [*pairs, *((b, a) for a, b in pairs)]
        pooled = self.model.pooled(both, MAX_TOKENS)
        scores = pooled @ self.head_weight + self.head_bias
        n = len(pairs)
        return ((scores[:n] + scores[n:]) / 2.0).astype(np.float32)


def load_pair_model(base_path: Path, weights_path: Path) -> PairScorer:
    """The packaged MiniLM with its top layers and head replaced from ``weights_path``.

    Strict: a file that cannot be read, lacks an expected tensor, holds an unexpected one, or has a wrong shape
    raises ValueError, so a damaged file never runs with random or base weights in its place.
    """
    from app.minilm import base_weights, load_minilm, read_weights

    stored = read_weights(weights_path)
    base = base_weights(base_path)
    shapes = {name: tensor.shape for name, tensor in base.items()} | {HEAD_WEIGHT: (1, HIDDEN), HEAD_BIAS: (1,)}
    expected = expected_names(base)
    missing, extra = expected - stored.keys(), stored.keys() - expected
    if missing or extra:
        raise ValueError(f"{weights_path}: missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
    for name, tensor in stored.items():
        if tensor.shape != shapes[name]:
            raise ValueError(f"{weights_path}: {name} has shape {tensor.shape}, expected {shapes[name]}")
    head_weight, head_bias = stored.pop(HEAD_WEIGHT), stored.pop(HEAD_BIAS)
    return PairScorer(load_minilm(base_path, stored), head_weight, head_bias)
