"""all-MiniLM-L6-v2's encoder (a 6-layer BERT) in NumPy: the cache's embeddings and its verifier's pair scores.

torch, transformers and sentence-transformers take about six seconds to import on two cores, which a cold
``firebreak ask`` with the cache on paid before its first lookup. The network is small enough for NumPy: this is
``BertModel``'s forward pass op for op (exact-erf GELU, LayerNorm, additive attention mask), on the packaged
weights, with the tokenizer the package ships (``tokenizer.json``, read by the Rust ``tokenizers`` library).
``tests/test_minilm.py`` holds its outputs to sentence-transformers' and to the torch pair model's. Training
(``evals/train_verifier.py``) still runs on torch: it needs gradients.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
_MASKED = float(np.finfo(np.float32).min)  # what BertModel adds to the scores of padding positions


class WeightsError(ValueError):
    """A weights file that cannot be read or does not fit the network."""


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file, as float32 arrays; a damaged file raises :class:`WeightsError`."""
    from safetensors.numpy import load_file

    try:
        stored = load_file(str(path))
    except Exception as error:  # safetensors raises its own error type (and OSError) for damaged files
        raise WeightsError(f"cannot read weights {path}: {error}") from error
    return {name: tensor.astype(np.float32, copy=False) for name, tensor in stored.items()}


@dataclass(frozen=True)
class Batch:
    """Token ids, segment ids and attention mask, each (texts, longest text), padded with zeros."""

    ids: np.ndarray
    types: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class _Layer:
    qkv: np.ndarray  # (hidden, 3 * hidden): query, key and value weights side by side, transposed
    qkv_bias: np.ndarray
    attention_out: np.ndarray
    attention_out_bias: np.ndarray
    attention_norm: tuple[np.ndarray, np.ndarray]
    intermediate: np.ndarray
    intermediate_bias: np.ndarray
    out: np.ndarray
    out_bias: np.ndarray
    out_norm: tuple[np.ndarray, np.ndarray]


