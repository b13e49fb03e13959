"""The dates guard: different days, dates or times of day, however they are written."""

from __future__ import annotations

import functools
import re

from app.cache.lexical.text import differ, normalise, word_tokens

_MONTH_NAMES: tuple[str, ...] = ("january", "february", "march", "april", "may", "june")
_MONTH_NAMES += ("july", "august", "september", "october", "november", "december")
MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
# Short forms only count next to a day number ("Mar 5"), where they cannot be a word ("mar", "jan").
MONTHS |= {name[:3]: number for number, name in enumerate(_MONTH_NAMES, start=1)} | {"sept": 9}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_ORDINAL = r"(?:st|nd|rd|th)?"
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_SLASH_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b")
_MONTH_DAY = re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}}){_ORDINAL}\b(?:,?\s+(\d{{4}})\b)?", re.I)
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}}){_ORDINAL}\s+(?:of\s+)?({_MONTH})\b\.?(?:,?\s+(\d{{4}})\b)?", re.I)
_MONTH_YEAR = re.compile(rf"\b({_MONTH})\.?,?\s+(\d{{4}})\b", re.I)
_CLOCK = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\b\.?|\b(\d{1,2}):(\d{2})\b", re.I)
_WEEKDAYS = {
    **{day: day for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")},
    # Short forms that are not also common words ("sat", "sun" and "wed" are left out for that reason).
    **{"mon": "monday", "tue": "tuesday", "tues": "tuesday", "thu": "thursday", "thur": "thursday"},
    **{"thurs": "thursday", "fri": "friday"},
}
_DAY_WORDS = {
    **{word: word for word in ("today", "tomorrow", "yesterday", "tonight", "weekend", "weekday", "holiday")},
    **{word: word for word in ("morning", "afternoon", "evening", "night", "overnight")},
    "noon": "12:00",
    "midday": "12:00",
    "midnight": "00:00",
}
_RELATIVE = re.compile(r"\b(this|next|last|previous|coming)\s+(week|month|year|weekend)\b", re.I)
_SAME_OR_NEXT_DAY = re.compile(r"\b(same|next)[\s-]day\b", re.I)
# A month name that is also a common word ("may" the verb, "march" the walk) is a month only where a month fits:
# "in May", "since march" (with a day or a year it was read above as a date); otherwise it is the word.
_WORD_OR_MONTH = frozenset({"may", "march"})
_BEFORE_A_MONTH = frozenset({"in", "of", "since", "until", "till", "by", "during", "early", "mid", "late", "from"})


def date_spans(text: str) -> list[tuple[int, int, str]]:
    """Dates and times that carry digits, normalised, with where they are (the numbers guard skips them)."""
    spans: list[tuple[int, int, str]] = []

    def add(match: re.Match[str], value: str) -> None:
        if not any(start < match.end() and match.start() < end for start, end, _ in spans):
            spans.append((match.start(), match.end(), value))

    for match in _ISO_DATE.finditer(text):
        year, month, day = (int(part) for part in match.groups())
        add(match, f"{year:04d}-{month:02d}-{day:02d}")
    for match in _SLASH_DATE.finditer(text):
        first, second, in_year = (int(part) for part in match.groups())
        add(match, f"{first}/{second}/{in_year}")
    for pattern, month_group, day_group in ((_MONTH_DAY, 1, 2), (_DAY_MONTH, 2, 1)):
        for match in pattern.finditer(text):
            month_name = _MONTH_NAMES[MONTHS[match.group(month_group).lower()] - 1]
            with_year = f" {match.group(3)}" if match.group(3) else ""
            add(match, f"{month_name} {int(match.group(day_group))}{with_year}")
    for match in _MONTH_YEAR.finditer(text):
        add(match, f"{_MONTH_NAMES[MONTHS[match.group(1).lower()] - 1]} {match.group(2)}")
    for match in _CLOCK.finditer(text):
        if match.group(3):
            hour, minute = int(match.group(1)) % 12, int(match.group(2) or 0)
            hour += 12 if match.group(3).lower() == "p" else 0
        else:
            hour, minute = int(match.group(4)), int(match.group(5))
        add(match, f"{hour:02d}:{minute:02d}")
    return spans


def day_of(word: str) -> str | None:
    """The normalised day or time of day a lower-case word names ("sundays" is "sunday"), if any."""
    singular = word.removesuffix("s") if word.endswith("s") and len(word) > 4 else word
    return _WEEKDAYS.get(singular) or _DAY_WORDS.get(singular)


def _after_a_month_word(words: list[str], index: int) -> bool:
    return index > 0 and words[index - 1] in _BEFORE_A_MONTH


@functools.lru_cache(maxsize=4096)
def _dates(text: str) -> frozenset[str]:
    text = normalise(text)
    spans = date_spans(text)
    found = {value for _, _, value in spans}
    rest = "".join(" " if any(start <= i < end for start, end, _ in spans) else char for i, char in enumerate(text))
    for match in _RELATIVE.finditer(rest):
        found.add(f"{match.group(1).lower()} {match.group(2).lower()}")
    for match in _SAME_OR_NEXT_DAY.finditer(rest):
        found.add(f"{match.group(1).lower()}-day")
    rest = _SAME_OR_NEXT_DAY.sub(" ", _RELATIVE.sub(" ", rest))
    words = word_tokens(rest)
    for index, word in enumerate(words):
        day = day_of(word)
        if day:
            found.add(day)
        elif word in _MONTH_NAMES and (word not in _WORD_OR_MONTH or _after_a_month_word(words, index)):
            found.add(word)
    return frozenset(found)


def dates(cached: str, query: str) -> str | None:
    """Different days, dates or times: "open on Sunday?" is not "open on Monday?"."""
    return differ("dates", _dates(cached), _dates(query))
