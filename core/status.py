"""A run's status: the one contract every entry path, store and face reads a run's outcome by.

The values are the strings stored in ``runs.status``; ``RunStatus`` is a ``StrEnum``, so a status read back from
the database compares equal to its member and serializes as its plain value.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run stands: in progress, ended with an answer, or ended without one (and why)."""

    QUEUED = "queued"  # waiting for a worker
    RUNNING = "running"
    WAITING = "waiting"  # for a person (an escalation pauses it)
    ANSWERED = "answered"
    HANDED_OFF = "handed_off"  # a person took the conversation over
    FAILED = "failed"  # an error ended it on the way
    TIMED_OUT = "timed_out"  # it spent its wall clock
    RATE_LIMITED = "rate_limited"
    BUDGET_EXCEEDED = "budget_exceeded"  # a budget cap stopped it
    REPEATED_FAILURE = "repeated_failure"  # the same call kept failing
    STEP_LIMIT = "step_limit"
    EMPTY_REPLY = "empty_reply"  # the model answered nothing
    TERMINATED = "terminated"  # the safety breaker stopped it


SUCCEEDED = frozenset({RunStatus.ANSWERED, RunStatus.HANDED_OFF})
IN_PROGRESS = frozenset({RunStatus.RUNNING, RunStatus.WAITING, RunStatus.QUEUED})
# Ended on the way, its graph unfinished (an error, its wall clock, a rate limit): such a run resumes from its last
# checkpoint, so the queue retries it and an operator may requeue it. Every other error status is a deliberate
# stop (the safety breaker, a budget cap, the step limit, a call that kept failing, an empty reply): its graph
# ended, so resuming it would run nothing, and running it again would repeat what was stopped.
RESUMABLE = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.RATE_LIMITED})


def is_error(status: str) -> bool:
    """A finished run that did not end with an answer (failed, timed out, terminated, over budget, …)."""
    return status not in SUCCEEDED and status not in IN_PROGRESS


def is_unclean(status: str) -> bool:
    """A run an operator may have to act on: it ended without an answer, or it waits for a person."""
    return status == RunStatus.WAITING or is_error(status)
