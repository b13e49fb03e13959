"""What a run's caller gets back: its result, the answer's tokens as they stream, what a waiting run waits for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.gateway import Usage
from app.services import Services
from core.status import RunStatus
from memory.tables import Escalation, Run


@dataclass(frozen=True)
class RunResult:
    """The outcome of one run, as the CLI's ``--json`` prints it."""

    run_id: str
    thread_id: str
    status: str
    answer: str | None
    trace_id: str | None
    usage: Usage
    error: str | None = None
    escalations: list[dict[str, Any]] = field(default_factory=list)  # what a waiting run waits for
    cache: dict[str, Any] | None = None  # the cache hit that answered the run: similarity, matched, savings
    retry_after_s: float | None = None  # a rate-limited run may try again this much later

    def as_dict(self) -> dict[str, Any]:
        return {
            "cache": self.cache,
            "escalations": self.escalations,
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "status": self.status,
            "answer": self.answer,
            "trace_id": self.trace_id,
            "error": self.error,
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
                "cost_usd": self.usage.cost_usd,
            },
        }


@dataclass(frozen=True)
class Token:
    """A piece of the answer as the model produces it."""

    text: str


def escalation_view(row: Escalation) -> dict[str, Any]:
    """What a waiting run's caller needs to know about one escalation."""
    return {
        "id": row.id,
        "type": row.type,
        "audience": row.audience,
        "trigger": row.trigger,
        "reason": row.reason,
        "question": row.question,
        "options": row.options,
        "status": row.status,
    }


def run_result(services: Services, run: Run, cache: dict[str, Any] | None = None) -> RunResult:
    """A run's outcome as recorded, with what it still waits for when it waits."""
    waiting_for = []
    if run.status == RunStatus.WAITING:
        rows = services.escalations.for_run(run.id)
        waiting_for = [escalation_view(row) for row in rows if row.status == "open" and row.pauses_run]
    usage = Usage(run.input_tokens, run.output_tokens, run.cost_usd)
    return RunResult(run.id, run.thread_id, run.status, run.answer, run.trace_id, usage, run.error, waiting_for, cache)
