"""The confidence gate's estimators: how sure are we that a proposed action is right?

Three ship: ``self_critique`` (the deciding model grades its own action, on
the run's route), ``verifier`` (another route's model grades it) and ``fixed``
(scores from configuration, for tests and for tools whose risk is known).
A score that cannot be read, or an estimator that fails, counts as 0: the
action goes to a human, never through.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from app.gateway import CallContext, Gateway
from core.config import GateSettings
from core.errors import ModelError

ActionKind = Literal["read", "write", "answer"]

_SCORE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?|\.\d+)\s*(%?)")


@dataclass(frozen=True)
class ProposedAction:
    """A tool call or an answer the model wants to carry out."""

    call_id: str
    kind: ActionKind
    target: str  # the tool's name, or "answer"
    arguments: dict[str, Any]
    text: str  # the answer itself, or what the model said alongside its call

    def describe(self) -> str:
        if self.kind == "answer":
            return f"answer the user: {self.text[:500]!r}"
        return f"call {self.target}({json.dumps(self.arguments, sort_keys=True, default=str)[:500]})"


@dataclass(frozen=True)
class Estimate:
    score: float
    estimator: str
    problem: str | None = None  # why the score is a conservative 0 instead of a measured one


class Estimator(Protocol):
    @property
    def name(self) -> str: ...

    async def __call__(
        self, action: ProposedAction, question: str, route: str, context: CallContext, deadline: float | None
    ) -> Estimate: ...


def parse_score(text: str) -> float:
    """The first number in a model's reply as a probability: ``0.8``, ``80%`` and ``80`` all read as 0.8."""
    match = _SCORE.search(text)
    if match is None:
        raise ValueError(f"no number in {text.strip()[:80]!r}")
    value = float(match.group(1))
    if match.group(2) or 1 < value <= 100:
        value /= 100
    if not 0 <= value <= 1:
        raise ValueError(f"{match.group(0)!r} is not a confidence between 0 and 1")
    return value


@dataclass(frozen=True)
class FixedEstimator:
    scores: dict[str, float]
    default: float
    name: str = "fixed"

    async def __call__(
        self, action: ProposedAction, question: str, route: str, context: CallContext, deadline: float | None
    ) -> Estimate:
        return Estimate(self.scores.get(action.target, self.default), self.name)


_INSTRUCTIONS = (
    "You check an AI assistant's next action before it is carried out. Reply with one number between 0 and 1: "
    "the probability that the action is correct for the user's request and safe to carry out. Reply with the "
    "number only."
)


@dataclass(frozen=True)
class ModelEstimator:
    """Asks a model for a score: the run's own route (self-critique) or the ``[routing] verify`` route."""

    gateway: Gateway
    name: str
    max_tokens: int
    task: Literal["self_critique", "verify"]

    def messages(self, action: ProposedAction, question: str) -> list[dict[str, str]]:
        whose = "Your proposed action" if self.task == "self_critique" else "The assistant's proposed action"
        return [
            {"role": "system", "content": _INSTRUCTIONS},
            {"role": "user", "content": f"User request: {question}\n{whose}: {action.describe()}\nConfidence:"},
        ]

    async def __call__(
        self, action: ProposedAction, question: str, route: str, context: CallContext, deadline: float | None
    ) -> Estimate:
        try:
            reply = await self.gateway.chat(
                self.messages(action, question),
                route=route,
                task=self.task,
                context=context,
                deadline=deadline,
                max_output_tokens=self.max_tokens,
                temperature=0.0,  # a grade is a measurement: the same action gets the same score
            )
        except ModelError as exc:
            return Estimate(0.0, self.name, f"the {self.name} estimator failed: {exc}")
        try:
            return Estimate(parse_score(reply.text), self.name)
        except ValueError as exc:
            return Estimate(0.0, self.name, f"unreadable score from {reply.model}: {exc}")


def build_estimator(settings: GateSettings, gateway: Gateway) -> Estimator:
    """The estimator ``[gate] estimator`` names."""
    if settings.estimator == "fixed":
        return FixedEstimator(dict(settings.fixed_scores), settings.fixed_default)
    if settings.estimator == "verifier":
        return ModelEstimator(gateway, "verifier", settings.critique_max_tokens, task="verify")
    return ModelEstimator(gateway, "self_critique", settings.critique_max_tokens, task="self_critique")
