"""Payment card numbers in text: what the safety breaker refuses and what traces mask."""

from __future__ import annotations

import re

# 13-19 digits, single spaces or dashes between them, starting and ending on a digit.
CARD_DIGITS = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
# Card networks' first digits: 2 Mastercard and Mir, 3 Amex, Diners and JCB, 4 Visa, 5 Mastercard and Maestro,
# 6 Discover, UnionPay and RuPay. Millisecond timestamps (1…), "00" phone prefixes and most parcel tracking
# numbers (7…, 9…) start elsewhere.
NETWORK_FIRST_DIGITS = frozenset("23456")


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` (digits only) pass the Luhn check every card number carries in its last digit."""
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def digits_of(run: str) -> str:
    """A run :data:`CARD_DIGITS` matched, without its spaces and dashes."""
    return re.sub(r"[ -]", "", run)


def is_card_number(run: str) -> bool:
    """Whether ``run``, a run :data:`CARD_DIGITS` matched, reads as a card number: a network's first digit and a
    valid Luhn check. One digit run in ten passes Luhn by chance; phone numbers, timestamps and ids mostly do not."""
    digits = digits_of(run)
    return digits[:1] in NETWORK_FIRST_DIGITS and luhn_valid(digits)
