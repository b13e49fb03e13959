"""The question guard: questions after different kinds of answer (who, when, where, how much, yes/no)."""

from __future__ import annotations

import functools
import re

from app.cache.lexical.text import normalise, word_tokens

FILLERS = frozenset({"hi", "hello", "hey", "please", "pls", "so", "ok", "okay", "um", "and", "but", "also", "quick"})
AUXILIARIES = frozenset(
    {"is", "are", "am", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should", "shall"}
    | {"may", "might", "must", "has", "have", "had"}
)
_TIME_UNITS = frozenset({"minutes", "hours", "days", "weeks", "months", "years", "nights"})
_MEASURES = frozenset({"tall", "high", "big", "large", "far", "old", "heavy", "fast", "wide", "deep", "hot", "cold"})
_FOCUS_AFTER_WHAT = {"time": "time", "year": "time", "day": "time", "date": "time"}


def _clause_focus(words: list[str]) -> str | None:
    """What the clause starting at ``words`` asks for, or None when it does not start as a question."""
    first, second = words[0], words[1] if len(words) > 1 else ""
    third = words[2] if len(words) > 2 else ""
    if first in {"who", "whom", "whose"}:
        return "who"
    if first == "when" or (first == "what" and second in _FOCUS_AFTER_WHAT):
        return "time"
    if first in {"where", "where's", "wheres"}:
        return "place"
    if first in {"why", "why's"} or (first == "how" and second == "come"):
        return "reason"
    if first == "how":
        if second in {"long", "soon", "quickly"} or (second == "many" and third in _TIME_UNITS):
            return "time"
        if second == "much":
            return "amount"
        if second == "many":
            return "count"
        if second == "often":
            return "frequency"
        if second in _MEASURES:
            return "measure"
        return "open"  # "how do I ...": the manner, which many wordings share
    base = first.removesuffix("n't") if first.endswith("n't") else first
    if base in AUXILIARIES and second in AUXILIARIES:
        return None  # "were do you ship": a misspelt "where", not a yes/no question
    if base in AUXILIARIES or first in {"can't", "won't", "don't", "isn't", "aren't"}:
        # "Can you track ..." is a request, not a yes/no question; "A or B?" asks to choose.
        if second == "you" and base in {"can", "could", "would", "will"}:
            return "open"
        return "open" if "or" in words else "yes/no"
    if first in {"what", "what's", "whats", "which"}:
        return "open"
    return None


@functools.lru_cache(maxsize=4096)
def _focus(text: str) -> str | None:
    """The kind of answer the first question in ``text`` asks for: who, time, place, reason, amount, yes/no …"""
    for clause in re.split(r"[,;.?!:\n]+", normalise(text)):
        words = word_tokens(clause)
        while words and words[0] in FILLERS:
            words = words[1:]
        if words:
            focus = _clause_focus(words)
            if focus is not None:
                return focus
    return None


def question(cached: str, query: str) -> str | None:
    """Questions after different kinds of answer: "Who invented the telephone?" vs "When was it invented?".

    Open questions ("what ...", "how do I ...") and statements match any kind: they are worded too many ways.
    """
    cached_focus, query_focus = _focus(cached), _focus(query)
    if cached_focus in {None, "open"} or query_focus in {None, "open"} or cached_focus == query_focus:
        return None
    return f"question: {cached_focus} vs {query_focus}"
