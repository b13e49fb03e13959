"""Scripts for the scripted model: a JSONL file of replies consumed in order.

One line is one model reply::

    {"text": "Paris."}
    {"tool_calls": [{"name": "sql_lookup", "arguments": {"order_id": 1}}]}
    {"text": "Done.", "usage": {"input_tokens": 900, "output_tokens": 40}}
    {"delay_s": 2.5, "text": "a slow reply"}
    {"error": "rate_limit"}                 # server | rate_limit | timeout | connection | bad_request | auth
    {"tool_calls": [{"name": "x", "arguments": "{broken"}]}   # arguments as a raw (malformed) string
    {"expect": "order 1234", "text": "..."}  # the prompt must contain this text

A script whose lines all carry ``"repeat": true`` is a *rules* script for load
tests, workers and long conversations: it is never used up, and each call gets
the first line whose ``"after"`` (``"user"`` or ``"tool"``: the role of the last
message) and ``"expect"`` (text the prompt contains) match, where given::

    {"repeat": true, "expect": "Summary:", "text": "The user greeted us."}
    {"repeat": true, "after": "user", "tool_calls": [{"name": "send_email", "arguments": {...}}]}
    {"repeat": true, "after": "tool", "text": "Sent."}

Blank lines and lines starting with ``#`` are ignored. A script that runs out
(over-consumed) or is left with unused replies (under-consumed) is a
:class:`~core.errors.ScriptError`, so a test cannot pass while the agent did
something other than what its script expected.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, get_args

from core.config import ErrorKind
from core.errors import ScriptError

PROVIDER = "scripted"  # models named scripted/<anything> replay a script (app/gateway/scripted.py serves them)
ALLOWED_KEYS = {"text", "tool_calls", "usage", "delay_s", "error", "expect", "repeat", "after"}


@dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: str


@dataclass(frozen=True)
class ScriptStep:
    """One scripted reply, with the line it came from for error messages."""

    line: int
    text: str
    tool_calls: tuple[ScriptedToolCall, ...]
    usage: dict[str, int] | None
    delay_s: float
    error: ErrorKind | None
    expect: str | None
    repeat: bool = False
    after: str | None = None


def _parse_tool_call(raw: Any, where: str) -> ScriptedToolCall:
    if not isinstance(raw, dict) or "name" not in raw:
        raise ScriptError(f"{where}: each tool call needs a 'name' and 'arguments'")
    arguments = raw.get("arguments", {})
    encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ScriptedToolCall(name=str(raw["name"]), arguments=encoded)


def parse_step(raw: Any, where: str, line: int) -> ScriptStep:
    """Validate one decoded script line."""
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: a script line must be a JSON object")
    unknown = set(raw) - ALLOWED_KEYS
    if unknown:
        raise ScriptError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(ALLOWED_KEYS)}")
    error = raw.get("error")
    if error is not None and error not in get_args(ErrorKind):
        raise ScriptError(f"{where}: error must be one of {list(get_args(ErrorKind))}, not {error!r}")
    if raw.get("after") not in (None, "user", "tool"):
        raise ScriptError(f"{where}: after must be 'user' or 'tool'")
    usage = raw.get("usage")
    if usage is not None and not {"input_tokens", "output_tokens"} <= set(usage):
        raise ScriptError(f"{where}: usage needs input_tokens and output_tokens")
    return ScriptStep(
        line=line,
        text=str(raw.get("text", "")),
        tool_calls=tuple(_parse_tool_call(call, where) for call in raw.get("tool_calls", [])),
        usage=usage,
        delay_s=float(raw.get("delay_s", 0.0)),
        error=error,
        expect=raw.get("expect"),
        repeat=bool(raw.get("repeat", False)),
        after=raw.get("after"),
    )


class Script:
    """A loaded script with a cursor. Thread-safe: one reply is never served twice."""

    def __init__(self, steps: list[ScriptStep], source: str) -> None:
        self.steps = steps
        self.source = source
        self._cursor = 0
        self._failure: ScriptError | None = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path) -> Script:
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ScriptError(f"cannot read script {path}: {exc.strerror}") from None
        steps: list[ScriptStep] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{path}:{number}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ScriptError(f"{where}: not valid JSON ({exc.msg})") from None
            steps.append(parse_step(raw, where, number))
        if len({step.repeat for step in steps}) > 1:
            raise ScriptError(f"{path}: either every line repeats (a rules script) or none does")
        return cls(steps, str(path))

    @property
    def is_rules(self) -> bool:
        return bool(self.steps) and self.steps[0].repeat

    @property
    def used(self) -> int:
        return self._cursor

    @property
    def failure(self) -> ScriptError | None:
        """The first way this script was misused, if any."""
        return self._failure

    def take(self, prompt_text: str, last_role: str = "user") -> ScriptStep:
        """The next reply; checks its expectation against the prompt it answers."""
        if self.is_rules:
            step = next(
                (
                    s
                    for s in self.steps
                    if s.after in (None, last_role) and (s.expect is None or s.expect in prompt_text)
                ),
                None,
            )
            if step is None:
                self._fail(f"rules script {self.source} has no line for a call after a {last_role} message")
            self._cursor += 1
            return step
        with self._lock:
            if self._cursor >= len(self.steps):
                self._fail(
                    f"script {self.source} over-consumed: the agent made model call "
                    f"{self._cursor + 1} but the script has {len(self.steps)} replies"
                )
            step = self.steps[self._cursor]
            self._cursor += 1
        if step.expect is not None and step.expect not in prompt_text:
            self._fail(f"{self.source}:{step.line}: the prompt does not contain the expected text {step.expect!r}")
        return step

    def verify_consumed(self) -> None:
        """Raise if a call failed the script or replies were left unused."""
        if self._failure is not None:
            raise self._failure
        if self.is_rules:
            return
        left = self.steps[self._cursor :]
        if left:
            lines = ", ".join(str(step.line) for step in left)
            raise ScriptError(
                f"script {self.source} under-consumed: {len(left)} of {len(self.steps)} replies unused (lines {lines})"
            )

    def _fail(self, message: str) -> NoReturn:
        self._failure = ScriptError(message)
        raise self._failure
