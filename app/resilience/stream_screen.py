"""The policy screen over a reply while it streams: no character leaves before it is known to be clean.

The final screen (``screen_actions``) judges the whole reply against the policy rules (``[safety]``); a
streamed token reaches the user before that. :class:`StreamScreen` sits between the model and the user
and releases a character only once no policy pattern can match text that contains it, whatever the model
says next, and only while the text released so far matches no pattern on its own either. It holds back
from the earliest position where a pattern could still match: ``regex``'s partial matching says where a
match may start that more text could complete (a card number's first digits, "drop" before its "table").
Everything before that position can never become part of a match, so it goes out at once; clean prose
streams with no delay. Once a pattern matches in full nothing more is released: the run is about to be
terminated, and only a reply the final screen passes gets its held rest (:meth:`finish`).

The rules are the final screen's own (same patterns, same flags, same second look at a match), so the
stream is never judged by a looser rule than the answer. A digit run is held until it is complete, then
let go if it is no card number (``is_card_number``): the final screen lets the same run pass.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import regex

from app.resilience.safety import PolicyRule, first_accepted
from core.errors import FirebreakError

# ``re``'s flags by name: the bits differ (``re.ASCII`` is ``regex.VERSION1``).
FLAGS = ("IGNORECASE", "MULTILINE", "DOTALL", "UNICODE", "VERBOSE", "ASCII")
# ``\b`` and ``\B`` spelled as lookarounds. ``regex`` takes a word boundary that fails at the end of the
# text for no match, though the next character could make it hold ("drop " before "table" for
# ``\bdrop\s+\btable``); a lookahead that needs more text is a partial match, as it must be.
WORD_BOUNDARY = r"(?:(?<=\w)(?!\w)|(?<!\w)(?=\w))"
NOT_WORD_BOUNDARY = r"(?:(?<=\w)(?=\w)|(?<!\w)(?!\w))"


def spell_out_boundaries(pattern: str) -> str:
    r"""``pattern`` with every ``\b`` and ``\B`` outside a character class written as lookarounds."""
    out: list[str] = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            pair = pattern[index : index + 2]
            boundaries = {r"\b": WORD_BOUNDARY, r"\B": NOT_WORD_BOUNDARY}
            out.append(pair if in_class else boundaries.get(pair, pair))
            index += 2
            continue
        if char == "[" and not in_class:
            # A "]" first in a class (after any "^") is a literal, not its end.
            opening = re.match(r"\[\^?\]?", pattern[index:])
            assert opening is not None
            out.append(opening.group())
            index += len(opening.group())
            in_class = True
            continue
        in_class = in_class and char != "]"
        out.append(char)
        index += 1
    return "".join(out)


@functools.lru_cache(maxsize=16)
def compile_partial(rules: tuple[PolicyRule, ...]) -> tuple[tuple[Any, Callable[[str], bool] | None], ...]:
    """The final screen's rules with their patterns for ``regex``, whose search can report partial matches;
    compiled once per rule set, not on every model call."""
    compiled = []
    for rule in rules:
        pattern = rule.pattern
        flags = sum(getattr(regex, name) for name in FLAGS if pattern.flags & getattr(re, name))
        try:
            # ``regex``'s default version 0 reads ``re``'s syntax as ``re`` does.
            compiled.append((regex.compile(spell_out_boundaries(pattern.pattern), flags), rule.accepts))
        except regex.error as exc:
            raise FirebreakError(f"policy pattern {pattern.pattern!r} cannot screen a stream: {exc}") from exc
    return tuple(compiled)


@dataclass
class StreamScreen:
    """Fed each streamed token; returns the text that may reach the user now."""

    rules: tuple[tuple[Any, Callable[[str], bool] | None], ...]  # (partial-matching pattern, second look)
    text: str = ""  # the reply so far
    released: int = 0  # how much of it has gone out
    matched: bool = False  # a pattern matched in full: nothing more goes out before the final verdict

    @classmethod
    def of(cls, rules: Iterable[PolicyRule]) -> StreamScreen:
        return cls(compile_partial(tuple(rules)))

    def feed(self, token: str) -> str:
        """Add ``token``; return what of the reply no policy pattern can match any more (often all of it)."""
        self.text += token
        if self.matched:
            return ""
        end = len(self.text)
        # First against the text as it stands: the earliest start of a match more text could complete. Then
        # against the text cut where the release would end, until no pattern matches or could match there:
        # the released text must match nothing on its own either (a cut can make a "\b" hold), and every
        # attempt at a released position then fails inside it, so no later text can make it a match.
        while True:
            growing = end == len(self.text)  # the reply goes on: a match at its end may grow
            found = [
                first_accepted(pattern.search, accepts, self.text, self.released, end, growing=growing, partial=True)
                for pattern, accepts in self.rules
            ]
            starts = [match.start() for match in found if match is not None]
            if growing:
                # In full and accepted: a digit run the second look refused is only held, it may yet grow.
                self.matched = any(
                    match is not None and not match.partial and (accepts is None or accepts(match.group()))
                    for match, (_, accepts) in zip(found, self.rules, strict=True)
                )
            cut = min(starts, default=end)
            if cut == end:
                return self._release(end)
            end = cut

    def finish(self, passed: bool) -> str:
        """The held rest of a complete reply: all of it when the final screen ``passed`` the reply and no
        pattern matches the streamed text either (it is what the user would see); otherwise nothing."""
        if not passed or any(first_accepted(p.search, a, self.text, 0, len(self.text)) for p, a in self.rules):
            return ""
        return self._release(len(self.text))

    def _release(self, end: int) -> str:
        out = self.text[self.released : end]
        self.released = end
        return out
