"""Secondary triggers of the confidence gate: reasons to hand over to a human whatever the model's confidence.

Four triggers, from the most to the least urgent escalation:

* ``human_requested`` → ``immediate_transfer``: the user asked for a person;
* ``high_risk_topic`` → ``full_handoff``: legal, medical and other topics the bot must not handle;
* ``repeated_rephrasing`` → ``targeted``: the user keeps asking the same question, so the answers are not landing;
* ``negative_sentiment`` → ``collaborative``: a sudden drop in the user's mood.

Plain functions over compiled patterns and a small built-in lexicon, so every rule is testable without a graph.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from app.embeddings import Embedder

HUMAN_REQUESTED = "human_requested"
HIGH_RISK_TOPIC = "high_risk_topic"
REPEATED_REPHRASING = "repeated_rephrasing"
NEGATIVE_SENTIMENT = "negative_sentiment"

ESCALATIONS = ("immediate_transfer", "full_handoff", "targeted", "collaborative")
"""Escalation levels, most urgent first."""


@dataclass(frozen=True)
class Trigger:
    """One reason to escalate: which rule fired, how far to escalate, and why."""

    name: str
    escalation: str
    reason: str
    detail: dict[str, Any]


class TriggerSettings(Protocol):
    """What the triggers read. Read-only properties, so a frozen dataclass fits as well as the pydantic section."""

    @property
    def human_request_patterns(self) -> list[str]: ...
    @property
    def high_risk_topics(self) -> dict[str, list[str]]: ...
    @property
    def negative_sentiment_threshold(self) -> float: ...
    @property
    def sentiment_spike(self) -> float: ...
    @property
    def rephrase_similarity(self) -> float: ...
    @property
    def rephrase_count(self) -> int: ...


# Word scores on a -3..3 scale (as in AFINN and VADER). Customer-service words weigh heavily,
# and words that are neutral in a support chat ("issue", "cancel", "refund", "help") are left out.
LEXICON: dict[str, float] = {
    # positive
    "good": 2, "great": 3, "excellent": 3, "amazing": 3, "awesome": 3, "wonderful": 3, "fantastic": 3,
    "perfect": 3, "brilliant": 3, "best": 3, "love": 3, "better": 2, "happy": 2, "glad": 2, "pleased": 2,
    "satisfied": 2, "thanks": 2, "thank": 2, "appreciate": 2, "helpful": 2, "useful": 2, "nice": 2,
    "friendly": 2, "polite": 2, "resolved": 2, "solved": 2, "fixed": 2, "easy": 1, "quick": 1, "fast": 1,
    "fine": 1, "clear": 1, "work": 1, "works": 1, "worked": 1, "working": 1,
    # negative
    "bad": -2, "poor": -2, "wrong": -2, "broken": -2, "slow": -1, "error": -1, "problem": -1,
    "confusing": -1, "confused": -1, "worse": -2, "fail": -2, "fails": -2, "failed": -2, "failure": -2,
    "annoyed": -2, "annoying": -2, "frustrated": -2, "frustrating": -2, "disappointed": -2,
    "disappointing": -2, "unhappy": -2, "upset": -2, "sad": -2, "rude": -2, "ignored": -2, "ignoring": -2,
    "waste": -2, "wasted": -2, "nonsense": -2, "mess": -2, "joke": -2, "impossible": -2, "complaint": -2,
    "terrible": -3, "awful": -3, "horrible": -3, "useless": -3, "ridiculous": -3, "pathetic": -3,
    "worst": -3, "hate": -3, "angry": -3, "furious": -3, "scam": -3, "fraud": -3, "ripoff": -3,
    "unacceptable": -3, "outrageous": -3, "incompetent": -3, "stupid": -3, "garbage": -3, "rubbish": -3,
    "sucks": -3, "crap": -3, "nightmare": -3, "disgusting": -3, "disgusted": -3, "lied": -3, "lying": -3,
    "cheated": -3,
}  # fmt: skip
NEGATORS = frozenset(
    {"not", "no", "never", "nothing", "cannot", "cant", "dont", "doesnt", "didnt", "isnt", "wasnt", "wont", "aint"}
)
# "No thanks" declines politely; it is no complaint.
NEGATION_IMMUNE = frozenset({"thanks", "thank"})
INTENSIFIERS: dict[str, float] = {
    "very": 1.5, "really": 1.5, "so": 1.5, "too": 1.5, "extremely": 1.8, "incredibly": 1.8, "totally": 1.5,
    "completely": 1.5, "absolutely": 1.8, "utterly": 1.8, "truly": 1.5, "super": 1.5,
}  # fmt: skip
# A negator reaches this many words ahead ("not at all good"), but never past punctuation.
NEGATION_SCOPE = 3
# VADER's normalisation constant: one strong word scores about ±0.6, two about ±0.85.
NORMALISATION_ALPHA = 15.0
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[.!?,;:]")


def sentiment(text: str) -> float:
    """A deterministic lexicon score in [-1, 1]: negative below 0, 0 for text with no opinion words."""
    total = 0.0
    negate_left = 0
    boost = 1.0
    for token in _TOKEN.findall(text.lower().replace("\u2019", "'")):
        if not token[0].isalpha():
            negate_left, boost = 0, 1.0
        elif token in NEGATORS or token.endswith("n't"):
            negate_left = NEGATION_SCOPE + 1
        elif token in INTENSIFIERS:
            boost *= INTENSIFIERS[token]
        elif token in LEXICON:
            negated = negate_left > 0 and token not in NEGATION_IMMUNE
            total += LEXICON[token] * boost * (-1 if negated else 1)
            negate_left, boost = 0, 1.0
        else:
            boost = 1.0
        negate_left = max(negate_left - 1, 0)
    return total / (total * total + NORMALISATION_ALPHA) ** 0.5


@functools.lru_cache(maxsize=32)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern, re.IGNORECASE) for pattern in patterns)


def _first_match(text: str, patterns: Sequence[str]) -> tuple[str, str] | None:
    """The first pattern that matches ``text`` and the text it matched."""
    for compiled in _compiled(tuple(patterns)):
        if match := compiled.search(text):
            return compiled.pattern, match.group(0)
    return None


def human_requested(question: str, settings: TriggerSettings) -> Trigger | None:
    found = _first_match(question, settings.human_request_patterns)
    if found is None:
        return None
    pattern, matched = found
    return Trigger(
        HUMAN_REQUESTED, "immediate_transfer", "the user asked for a human", {"matched": matched, "pattern": pattern}
    )


def high_risk_topics(question: str, settings: TriggerSettings) -> list[Trigger]:
    """One trigger per matching topic, in the settings' order, so each names its topic."""
    triggers: list[Trigger] = []
    for topic, patterns in settings.high_risk_topics.items():
        if found := _first_match(question, patterns):
            pattern, matched = found
            triggers.append(
                Trigger(
                    HIGH_RISK_TOPIC,
                    "full_handoff",
                    f"the question touches a high-risk topic ({topic})",
                    {"topic": topic, "matched": matched, "pattern": pattern},
                )
            )
    return triggers


