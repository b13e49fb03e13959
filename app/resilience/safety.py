"""The safety breaker's rules: which inputs and actions end a run.

Plain functions over compiled patterns, so every rule is testable without a
graph. The nodes in ``nodes/safety.py`` apply them and record the verdicts.
Verdicts name the rule and the pattern that matched, never the matched text:
that text may be a card number, and verdicts are stored and traced.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from core.card_numbers import CARD_DIGITS, is_card_number
from core.config import SafetySettings
from memory.runs import RunStore

JAILBREAK = "jailbreak"
DANGEROUS_TOOL = "dangerous_tool"
POLICY = "policy"
# Jailbreak attempts are counted over the thread's latest runs, newest first.
THREAD_RUNS_SCANNED = 200


@dataclass(frozen=True)
class Verdict:
    """What a rule found: ``terminate`` ends the run, otherwise the finding is only flagged."""

    terminate: bool
    rule: str
    reason: str  # a sentence for the user
    detail: str  # what matched: a tool name or a pattern

    def payload(self) -> dict[str, str]:
        """The run event's payload."""
        return {"reason": self.reason, "rule": self.rule, "detail": self.detail}


@dataclass(frozen=True)
class ToolRequest:
    """One tool call the model proposed; ``arguments`` is a dict, or the raw string of a malformed call."""

    name: str
    arguments: Any


