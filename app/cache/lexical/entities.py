"""The entities guard: a name, email, URL or quoted string in one text and not the other."""

from __future__ import annotations

import functools
import re

from app.cache.lexical.dates import MONTHS, day_of
from app.cache.lexical.text import CACHED, EMAIL, QUERY, URL, WORD, has_digit, normalise, word_tokens

_QUOTED = re.compile(r"\"([^\"]{1,80})\"|(?<!\w)'([^']{1,80})'(?!\w)")
# Capitalised mid-sentence without being a name: the pronoun, greetings, politeness, "Christmas Day", "No. 12".
_NOT_NAMES = frozenset(
    {"i", "i'm", "i've", "i'd", "i'll", "ok", "okay", "hi", "hello", "hey", "thanks", "please", "day", "no"}
)
# "P.O. box", "U.S.": initials with dots are one name, compared as "PO", "US".
_INITIALS = re.compile(r"\b(?:[A-Za-z]\.){2,}")
# A capitalised function word mid-sentence means Title Case or ALL CAPS: capitals then say nothing about names.
FUNCTION_WORDS = frozenset(
    {"a", "an", "the", "my", "your", "our", "their", "his", "her", "its", "is", "are", "was", "were", "be"}
    | {"do", "does", "did", "can", "could", "will", "would", "should", "to", "of", "in", "on", "at", "for", "from"}
    | {"with", "and", "or", "how", "what", "when", "where", "why", "who", "which", "me", "you", "we", "they", "it"}
)


@functools.lru_cache(maxsize=4096)
def entity_index(text: str) -> tuple[dict[str, str], frozenset[str]]:
    """Names in the text (lower-case key, as written) and every lower-case word, for presence checks.

    Words with digits ("X200", "2FA") are left to the numbers guard.
    """
    text = _INITIALS.sub(lambda match: match.group().replace(".", ""), normalise(text))
    names: dict[str, str] = {}
    for pattern in (EMAIL, URL):
        for match in pattern.finditer(text):
            value = match.group().rstrip(".,;:!?)")
            names[value.lower()] = value
        text = pattern.sub(" ", text)
    for match in _QUOTED.finditer(text):
        quoted = " ".join((match.group(1) or match.group(2)).split())
        names[f'"{quoted.lower()}"'] = f'"{quoted}"'
    words = frozenset(word_tokens(text))
    text = _QUOTED.sub(" _ ", text)  # a quoted name is already compared whole
    capitalised: dict[str, str] = {}
    title_case = False
    for match in WORD.finditer(text):
        word = match.group().removesuffix("'s")
        lower = word.lower()
        preceding = text[: match.start()].rstrip(" \t")
        if word == lower or not preceding.strip() or preceding[-1] in ".!?\n":
            continue  # lower case, or the first word of a sentence: capitalised whatever it is
        if lower in FUNCTION_WORDS:
            title_case = True
        elif lower not in _NOT_NAMES and not day_of(lower) and lower not in MONTHS and not has_digit(word):
            capitalised.setdefault(lower, word)
    if not title_case:
        names.update(capitalised)
    return names, words


def _contains(text: str, key: str) -> bool:
    """Whether a name (lower-case) occurs in the text in any case: as a word, a quoted string, an address."""
    names, words = entity_index(text)
    if key in names or key in words:
        return True
    # A quoted string or an address counts wherever it is written, quoted or not; a name only as a whole word.
    if not (key.startswith('"') or "@" in key or "." in key):
        return False
    return re.search(rf"(?<!\w){re.escape(key.strip(chr(34)))}(?!\w)", normalise(text).lower()) is not None


def entities(cached: str, query: str) -> str | None:
    """A name, email, URL or quoted string in one text and not the other: "Paris" is not "Berlin"."""
    cached_names, query_names = entity_index(cached)[0], entity_index(query)[0]
    only_cached = [shown for key, shown in cached_names.items() if not _contains(query, key)]
    only_query = [shown for key, shown in query_names.items() if not _contains(cached, key)]
    if only_cached and only_query:
        return f"entities: {', '.join(only_cached)} vs {', '.join(only_query)}"
    if only_cached or only_query:
        side, shown = (CACHED, only_cached) if only_cached else (QUERY, only_query)
        return f"entities: {', '.join(shown)} only in {side}"
    return None
