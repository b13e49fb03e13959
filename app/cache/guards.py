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
one removes and what it costs.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from difflib import SequenceMatcher

from core.errors import ConfigError

Guard = Callable[[str, str], str | None]
"""Takes (cached, query); returns None, or a reason that starts with the guard's name."""

CACHED, QUERY = "the cached query", "the query"

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "“": '"', "”": '"', "„": '"'})
# Contractions stay one token ("don't", "can't"), so negation survives tokenising.
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)*")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>\"']+|\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|co|uk|de|fr|eu|app|dev)\b", re.IGNORECASE
)


def _normalise(text: str) -> str:
    return text.translate(_APOSTROPHES)


def _words(text: str) -> list[str]:
    """Lower-case word tokens, possessive 's dropped ("Amazon's" is "amazon")."""
    return [word.lower().removesuffix("'s") for word in _WORD.findall(_normalise(text))]


def _has_digit(word: str) -> bool:
    return any(char.isdigit() for char in word)


def _differ(name: str, cached: Iterable[str], query: Iterable[str]) -> str | None:
    """The reason for a guard whose two sides should hold the same items, or None when they do."""
    only_cached = sorted(set(cached) - set(query))
    only_query = sorted(set(query) - set(cached))
    if not only_cached and not only_query:
        return None
    if only_cached and only_query:
        return f"{name}: {', '.join(only_cached)} vs {', '.join(only_query)}"
    side, items = (CACHED, only_cached) if only_cached else (QUERY, only_query)
    return f"{name}: {', '.join(items)} only in {side}"


# --- negation -------------------------------------------------------------------------------------------------

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
    words = _words(_RHETORICAL.sub(" ", _NOT_NEGATION.sub(" ", _normalise(text))))
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
    cached_words, query_words = frozenset(_words(cached)), frozenset(_words(query))
    if prefixed := _prefix_negation(cached_words, query_words):
        return f"negation: '{prefixed[0]}' vs '{prefixed[1]}'"
    if prefixed := _prefix_negation(query_words, cached_words):
        return f"negation: '{prefixed[1]}' vs '{prefixed[0]}'"
    return None


# --- dates and times ------------------------------------------------------------------------------------------

_MONTH_NAMES: tuple[str, ...] = ("january", "february", "march", "april", "may", "june")
_MONTH_NAMES += ("july", "august", "september", "october", "november", "december")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
# Short forms only count next to a day number ("Mar 5"), where they cannot be a word ("mar", "jan").
_MONTHS |= {name[:3]: number for number, name in enumerate(_MONTH_NAMES, start=1)} | {"sept": 9}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
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
# "may" is a month only where a month fits: "in May", "May 5", "since may"; otherwise it is the verb.
_MAY_AS_MONTH = frozenset({"in", "of", "since", "until", "till", "by", "during", "early", "mid", "late", "from"})


def _date_spans(text: str) -> list[tuple[int, int, str]]:
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
            month_name = _MONTH_NAMES[_MONTHS[match.group(month_group).lower()] - 1]
            with_year = f" {match.group(3)}" if match.group(3) else ""
            add(match, f"{month_name} {int(match.group(day_group))}{with_year}")
    for match in _MONTH_YEAR.finditer(text):
        add(match, f"{_MONTH_NAMES[_MONTHS[match.group(1).lower()] - 1]} {match.group(2)}")
    for match in _CLOCK.finditer(text):
        if match.group(3):
            hour, minute = int(match.group(1)) % 12, int(match.group(2) or 0)
            hour += 12 if match.group(3).lower() == "p" else 0
        else:
            hour, minute = int(match.group(4)), int(match.group(5))
        add(match, f"{hour:02d}:{minute:02d}")
    return spans


def _day(word: str) -> str | None:
    """The normalised day or time of day a lower-case word names ("sundays" is "sunday"), if any."""
    singular = word.removesuffix("s") if word.endswith("s") and len(word) > 4 else word
    return _WEEKDAYS.get(singular) or _DAY_WORDS.get(singular)


@functools.lru_cache(maxsize=4096)
def _dates(text: str) -> frozenset[str]:
    text = _normalise(text)
    spans = _date_spans(text)
    found = {value for _, _, value in spans}
    rest = "".join(" " if any(start <= i < end for start, end, _ in spans) else char for i, char in enumerate(text))
    for match in _RELATIVE.finditer(rest):
        found.add(f"{match.group(1).lower()} {match.group(2).lower()}")
    for match in _SAME_OR_NEXT_DAY.finditer(rest):
        found.add(f"{match.group(1).lower()}-day")
    rest = _SAME_OR_NEXT_DAY.sub(" ", _RELATIVE.sub(" ", rest))
    words = _words(rest)
    for index, word in enumerate(words):
        day = _day(word)
        if day:
            found.add(day)
        elif word in _MONTH_NAMES and word != "may":
            found.add(word)
        elif word == "may" and index > 0 and words[index - 1] in _MAY_AS_MONTH:
            found.add("may")
    return frozenset(found)


