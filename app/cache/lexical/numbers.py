"""The numbers guard: different numbers, in digits or spelled out; dates are left to the dates guard."""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation

from app.cache.lexical.dates import date_spans
from app.cache.lexical.text import EMAIL, URL, differ, has_digit, normalise, word_tokens

_DIGITS = re.compile(r"\d{1,3}(?:,\d{3})+(?![\d,])(?:\.\d+)?|\d+(?:\.\d+)?")
_UNIT_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_UNIT_WORDS += ("ten", "eleven")
_UNIT_WORDS += ("twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
# "one" is left out: it is a pronoun as often as a number ("which one", "share one email" = "the same email").
_UNITS = {word: value for value, word in enumerate(_UNIT_WORDS) if word != "one"} | {"twice": 2, "thrice": 3}
_TEN_WORDS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_TENS = {word: 10 * value for value, word in enumerate(_TEN_WORDS, start=2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}


def _canonical(digits: str) -> str:
    try:
        return format(Decimal(digits.replace(",", "")).normalize(), "f")
    except InvalidOperation:  # pragma: no cover - the pattern only matches digits
        return digits


def _spelled_numbers(words: list[str]) -> list[str]:
    """Numbers written as words: "two", "twenty-five" (as "twenty", "five"), "a hundred", "twice"."""
    found: list[str] = []
    total = current = 0
    in_number = False
    for index, word in enumerate([*words, ""]):
        if word in _UNITS:
            current, in_number = current + _UNITS[word], True
        elif word in _TENS:
            current, in_number = current + _TENS[word], True
        elif word in _SCALES and (in_number or (index > 0 and words[index - 1] in {"a", "an"})):
            scale = _SCALES[word]
            current = max(current, 1) * scale
            if scale > 100:
                total, current = total + current, 0
            in_number = True
        elif word == "and" and in_number:
            continue
        elif in_number:
            found.append(str(total + current))
            total = current = 0
            in_number = False
    return found


def is_number(word: str) -> bool:
    """Whether a lower-case word is a number, in digits or spelled ("one" included here)."""
    return has_digit(word) or word in _UNITS or word in _TENS or word in _SCALES or word == "one"


@functools.lru_cache(maxsize=4096)
def _numbers(text: str) -> frozenset[str]:
    text = URL.sub(" ", EMAIL.sub(" ", normalise(text)))
    # Dates and times are the dates guard's: "March 5th" and "5 March" are the same date with the same digits.
    for start, end, _ in sorted(date_spans(text), reverse=True):
        text = text[:start] + " " + text[end:]
    found = {_canonical(match.group()) for match in _DIGITS.finditer(text)}
    found.update(_spelled_numbers(word_tokens(text.replace("-", " "))))
    return frozenset(found)


def numbers(cached: str, query: str) -> str | None:
    """Different numbers: order ids, amounts, quantities ("1,000" and "1000" are the same)."""
    return differ("numbers", _numbers(cached), _numbers(query))
