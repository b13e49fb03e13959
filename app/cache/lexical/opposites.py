"""The opposites guard: one text says one side of an opposite pair ("add"), the other the other ("remove")."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from app.cache.lexical.text import word_tokens


def _inflect(*verbs: str) -> tuple[str, ...]:
    """Regular verb forms: "close" gives close, closes, closed, closing."""
    forms: list[str] = []
    for verb in verbs:
        stem = verb[:-1] if verb.endswith("e") else verb
        forms += [verb, verb + ("es" if verb.endswith(("s", "sh", "ch", "x")) else "s"), stem + "ed", stem + "ing"]
    return tuple(forms)


# Each pair: words for one side, words for the other. Multi-word phrases are matched before single words, so
# "least expensive" never counts as "expensive".
_OPPOSITES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("cheap", "cheaper", "cheapest", "least expensive", "less expensive", "lowest price", "lowest priced"),
        ("expensive", "most expensive", "more expensive", "priciest", "pricier", "costliest", "highest price"),
    ),
    (("before", "prior to", "earlier than"), ("after", "later than")),
    (("earliest",), ("latest",)),
    (("first",), ("last",)),
    (("oldest",), ("newest",)),
    (("minimum", "min", "at least"), ("maximum", "max", "at most")),
    (("higher", "highest"), ("lower", "lowest")),
    (("largest", "biggest"), ("smallest",)),
    (("longest",), ("shortest",)),
    (_inflect("increase", "raise"), _inflect("decrease", "reduce", "lower")),
    (("add", "adds", "added", "adding"), _inflect("remove", "delete")),
    ((*_inflect("enable", "activate"), "turn on", "switch on"), (*_inflect("disable", "deactivate"), "turn off")),
    (_inflect("open"), (*_inflect("close"), "shut")),
    (_inflect("lock"), _inflect("unlock")),
    (_inflect("subscribe"), _inflect("unsubscribe")),
    (_inflect("upgrade"), _inflect("downgrade")),
    (_inflect("accept"), _inflect("reject", "decline")),
    (_inflect("include"), _inflect("exclude")),
    (_inflect("upload"), _inflect("download")),
    (
        ("log in", "logged in", "login", "sign in", "signed in", "signin"),
        ("log out", "logged out", "logout", "sign out"),
    ),
    (("import", "imports", "imported"), ("export", "exports", "exported")),
    (("domestic", "domestically"), ("international", "internationally", "abroad", "overseas")),
    (("online",), ("in store", "in-store", "instore", "offline")),
    (("full",), ("partial",)),
    (("credit",), ("debit",)),
    (("public",), ("private",)),
    (("men", "men's", "mens"), ("women", "women's", "womens")),
    (("fast", "faster", "fastest", "express", "expedited"), ("slow", "slower", "slowest", "standard", "economy")),
    (("north", "northern"), ("south", "southern")),
    (("east", "eastern"), ("west", "western")),
    (("hot", "hottest", "warm", "warmest"), ("cold", "coldest", "cool", "coolest")),
)


# Every phrase as (words, pair index, side), pair by pair and longest first within a pair.
_OPPOSITE_PHRASES = sorted(
    (
        (tuple(phrase.replace("-", " ").split()), index, side)
        for index, pair in enumerate(_OPPOSITES)
        for side in (0, 1)
        for phrase in pair[side]
    ),
    key=lambda entry: (entry[1], -len(entry[0])),
)


@functools.lru_cache(maxsize=4096)
def opposite_hits(text: str) -> tuple[tuple[int, int, str, int], ...]:
    """Every opposite-pair phrase in ``text``: (pair index, side, phrase, word position); a word counts once."""
    words = word_tokens(text.replace("-", " "))
    present = set(words)
    taken = [False] * len(words)
    hits = []
    for phrase, index, side in _OPPOSITE_PHRASES:
        if phrase[0] not in present:
            continue
        for start in range(len(words) - len(phrase) + 1):
            span = range(start, start + len(phrase))
            if tuple(words[start : start + len(phrase)]) == phrase and not any(taken[i] for i in span):
                hits.append((index, side, " ".join(phrase), start))
                for i in span:
                    taken[i] = True
    return tuple(hits)


def _sides(hits: Iterable[tuple[int, int, str, int]], pair: int) -> tuple[str | None, str | None]:
    """The first phrase of each side of one opposite pair among ``hits`` (None for a side not said)."""
    found: list[str | None] = [None, None]
    for index, side, phrase, _ in sorted(hits, key=lambda hit: hit[3]):
        if index == pair and found[side] is None:
            found[side] = phrase
    return found[0], found[1]


def opposites(cached: str, query: str) -> str | None:
    """One text says one side of an opposite pair, the other says only the other side: "add" vs "remove"."""
    cached_hits, query_hits = opposite_hits(cached), opposite_hits(query)
    for pair in sorted({hit[0] for hit in cached_hits} & {hit[0] for hit in query_hits}):
        cached_sides, query_sides = _sides(cached_hits, pair), _sides(query_hits, pair)
        for one, other in ((0, 1), (1, 0)):
            said, answered = cached_sides[one], query_sides[other]
            # Only a clean swap is a conflict: a text that names both sides is a comparison (see the order guard).
            if said and answered and cached_sides[other] is None and query_sides[one] is None:
                return f"opposites: {said} vs {answered}"
    return None