def dates(cached: str, query: str) -> str | None:
    """Different days, dates or times: "open on Sunday?" is not "open on Monday?"."""
    return _differ("dates", _dates(cached), _dates(query))


# --- numbers --------------------------------------------------------------------------------------------------

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


@functools.lru_cache(maxsize=4096)
def _numbers(text: str) -> frozenset[str]:
    text = _URL.sub(" ", _EMAIL.sub(" ", _normalise(text)))
    # Dates and times are the dates guard's: "March 5th" and "5 March" are the same date with the same digits.
    for start, end, _ in sorted(_date_spans(text), reverse=True):
        text = text[:start] + " " + text[end:]
    found = {_canonical(match.group()) for match in _DIGITS.finditer(text)}
    found.update(_spelled_numbers(_words(text.replace("-", " "))))
    return frozenset(found)


def numbers(cached: str, query: str) -> str | None:
    """Different numbers: order ids, amounts, quantities ("1,000" and "1000" are the same)."""
    return _differ("numbers", _numbers(cached), _numbers(query))


# --- named entities -------------------------------------------------------------------------------------------

_QUOTED = re.compile(r"\"([^\"]{1,80})\"|(?<!\w)'([^']{1,80})'(?!\w)")
# Capitalised mid-sentence without being a name: the pronoun, greetings, politeness, "Christmas Day", "No. 12".
_NOT_NAMES = frozenset(
    {"i", "i'm", "i've", "i'd", "i'll", "ok", "okay", "hi", "hello", "hey", "thanks", "please", "day", "no"}
)
# "P.O. box", "U.S.": initials with dots are one name, compared as "PO", "US".
_INITIALS = re.compile(r"\b(?:[A-Za-z]\.){2,}")
# A capitalised function word mid-sentence means Title Case or ALL CAPS: capitals then say nothing about names.
_FUNCTION_WORDS = frozenset(
    {"a", "an", "the", "my", "your", "our", "their", "his", "her", "its", "is", "are", "was", "were", "be"}
    | {"do", "does", "did", "can", "could", "will", "would", "should", "to", "of", "in", "on", "at", "for", "from"}
    | {"with", "and", "or", "how", "what", "when", "where", "why", "who", "which", "me", "you", "we", "they", "it"}
)


@functools.lru_cache(maxsize=4096)
def _entities(text: str) -> tuple[dict[str, str], frozenset[str]]:
    """Names in the text (lower-case key, as written) and every lower-case word, for presence checks.

    Words with digits ("X200", "2FA") are left to the numbers guard.
    """
    text = _INITIALS.sub(lambda match: match.group().replace(".", ""), _normalise(text))
    names: dict[str, str] = {}
    for pattern in (_EMAIL, _URL):
        for match in pattern.finditer(text):
            value = match.group().rstrip(".,;:!?)")
            names[value.lower()] = value
        text = pattern.sub(" ", text)
    for match in _QUOTED.finditer(text):
        quoted = " ".join((match.group(1) or match.group(2)).split())
        names[f'"{quoted.lower()}"'] = f'"{quoted}"'
    words = frozenset(_words(text))
    text = _QUOTED.sub(" _ ", text)  # a quoted name is already compared whole
    capitalised: dict[str, str] = {}
    title_case = False
    for match in _WORD.finditer(text):
        word = match.group().removesuffix("'s")
        lower = word.lower()
        preceding = text[: match.start()].rstrip(" \t")
        if word == lower or not preceding.strip() or preceding[-1] in ".!?\n":
            continue  # lower case, or the first word of a sentence: capitalised whatever it is
        if lower in _FUNCTION_WORDS:
            title_case = True
        elif lower not in _NOT_NAMES and not _day(lower) and lower not in _MONTHS and not _has_digit(word):
            capitalised.setdefault(lower, word)
    if not title_case:
        names.update(capitalised)
    return names, words


def _contains(text: str, key: str) -> bool:
    """Whether a name (lower-case) occurs in the text in any case: as a word, a quoted string, an address."""
    names, words = _entities(text)
    if key in names or key in words:
        return True
    # A quoted string or an address counts wherever it is written, quoted or not; a name only as a whole word.
    if not (key.startswith('"') or "@" in key or "." in key):
        return False
    return re.search(rf"(?<!\w){re.escape(key.strip(chr(34)))}(?!\w)", _normalise(text).lower()) is not None