def repeated_rephrasing(
    question: str, earlier: Sequence[str], settings: TriggerSettings, embedder: Embedder | None
) -> Trigger | None:
    """Fires when at least ``rephrase_count`` earlier messages say nearly what ``question`` says."""
    if embedder is None or not earlier or len(earlier) < settings.rephrase_count:
        return None
    vectors = embedder.encode([question, *earlier])
    # Rows are L2-normalised, so the dot product is the cosine similarity.
    similarities = vectors[1:] @ vectors[0]
    similar = int(np.count_nonzero(similarities >= settings.rephrase_similarity))
    if similar < settings.rephrase_count:
        return None
    return Trigger(
        REPEATED_REPHRASING,
        "targeted",
        f"the user has asked this question {similar + 1} times in different words",
        {"similar": similar, "max_similarity": round(float(similarities.max()), 4)},
    )


def negative_sentiment(question: str, earlier: Sequence[str], settings: TriggerSettings) -> Trigger | None:
    """Fires on a negative message that is a sudden drop from the user's earlier mood.

    The baseline is the mean score of the earlier messages, or 0 (neutral) when there are none.
    A user who has been this angry all along is no spike: the drop, not the anger, is the signal
    that the conversation just went wrong. Persistent trouble shows up as rephrasing, a request
    for a human, or a low confidence score instead.
    """
    score = sentiment(question)
    if score > settings.negative_sentiment_threshold:
        return None
    baseline = sum(sentiment(text) for text in earlier) / len(earlier) if earlier else 0.0
    drop = baseline - score
    if drop < settings.sentiment_spike:
        return None
    return Trigger(
        NEGATIVE_SENTIMENT,
        "collaborative",
        "the user's mood dropped sharply",
        {"score": round(score, 4), "baseline": round(baseline, 4), "drop": round(drop, 4)},
    )


def detect_triggers(
    question: str, earlier: Sequence[str], settings: TriggerSettings, embedder: Embedder | None
) -> list[Trigger]:
    """Every trigger that fires on ``question``, most urgent escalation first.

    ``earlier`` holds the same user's earlier messages in this conversation, oldest first.
    Without an embedder, repeated rephrasing is not checked.
    """
    triggers = [
        human_requested(question, settings),
        *high_risk_topics(question, settings),
        repeated_rephrasing(question, earlier, settings, embedder),
        negative_sentiment(question, earlier, settings),
    ]
    fired = [trigger for trigger in triggers if trigger is not None]
    return sorted(fired, key=lambda trigger: ESCALATIONS.index(trigger.escalation))
