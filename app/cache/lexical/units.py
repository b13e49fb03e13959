"""The units guard: different currencies or units of measure where both texts name some."""

from __future__ import annotations

import functools
import re

from app.cache.lexical.text import differ, normalise, word_tokens

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


def unit_words(text: str) -> list[str | None]:
    """Per word of ``text``, the unit it names or None ("55-inch" is 55 and inch)."""
    return [_UNITS_BY_NAME.get(word) for word in word_tokens(text.replace("-", " "))]


@functools.lru_cache(maxsize=4096)
def _units(text: str) -> frozenset[str]:
    text = normalise(text)
    found = {_UNITS_BY_NAME[symbol.lower()] for symbol in _UNIT_SYMBOL.findall(text)}
    return frozenset(found | {unit for unit in unit_words(text) if unit})


def units(cached: str, query: str) -> str | None:
    """Different currencies or units where both texts name some: "dollars to euros" is not "dollars to pounds".

    A unit in one text only is no conflict: "$50" and "50" usually mean the same amount.
    """
    in_cached, in_query = _units(cached), _units(query)
    return differ("units", in_cached, in_query) if in_cached and in_query else None
