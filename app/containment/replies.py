"""How a reply answers a yes-or-no question: a user's chat reply to a confirmation, or an operator's answer.

People answer "Yes please", "sure, go ahead", "yes, cancel it" or "no thanks", rarely the bare word an operator
types. A reply is an answer when it opens with a yes or a no and adds nothing: the rest is politeness, or words
of the question itself. A reply that adds more ("yes, but to my other address", "no, I meant order 3") is not
taken for an answer. Approving it would run the action the user just amended, and refusing it would drop what
they added, so the caller asks again and nothing runs.

This is the one vocabulary of yes and no: an escalation's answer is read here too (``escalation.answer_side``).
"""

from __future__ import annotations

import re
from typing import Literal

APPROVING = (
    "yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "approve", "approved", "confirm", "confirmed",
    "go ahead", "do it", "please do", "proceed", "absolutely", "of course", "correct",
)  # fmt: skip
REFUSING = (
    "no", "n", "nope", "nah", "don't", "do not", "reject", "cancel", "stop", "never mind", "not now", "abort",
)  # fmt: skip
POLITE = frozenset(
    (
        "please", "thanks", "thank", "you", "go", "ahead", "do", "it", "that", "that's", "this", "them", "is", "fine",
        "good", "great", "perfect", "sounds", "now", "right", "away", "the", "a", "an", "my", "for", "me", "thx", "ty",
    )
)  # fmt: skip
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")  # words of any script; "don't" is one word
# Each side's openings and every word in them ("yes, do it" is still a yes).
_SIDES = tuple(
    (answer, openings, frozenset(word for opening in openings for word in opening.split()))
    for answer, openings in (("yes", APPROVING), ("no", REFUSING))
)
_STEM = 4  # a question word and a reply word sharing this many first letters are one word ("cancel", "cancelled")


def confirmation_reply(text: str, question: str = "") -> Literal["yes", "no"] | None:
    """ "yes" or "no" when ``text`` is a plain answer to ``question``; None when it is anything else."""
    words = _words(text)
    asked = _words(question.replace("_", " "))
    for answer, openings, same_side in _SIDES:
        for opening in openings:
            first = opening.split()
            if words[: len(first)] == first and all(
                word in POLITE or word in same_side or _asked(word, asked) for word in words[len(first) :]
            ):
                return answer  # type: ignore[return-value]
    return None


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def _asked(word: str, asked: list[str]) -> bool:
    """Whether the question says ``word``, up to its ending (a word too short to tell must match whole)."""
    if len(word) < _STEM:
        return word in asked
    return any(other[:_STEM] == word[:_STEM] and (other.startswith(word) or word.startswith(other)) for other in asked)
