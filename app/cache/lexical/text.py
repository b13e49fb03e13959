"""What every cache guard shares: the Guard signature, tokenising, and the reason for two sets that differ."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

Guard = Callable[[str, str], str | None]
"""Takes (cached, query); returns None, or a reason that starts with the guard's name."""

CACHED, QUERY = "the cached query", "the query"

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "“": '"', "”": '"', "„": '"'})
# Contractions stay one token ("don't", "can't"), so negation survives tokenising.
WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)*")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(
    r"(?:https?://|www\.)[^\s<>\"']+|\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|co|uk|de|fr|eu|app|dev)\b", re.IGNORECASE
)


def normalise(text: str) -> str:
    return text.translate(_APOSTROPHES)


def word_tokens(text: str) -> list[str]:
    """Lower-case word tokens, possessive 's dropped ("Amazon's" is "amazon")."""
    return [word.lower().removesuffix("'s") for word in WORD.findall(normalise(text))]


def has_digit(word: str) -> bool:
    return any(char.isdigit() for char in word)


def differ(name: str, cached: Iterable[str], query: Iterable[str]) -> str | None:
    """The reason for a guard whose two sides should hold the same items, or None when they do."""
    only_cached = sorted(set(cached) - set(query))
    only_query = sorted(set(query) - set(cached))
    if not only_cached and not only_query:
        return None
    if only_cached and only_query:
        return f"{name}: {', '.join(only_cached)} vs {', '.join(only_query)}"
    side, items = (CACHED, only_cached) if only_cached else (QUERY, only_query)
    return f"{name}: {', '.join(items)} only in {side}"
