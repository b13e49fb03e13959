"""Verification guards for a semantic cache: deterministic rules that reject known false hits.

Sentence embeddings score a query and its negation, two order numbers or two
weekdays as near-identical (0.87–0.98 on all-MiniLM-L6-v2), so a similarity
threshold alone cannot keep them apart. Each guard compares one kind of detail
the embedding blurs and returns a short reason when the two texts differ in it:
negation, numbers, dates and times, names, units, opposite words, the direction
of "X to Y", the kind of answer a question asks for, and a single swapped
content word. :func:`conflict` runs them in order. They are pure Python, need
no model, and err on the side of refusing: a refused hit costs one agent call,
a wrong hit serves a wrong answer. ``evals/cache_pairs.py`` measures what each
one removes and what it costs. Each guard lives in ``app/cache/lexical/``, one
module per kind of detail; this module is their registry.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.cache.lexical.dates import dates
from app.cache.lexical.entities import entities
from app.cache.lexical.negation import negation
from app.cache.lexical.numbers import numbers
from app.cache.lexical.opposites import opposites
from app.cache.lexical.order import order
from app.cache.lexical.question import question
from app.cache.lexical.substitution import substitution
from app.cache.lexical.text import Guard
from app.cache.lexical.units import units
from core.errors import ConfigError

GUARDS: list[tuple[str, Guard]] = [
    ("negation", negation),
    ("numbers", numbers),
    ("dates", dates),
    ("entities", entities),
    ("units", units),
    ("opposites", opposites),
    ("order", order),
    ("question", question),
    ("substitution", substitution),
]
"""Every guard in the order :func:`conflict` runs them; an eval can report what each one contributes."""
GUARD_NAMES: tuple[str, ...] = tuple(name for name, _ in GUARDS)


def named(names: Iterable[str]) -> list[tuple[str, Guard]]:
    """The guards called ``names`` (``[cache] guards``), in :data:`GUARDS` order; an unknown name is a ConfigError."""
    wanted = set(names)
    unknown = sorted(wanted - set(GUARD_NAMES))
    if unknown:
        raise ConfigError(f"unknown cache guards {unknown} in [cache] guards: choose from {', '.join(GUARD_NAMES)}")
    return [(name, guard) for name, guard in GUARDS if name in wanted]


def conflict(cached: str, query: str, guards: Iterable[tuple[str, Guard]] = GUARDS) -> str | None:
    """Why the answer cached for ``cached`` must not be served for ``query``, or None when nothing forbids it."""
    for _, guard in guards:
        reason = guard(cached, query)
        if reason is not None:
            return reason
    return None