def entities(cached: str, query: str) -> str | None:
    """A name, email, URL or quoted string in one text and not the other: "Paris" is not "Berlin"."""
    cached_names, query_names = _entities(cached)[0], _entities(query)[0]
    only_cached = [shown for key, shown in cached_names.items() if not _contains(query, key)]
    only_query = [shown for key, shown in query_names.items() if not _contains(cached, key)]
    if only_cached and only_query:
        return f"entities: {', '.join(only_cached)} vs {', '.join(only_query)}"
    if only_cached or only_query:
        side, shown = (CACHED, only_cached) if only_cached else (QUERY, only_query)
        return f"entities: {', '.join(shown)} only in {side}"
    return None


# --- opposites ------------------------------------------------------------------------------------------------


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
def _opposite_hits(text: str) -> tuple[tuple[int, int, str, int], ...]:
    """Every opposite-pair phrase in ``text``: (pair index, side, phrase, word position); a word counts once."""
    words = _words(text.replace("-", " "))
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
    cached_hits, query_hits = _opposite_hits(cached), _opposite_hits(query)
    for pair in sorted({hit[0] for hit in cached_hits} & {hit[0] for hit in query_hits}):
        cached_sides, query_sides = _sides(cached_hits, pair), _sides(query_hits, pair)
        for one, other in ((0, 1), (1, 0)):
            said, answered = cached_sides[one], query_sides[other]
            # Only a clean swap is a conflict: a text that names both sides is a comparison (see the order guard).
            if said and answered and cached_sides[other] is None and query_sides[one] is None:
                return f"opposites: {said} vs {answered}"
    return None


# --- units and currencies -------------------------------------------------------------------------------------

