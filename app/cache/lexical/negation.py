"""The negation guard: a "not" (or a negating prefix) in one text only."""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.cache.lexical.text import CACHED, QUERY, normalise, word_tokens

_NEGATORS = frozenset({"not", "no", "never", "none", "nothing", "nobody", "nowhere", "neither", "nor", "non"})
_NEGATORS |= {"without", "cannot", "unable"}  # "can't log in" and "unable to sign in" say the same
# Apostrophe-less contractions as typed on phones; "cant" and "wont" are rare as real words in support chat.
_BARE_CONTRACTIONS = frozenset(
    {"dont", "doesnt", "didnt", "cant", "couldnt", "wont", "wouldnt", "shouldnt", "isnt", "arent", "wasnt", "werent"}
    | {"havent", "hasnt", "hadnt", "aint", "mustnt", "neednt"}
)
# "whether or not" and "is it free or not" ask the same as without it; "No. 1234" is a number sign.
_NOT_NEGATION = re.compile(r"\b(?:or not|no\.\s*(?=#?\d)|no\s*(?=#\s*\d))", re.I)


# "Isn't Paris the capital of France?" asks what "Is Paris the capital of France?" asks: a leading negative
# auxiliary in a question expects a yes, it does not flip the question.
_RHETORICAL = re.compile(
    r"(?:^|(?<=[.!?;]))\s*(?:is|are|was|were|do|does|did|ca|could|wo|would|should|have|has)n'?t\b(?=[^.!?]*\?)", re.I
)


def _negations(text: str) -> list[str]:
    words = word_tokens(_RHETORICAL.sub(" ", _NOT_NEGATION.sub(" ", normalise(text))))
    return [word for word in words if word in _NEGATORS or word in _BARE_CONTRACTIONS or word.endswith("n't")]


# A negating prefix with the shortest stem it may leave: "unused" is "not used", but "unless" is not "not less".
_NEGATING_PREFIXES = (("non", 4), ("un", 4), ("dis", 5), ("in", 5), ("im", 5), ("ir", 5), ("il", 5))
_NOT_PREFIXED = frozenset({"unless", "discount", "discover", "invoice", "impress", "dispatch", "install"})


def _prefix_negation(words: Iterable[str], other: frozenset[str]) -> tuple[str, str] | None:
    """A word in ``words`` that is a word of ``other`` with a negating prefix ("unopened" and "opened")."""
    for word in words:
        if word in other or word in _NOT_PREFIXED:
            continue
        for prefix, shortest in _NEGATING_PREFIXES:
            stem = word[len(prefix) :]
            if word.startswith(prefix) and len(stem) >= shortest and stem in other:
                return word, stem
    return None


def negation(cached: str, query: str) -> str | None:
    """A negation in one text only: "cancel my order" is not "don't cancel my order", "unused" is not "used".

    Only presence is compared, not which word: "can't log in" and "unable to sign in" agree.
    """
    in_cached, in_query = _negations(cached), _negations(query)
    if bool(in_cached) != bool(in_query):
        side, words = (CACHED, in_cached) if in_cached else (QUERY, in_query)
        return f"negation: '{words[0]}' only in {side}"
    cached_words, query_words = frozenset(word_tokens(cached)), frozenset(word_tokens(query))
    if prefixed := _prefix_negation(cached_words, query_words):
        return f"negation: '{prefixed[0]}' vs '{prefixed[1]}'"
    if prefixed := _prefix_negation(query_words, cached_words):
        return f"negation: '{prefixed[1]}' vs '{prefixed[0]}'"
    return None
