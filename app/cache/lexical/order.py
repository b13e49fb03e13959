"""The order guard: the same two terms in the opposite direction ("Celsius to Fahrenheit" and back)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from app.cache.lexical.entities import entity_index
from app.cache.lexical.opposites import opposite_hits
from app.cache.lexical.text import word_tokens
from app.cache.lexical.units import unit_words

# Words that make the order of the two terms around them matter: "Celsius to Fahrenheit", "bigger than".
_DIRECTED = frozenset({"to", "into", "than", "from", "vs", "versus", "over"})


def _key_terms(text: str, names: Iterable[str]) -> list[tuple[str, int, bool]]:
    """(term, word position, directed) for names, units and opposite phrases; opposites always count as directed."""
    words = word_tokens(text.replace("-", " "))
    units_at = unit_words(text)
    names = set(names)
    terms = {(word, at, False) for at, word in enumerate(words) if word in names}
    terms |= {(unit, at, False) for at, unit in enumerate(units_at) if unit}  # "Celsius" is a name and a unit
    terms |= {(phrase, at, True) for _, _, phrase, at in opposite_hits(text)}
    return sorted(terms, key=lambda term: term[1])


def _before(terms: list[tuple[str, int, bool]], words: list[str], first: str, second: str) -> bool:
    """Whether ``first`` comes before ``second`` (each said once), joined by a directing word unless an opposite."""
    at = {term: (position, directed) for term, position, directed in terms}
    (start, directed), (end, _) = at[first], at[second]
    return start < end and (directed or any(word in _DIRECTED for word in words[start + 1 : end]))


def order(cached: str, query: str) -> str | None:
    """The same two terms in the opposite direction: "Celsius to Fahrenheit" vs "Fahrenheit to Celsius"."""
    names = [key for key in (*entity_index(cached)[0], *entity_index(query)[0]) if " " not in key and '"' not in key]
    cached_terms, query_terms = _key_terms(cached, names), _key_terms(query, names)
    cached_counts = Counter(term for term, _, _ in cached_terms)
    query_counts = Counter(term for term, _, _ in query_terms)
    # Terms said exactly once on both sides: with repeats, "which comes first" has no single answer.
    shared = sorted(term for term in cached_counts if cached_counts[term] == 1 and query_counts[term] == 1)
    cached_words, query_words = word_tokens(cached.replace("-", " ")), word_tokens(query.replace("-", " "))
    for first in shared:
        for second in shared:
            if (
                first != second
                and _before(cached_terms, cached_words, first, second)
                and _before(query_terms, query_words, second, first)
            ):
                return f"order: {first} … {second} vs {second} … {first}"
    return None