_UNIT_NAMES = {
    "dollar": ("$", "usd", "dollar", "dollars", "bucks"),
    "euro": ("€", "eur", "euro", "euros"),
    "pound": ("£", "gbp", "pound", "pounds", "lb", "lbs"),  # weight and money alike: too close to tell apart
    "yen": ("¥", "jpy", "yen"),
    "franc": ("chf", "franc", "francs"),
    "rupee": ("₹", "inr", "rupee", "rupees"),
    "cent": ("cent", "cents"),
    "percent": ("%", "percent", "pct"),
    "mile": ("mi", "mile", "miles", "mph"),
    "kilometre": ("km", "kms", "kilometer", "kilometers", "kilometre", "kilometres", "kph"),
    "metre": ("meter", "meters", "metre", "metres"),
    "centimetre": ("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    "inch": ("inch", "inches"),
    "foot": ("ft", "foot", "feet"),
    "kilogram": ("kg", "kgs", "kilo", "kilos", "kilogram", "kilograms"),
    "gram": ("gram", "grams"),
    "ounce": ("oz", "ounce", "ounces"),
    "celsius": ("celsius", "centigrade", "°c"),
    "fahrenheit": ("fahrenheit", "°f"),
    "litre": ("liter", "liters", "litre", "litres"),
    "gallon": ("gal", "gallon", "gallons"),
    "megabyte": ("mb", "megabyte", "megabytes"),
    "gigabyte": ("gb", "gigabyte", "gigabytes"),
    "terabyte": ("tb", "terabyte", "terabytes"),
}
_UNITS_BY_NAME = {alias: unit for unit, aliases in _UNIT_NAMES.items() for alias in aliases}
_UNIT_SYMBOL = re.compile(r"°[cf]\b|[$€£¥₹%]", re.IGNORECASE)


def _unit_words(text: str) -> list[str | None]:
    """Per word of ``text``, the unit it names or None ("55-inch" is 55 and inch)."""
    return [_UNITS_BY_NAME.get(word) for word in _words(text.replace("-", " "))]


@functools.lru_cache(maxsize=4096)
def _units(text: str) -> frozenset[str]:
    text = _normalise(text)
    found = {_UNITS_BY_NAME[symbol.lower()] for symbol in _UNIT_SYMBOL.findall(text)}
    return frozenset(found | {unit for unit in _unit_words(text) if unit})


def units(cached: str, query: str) -> str | None:
    """Different currencies or units where both texts name some: "dollars to euros" is not "dollars to pounds".

    A unit in one text only is no conflict: "$50" and "50" usually mean the same amount.
    """
    in_cached, in_query = _units(cached), _units(query)
    return _differ("units", in_cached, in_query) if in_cached and in_query else None


# --- word order -----------------------------------------------------------------------------------------------

# Words that make the order of the two terms around them matter: "Celsius to Fahrenheit", "bigger than".
_DIRECTED = frozenset({"to", "into", "than", "from", "vs", "versus", "over"})


def _key_terms(text: str, names: Iterable[str]) -> list[tuple[str, int, bool]]:
    """(term, word position, directed) for names, units and opposite phrases; opposites always count as directed."""
    words = _words(text.replace("-", " "))
    units_at = _unit_words(text)
    names = set(names)
    terms = {(word, at, False) for at, word in enumerate(words) if word in names}
    terms |= {(unit, at, False) for at, unit in enumerate(units_at) if unit}  # "Celsius" is a name and a unit
    terms |= {(phrase, at, True) for _, _, phrase, at in _opposite_hits(text)}
    return sorted(terms, key=lambda term: term[1])


def _before(terms: list[tuple[str, int, bool]], words: list[str], first: str, second: str) -> bool:
    """Whether ``first`` comes before ``second`` (each said once), joined by a directing word unless an opposite."""
    at = {term: (position, directed) for term, position, directed in terms}
    (start, directed), (end, _) = at[first], at[second]
    return start < end and (directed or any(word in _DIRECTED for word in words[start + 1 : end]))


def order(cached: str, query: str) -> str | None:
    """The same two terms in the opposite direction: "Celsius to Fahrenheit" vs "Fahrenheit to Celsius"."""
    names = [key for key in (*_entities(cached)[0], *_entities(query)[0]) if " " not in key and '"' not in key]
    cached_terms, query_terms = _key_terms(cached, names), _key_terms(query, names)
    cached_counts = Counter(term for term, _, _ in cached_terms)
    query_counts = Counter(term for term, _, _ in query_terms)
    # Terms said exactly once on both sides: with repeats, "which comes first" has no single answer.
    shared = sorted(term for term in cached_counts if cached_counts[term] == 1 and query_counts[term] == 1)
    cached_words, query_words = _words(cached.replace("-", " ")), _words(query.replace("-", " "))
    for first in shared:
        for second in shared:
            if (
                first != second
                and _before(cached_terms, cached_words, first, second)
                and _before(query_terms, query_words, second, first)
            ):
                return f"order: {first} … {second} vs {second} … {first}"
    return None


# --- question focus -------------------------------------------------------------------------------------------

_FILLERS = frozenset({"hi", "hello", "hey", "please", "pls", "so", "ok", "okay", "um", "and", "but", "also", "quick"})
_AUXILIARIES = frozenset(
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
    if base in _AUXILIARIES and second in _AUXILIARIES:
        return None  # "were do you ship": a misspelt "where", not a yes/no question
    if base in _AUXILIARIES or first in {"can't", "won't", "don't", "isn't", "aren't"}:
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
    for clause in re.split(r"[,;.?!:\n]+", _normalise(text)):
        words = _words(clause)
        while words and words[0] in _FILLERS:
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


# --- one-word substitution -------------------------------------------------------------------------------------

_STOPWORDS = _FUNCTION_WORDS | _AUXILIARIES | _FILLERS
_STOPWORDS |= {"what's", "where's", "how's", "who's", "that's", "it's", "i", "i'm", "i've", "i'd", "my", "your", "any"}
_STOPWORDS |= {"there", "here", "some", "all", "just", "get", "got", "need", "want", "please", "yet", "now", "ever"}


def _variant(old: str, new: str) -> bool:
    """The same word inflected ("spider", "spiders") or misspelt ("retrun", "return")."""
    shared = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    inflected = shared >= 4 and shared >= min(len(old), len(new)) - 1
    return inflected or SequenceMatcher(None, old, new).ratio() >= 0.8


def _is_number(word: str) -> bool:
    return _has_digit(word) or word in _UNITS or word in _TENS or word in _SCALES or word == "one"


def substitution(cached: str, query: str) -> str | None:
    """The same wording but for one content word: "gift wrapping" vs "gift cards", "boiling" vs "freezing" point.

    With everything else shared, the embedding rates such a pair close whatever the swapped word means, and the
    swapped word is usually what the question is about. A synonym swap ("promo" vs "discount" code) is refused
    too: that costs a cache miss, not a wrong answer.
    """
    old_words, new_words = _words(cached.replace("-", " ")), _words(query.replace("-", " "))
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
    if old in _STOPWORDS or new in _STOPWORDS or _variant(old, new) or _is_number(old) or _is_number(new):
        return None  # numbers are the numbers guard's: "2" and "two" are one number
    return f"substitution: {old} vs {new}"


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
