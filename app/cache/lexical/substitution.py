"""The substitution guard: the same wording but for one swapped content word."""

from __future__ import annotations

from difflib import SequenceMatcher

from app.cache.lexical.entities import FUNCTION_WORDS
from app.cache.lexical.numbers import is_number
from app.cache.lexical.question import AUXILIARIES, FILLERS
from app.cache.lexical.text import word_tokens

_STOPWORDS = FUNCTION_WORDS | AUXILIARIES | FILLERS
_STOPWORDS |= {"what's", "where's", "how's", "who's", "that's", "it's", "i", "i'm", "i've", "i'd", "my", "your", "any"}
_STOPWORDS |= {"there", "here", "some", "all", "just", "get", "got", "need", "want", "please", "yet", "now", "ever"}


_SUFFIXES = ("ing", "ed", "es", "s")


def _stem(word: str) -> str:
    """A crude English stem, enough to tell inflections apart from other words: "cutting" and "cut" are "cut",
    "practicing" and "practices" are "practic"."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    word = word.removesuffix("e") if len(word) > 3 else word
    return word[:-1] if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou" else word


def _variant(old: str, new: str) -> bool:
    """The same word inflected ("spider", "spiders"; "cutting", "cut") or misspelt ("retrun", "return")."""
    shared = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    inflected = (shared >= 4 and shared >= min(len(old), len(new)) - 1) or _stem(old) == _stem(new)
    return inflected or SequenceMatcher(None, old, new).ratio() >= 0.8


def substitution(cached: str, query: str) -> str | None:
    """The same wording but for one content word: "gift wrapping" vs "gift cards", "boiling" vs "freezing" point.

    With everything else shared, the embedding rates such a pair close whatever the swapped word means, and the
    swapped word is usually what the question is about. A synonym swap ("promo" vs "discount" code) is refused
    too: that costs a cache miss, not a wrong answer.
    """
    old_words, new_words = word_tokens(cached.replace("-", " ")), word_tokens(query.replace("-", " "))
    changes = SequenceMatcher(None, old_words, new_words, autojunk=False).get_opcodes()
    # Differences in function words only ("what is" vs "what's") do not count; one content word swapped does.
    content = [
        (old_words[i1:i2], new_words[j1:j2])
        for tag, i1, i2, j1, j2 in changes
        if tag != "equal" and not set(old_words[i1:i2] + new_words[j1:j2]) <= _STOPWORDS
    ]
    if len(content) != 1 or len(content[0][0]) != 1 or len(content[0][1]) != 1:
        return None
    (old,), (new,) = content[0]
    if old in _STOPWORDS or new in _STOPWORDS or _variant(old, new) or is_number(old) or is_number(new):
        return None  # numbers are the numbers guard's: "2" and "two" are one number
    return f"substitution: {old} vs {new}"