class Encoder:
    """The BERT encoder: token ids in, one hidden vector per token out."""

    def __init__(self, weights: Mapping[str, np.ndarray], config: Mapping[str, object]) -> None:
        self.heads = int(config["num_attention_heads"])  # type: ignore[call-overload]
        self.eps = float(config["layer_norm_eps"])  # type: ignore[arg-type]
        self.words = weights["embeddings.word_embeddings.weight"]
        self.positions = weights["embeddings.position_embeddings.weight"]
        self.segments = weights["embeddings.token_type_embeddings.weight"]
        self.norm = (weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"])
        self.layers = [_layer(weights, f"encoder.layer.{i}.") for i in range(int(config["num_hidden_layers"]))]  # type: ignore[call-overload]

    def hidden(self, batch: Batch) -> np.ndarray:
        """(texts, tokens, hidden): ``BertModel(...).last_hidden_state``."""
        length = batch.ids.shape[1]
        x = self.words[batch.ids] + self.positions[:length] + self.segments[batch.types]
        x = self._normed(x, self.norm)
        masked = ((1.0 - batch.mask[:, None, None, :].astype(np.float32)) * _MASKED).astype(np.float32)
        for layer in self.layers:
            x = self._layer(x, layer, masked)
        return x

    def pooled(self, batch: Batch) -> np.ndarray:
        """The mean of each text's token vectors, padding excluded (sentence-transformers' mean pooling)."""
        weights = batch.mask[:, :, None].astype(np.float32)
        return (self.hidden(batch) * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)

    def _layer(self, x: np.ndarray, layer: _Layer, masked: np.ndarray) -> np.ndarray:
        texts, length, size = x.shape
        width = size // self.heads
        # The dense layers see every token of every text as one matrix: one BLAS call each.
        flat = x.reshape(texts * length, size)
        q, k, v = np.split(flat @ layer.qkv + layer.qkv_bias, 3, axis=-1)

        def by_head(t: np.ndarray) -> np.ndarray:
            return t.reshape(texts, length, self.heads, width).transpose(0, 2, 1, 3)

        scores = by_head(q) @ by_head(k).transpose(0, 1, 3, 2) / math.sqrt(width) + masked
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attended = (scores / scores.sum(axis=-1, keepdims=True)) @ by_head(v)
        attended = attended.transpose(0, 2, 1, 3).reshape(texts * length, size)
        flat = self._normed(attended @ layer.attention_out + layer.attention_out_bias + flat, layer.attention_norm)
        inner = _gelu(flat @ layer.intermediate + layer.intermediate_bias)
        out = self._normed(inner @ layer.out + layer.out_bias + flat, layer.out_norm)
        return out.reshape(texts, length, size)

    def _normed(self, x: np.ndarray, norm: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(variance + self.eps) * norm[0] + norm[1]


@functools.cache
def one_blas_thread() -> None:
    """Hold NumPy's BLAS to one thread in this process, once. The encoder's matrices are a few dozen tokens wide,
    and on two cores BLAS threads only fight FAISS's OpenMP threads and llama.cpp's for the second core: in the
    cache bench's interleaved lookups one question embedded in 9.9 ms on one thread and 19.5 ms on two (switching
    per call instead cost more than it saved). Firebreak's own NumPy work is these encoders."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def _layer(weights: Mapping[str, np.ndarray], prefix: str) -> _Layer:
    def linear(name: str) -> tuple[np.ndarray, np.ndarray]:
        # torch stores (out, in); x @ W.T is the layer. Transposed once here, contiguous for the matmul.
        return np.ascontiguousarray(weights[f"{prefix}{name}.weight"].T), weights[f"{prefix}{name}.bias"]

    query, key, value = (linear(f"attention.self.{part}") for part in ("query", "key", "value"))
    attention_out, intermediate, out = (
        linear(name) for name in ("attention.output.dense", "intermediate.dense", "output.dense")
    )
    return _Layer(
        qkv=np.ascontiguousarray(np.concatenate([query[0], key[0], value[0]], axis=1)),
        qkv_bias=np.concatenate([query[1], key[1], value[1]]),
        attention_out=attention_out[0],
        attention_out_bias=attention_out[1],
        attention_norm=(
            weights[f"{prefix}attention.output.LayerNorm.weight"],
            weights[f"{prefix}attention.output.LayerNorm.bias"],
        ),
        intermediate=intermediate[0],
        intermediate_bias=intermediate[1],
        out=out[0],
        out_bias=out[1],
        out_norm=(weights[f"{prefix}output.LayerNorm.weight"], weights[f"{prefix}output.LayerNorm.bias"]),
    )


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x·Φ(x), with erf by Abramowitz & Stegun 7.1.26 (error below 1.5e-7, float32's own).

    In place on two arrays: the layer's widest activation, where temporaries cost more than the arithmetic."""
    z = np.abs(x)
    z *= 1.0 / math.sqrt(2.0)
    t = z * 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)
    erf = t * 1.061405429
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        erf += coefficient
        erf *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    erf *= z
    np.subtract(1.0, erf, out=erf)
    np.copysign(erf, x, out=erf)
    erf += 1.0
    erf *= x
    erf *= 0.5
    return erf


class MiniLM:
    """The packaged tokenizer and an :class:`Encoder`; ``encode`` is sentence-transformers' (an ``Embedder``)."""

    def __init__(self, folder: Path, encoder: Encoder) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self.tokenizer.no_padding()  # padded here, to the batch's longest text, as the torch stack does
        self.encoder = encoder
        self.max_tokens = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
        self.dimension = encoder.words.shape[1]

    def batch(self, texts: Sequence[str | tuple[str, str]], max_tokens: int) -> Batch:
        """Texts, or pairs as ``[CLS] a [SEP] b [SEP]``, tokenized, cut to ``max_tokens`` (longest first), padded."""
        self.tokenizer.enable_truncation(max_length=max_tokens)
        encodings = self.tokenizer.encode_batch(list(texts))
        length = max(len(encoding.ids) for encoding in encodings)
        ids, types, mask = (np.zeros((len(encodings), length), dtype=np.int64) for _ in range(3))
        for row, encoding in enumerate(encodings):
            size = len(encoding.ids)
            ids[row, :size], types[row, :size], mask[row, :size] = encoding.ids, encoding.type_ids, 1
        return Batch(ids, types, mask)

    def pooled(self, texts: Sequence[str | tuple[str, str]], max_tokens: int) -> np.ndarray:
        """The mean-pooled token vectors of each text (or pair), cut to ``max_tokens``; not normalised."""
        return self.encoder.pooled(self.batch(texts, max_tokens))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One float32, L2-normalised row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        pooled = self.pooled(texts, self.max_tokens)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def load_minilm(folder: Path, replaced: Mapping[str, np.ndarray] | None = None) -> MiniLM:
    """The model in ``folder`` (the package's files), with the tensors in ``replaced`` instead of its own."""
    config = json.loads((folder / "config.json").read_text())
    one_blas_thread()
    return MiniLM(folder, Encoder(base_weights(folder) | dict(replaced or {}), config))


@functools.lru_cache(maxsize=2)
def base_weights(folder: Path) -> dict[str, np.ndarray]:
    """The package's weights, read once per process: the embedder and the pair model share its embeddings."""
    weights = read_weights(folder / WEIGHTS_FILE)
    for tensor in weights.values():
        tensor.flags.writeable = False  # shared: nobody may change them in place
    return weights