@dataclass(frozen=True)
class PolicyRule:
    """A policy pattern, and for some a second look at each match: a digit run is a card number only if
    :func:`is_card_number` says so. A match the second look refuses is no match."""

    pattern: re.Pattern[str]
    accepts: Callable[[str], bool] | None = None
    name: str = ""  # what a verdict names; the pattern's text if empty

    @property
    def label(self) -> str:
        return self.name or self.pattern.pattern

    def search(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        """The first match in ``text[pos:endpos]`` that the second look accepts."""
        return first_accepted(self.pattern.search, self.accepts, text, pos, endpos)


CARD_NUMBER = PolicyRule(CARD_DIGITS, is_card_number, "card number")


def first_accepted(
    search: Callable[..., Any],
    accepts: Callable[[str], bool] | None,
    text: str,
    pos: int,
    endpos: int,
    *,
    growing: bool = False,
    **options: Any,
) -> Any:
    """The first match of ``search`` (``re``'s or ``regex``'s) that ``accepts`` takes. A match more text could
    still change counts without the second look: a partial one, or, when the text is ``growing`` past
    ``endpos``, one that reaches it (13 digits that fail the Luhn check may be the start of a card number).
    A refused match is stepped past one character at a time: a card number may start inside a longer run."""
    while (match := search(text, pos, endpos, **options)) is not None:
        undecided = getattr(match, "partial", False) or (growing and match.end() >= min(endpos, len(text)))
        if accepts is None or undecided or accepts(match.group()):
            return match
        pos = match.start() + 1
    return None


@dataclass(frozen=True)
class SafetyPolicy:
    dangerous_tools: frozenset[str]
    jailbreak_patterns: tuple[re.Pattern[str], ...]
    # The same patterns with their spaces taken out, matched against text with every separator taken out.
    squeezed_jailbreak_patterns: tuple[re.Pattern[str], ...]
    jailbreak_limit: int
    policy_rules: tuple[PolicyRule, ...]

    @classmethod
    def from_settings(cls, settings: SafetySettings) -> SafetyPolicy:
        return cls(
            dangerous_tools=frozenset(settings.dangerous_tools),
            jailbreak_patterns=tuple(re.compile(p, re.IGNORECASE) for p in settings.jailbreak_patterns),
            squeezed_jailbreak_patterns=tuple(_squeezed_pattern(p) for p in settings.jailbreak_patterns),
            jailbreak_limit=settings.jailbreak_limit,
            # Policy patterns carry their own flags: a card number has no case, "(?i)drop table" does.
            policy_rules=tuple(PolicyRule(re.compile(p)) for p in settings.policy_patterns)
            + ((CARD_NUMBER,) if settings.block_card_numbers else ()),
        )

    def jailbreak_attempt(self, text: str) -> str | None:
        """The jailbreak pattern ``text`` matches, if any, however it is spaced, split or cased.

        Tried on the text as written, then normalised (compatibility forms, invisible characters dropped,
        runs of whitespace as one space: "ignore   previous\\ninstructions", "ig\\u200bnore"), then with
        every separator gone against the patterns without their spaces ("i g n o r e  p r e v i o u s",
        "ignore-previous-instructions"). The patterns stay one signal among others: a paraphrase passes them.
        """
        flat = normalised(text)
        squeezed = _SEPARATORS.sub("", flat)
        for patterns, candidate in (
            (self.jailbreak_patterns, text),
            (self.jailbreak_patterns, flat),
            (self.squeezed_jailbreak_patterns, squeezed),
        ):
            for index, pattern in enumerate(patterns):
                if pattern.search(candidate):
                    return self.jailbreak_patterns[index].pattern
        return None

    def violation(self, text: str) -> str | None:
        """The policy rule ``text`` breaks, if any: its name, or its pattern."""
        return next((rule.label for rule in self.policy_rules if rule.search(text)), None)

    def dangerous(self, tool_name: str) -> bool:
        return tool_name in self.dangerous_tools

    def jailbreak_verdict(self, pattern: str, earlier_attempts: int) -> Verdict:
        """Flag an attempt that matched ``pattern``; terminate when it is the session's ``jailbreak_limit``-th."""
        attempt = earlier_attempts + 1
        if attempt >= self.jailbreak_limit:
            reason = f"{attempt} jailbreak attempts in this conversation (the limit is {self.jailbreak_limit})"
            return Verdict(True, JAILBREAK, reason, pattern)
        reason = f"jailbreak attempt {attempt} in this conversation (attempt {self.jailbreak_limit} ends the run)"
        return Verdict(False, JAILBREAK, reason, pattern)

    def screen_decision(self, text: str, calls: list[ToolRequest]) -> Verdict | None:
        """Terminate on a dangerous tool, a violating tool argument or a violating reply; tools first."""
        for call in calls:
            if self.dangerous(call.name):
                reason = f"the model called {call.name}, a tool marked dangerous"
                return Verdict(True, DANGEROUS_TOOL, reason, call.name)
            for value in _leaves(call.arguments):
                pattern = self.violation(value)
                if pattern is not None:
                    reason = f"the arguments of {call.name} broke a content policy"
                    return Verdict(True, POLICY, reason, f"{call.name}: {pattern}")
        pattern = self.violation(text)
        if pattern is not None:
            return Verdict(True, POLICY, "the model's reply broke a content policy", f"reply: {pattern}")
        return None


# Spaces in a pattern, literal or as \s: taken out to match text whose separators were taken out.
_PATTERN_SPACES = re.compile(r" +|\\s[*+?]?")
_SEPARATORS = re.compile(r"[\W_]+")
# Tool results reach the patterns as JSON, where a newline or a tab is escaped: a backslash, then n or t.
_ESCAPED_WHITESPACE = re.compile(r"\\[nrt]")


def normalised(text: str) -> str:
    """Text as a reader sees it: compatibility forms folded (full-width letters), invisible format characters
    (zero-width spaces and joiners, soft hyphens) dropped, every run of whitespace (also JSON-escaped) one
    space, case folded."""
    spaced = _ESCAPED_WHITESPACE.sub(" ", text)
    # ASCII has no compatibility forms and no format characters: most text skips the per-character pass.
    if spaced.isascii():
        return " ".join(spaced.split()).casefold()
    folded = unicodedata.normalize("NFKC", spaced)
    visible = "".join(char for char in folded if unicodedata.category(char) != "Cf")
    return " ".join(visible.split()).casefold()


def _squeezed_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` without its spaces; a pattern that no longer compiles so (a space in a class) never matches."""
    try:
        return re.compile(_PATTERN_SPACES.sub("", pattern), re.IGNORECASE)
    except re.error:
        return re.compile(r"(?!)")


def _leaves(value: Any) -> Iterator[str]:
    """Every scalar inside tool arguments, as text; matched one by one so separate fields never join up."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif value is not None:
        yield str(value)


def earlier_jailbreaks(runs: RunStore, thread_id: str, *, excluding: str) -> int:
    """Jailbreak attempts flagged in the thread's other runs (the session's history)."""
    return sum(
        1
        for run in runs.recent(thread_id=thread_id, limit=THREAD_RUNS_SCANNED)
        if run.id != excluding
        for event in runs.events(run.id)
        if event.kind == "safety_flag" and event.payload.get("rule") == JAILBREAK
    )
