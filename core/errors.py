"""Firebreak's error tree.

Two branches. A **signal** steers the run: something is retried, waited for, fallen back from, or told to the
model or a person, and the run goes on (or pauses). A **failure** ends what was asked: a run, a request or an
operator's action stops, and whoever asked must act (often a developer: fix the configuration, the script, the
call). A reader sees at once what is retried, what the model is told to correct, and what a developer must fix::

    FirebreakError
    ├── Signal                     steers the run: retry, wait, fall back, or tell the model or a person
    │   ├── CircuitOpen            a backend's breaker is open: fail fast, no call made; the gateway falls back
    │   ├── BudgetExceeded         a call would cross a blast-radius cap: not made; a reviewer raises it or stops
    │   ├── RateLimited            a tenant's or user's per-minute limit: not made; retry after ``retry_after_s``
    │   ├── ThreadBusy             another run holds the conversation: nothing recorded; send it again later
    │   ├── RequestInProgress      the request under a caller's idempotency key is still running: ask again later
    │   ├── PlanInvalid            the plan is no DAG of known tools: the run goes on without one, or a person decides
    │   ├── StaleEntity            a shared entity changed under the writer: re-read it and decide again
    │   ├── ChangeBudgetExhausted  a shared entity used its change budget: stop changing it, escalate instead
    │   ├── IdempotencyConflict    an op_id came back with other arguments: told to the model, nothing executed
    │   └── ToolError              answered to the model as a tool message; the run goes on
    │       ├── UnknownTool        the model named a tool that does not exist
    │       ├── InvalidToolArguments  arguments failed validation; the message says how to fix them
    │       ├── ToolTimeout        the tool overran its budget: "we don't know what happened"; retried
    │       ├── ToolUnavailable    the tool's backend is down or overloaded (raise it from your tools); retried
    │       └── ToolFailed         the tool raised a logical error; its message is passed on, never retried
    └── Failure                    ends what was asked (a run, a request, an action); a caller may ask again
        ├── ConfigError            a developer's mistake in firebreak.toml / FIREBREAK_*; never retried
        ├── IdentityRequired       a request named no tenant/user where defaults are not allowed
        ├── StoreUnavailable       a configured durable store cannot be reached; the app refuses to run
        ├── CanaryError            a rollout refused an operator's request (one is active, none is, a release changed)
        ├── IdempotencyKeyConflict a caller's idempotency key was used for another request: refused, nothing ran
        ├── OperatorRefused        an operator action without an identity, with a wrong token, role or tenant
        ├── EscalationClosed       an answer came after the escalation was answered or expired: not applied
        ├── EntityExists           a shared entity was created twice
        ├── EntityNotFound         a shared entity was changed before it was created
        ├── HandlerFailed          a subscriber's run ended without an answer; the event log tries the event again
        ├── ScriptError            the scripted provider was over- or under-consumed, or an expectation failed
        ├── ModelError             a model call failed after the gateway gave up (kind says why)
        │   └── transient=True     timeouts, 5xx, 429, connection: retried, then counted by the breaker
        └── RunDeadlineExceeded    the run's wall clock ran out; the run stops with what it has
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

__all__ = [
    "BudgetExceeded",
    "CanaryError",
    "ChangeBudgetExhausted",
    "CircuitOpen",
    "ConfigError",
    "EntityExists",
    "EntityNotFound",
    "EscalationClosed",
    "Failure",
    "FirebreakError",
    "HandlerFailed",
    "IdempotencyConflict",
    "IdempotencyKeyConflict",
    "IdentityRequired",
    "InvalidToolArguments",
    "ModelError",
    "OperatorRefused",
    "PlanInvalid",
    "RateLimited",
    "RequestInProgress",
    "RunDeadlineExceeded",
    "ScriptError",
    "Signal",
    "StaleEntity",
    "StoreUnavailable",
    "ThreadBusy",
    "ToolError",
    "ToolFailed",
    "ToolTimeout",
    "ToolUnavailable",
    "UnknownTool",
]


class FirebreakError(Exception):
    """Base of every error Firebreak raises on purpose."""


class Signal(FirebreakError):
    """Steers the run: what raised it is retried, waited for, fallen back from, or told to the model or a person."""


class CircuitOpen(Signal):
    """The breaker of ``backend`` is open (or its half-open probes are taken): no call was made."""

    def __init__(self, backend: str, retry_after_s: float) -> None:
        super().__init__(f"{backend} is unavailable (circuit open); retry after {max(retry_after_s, 0):.1f}s")
        self.backend = backend
        self.retry_after_s = max(retry_after_s, 0.0)


class BudgetExceeded(Signal):
    """A call would cross a cap of its request, session or day; it was not made."""

    def __init__(self, *, scope: str, resource: str, limit: float, used: float, requested: float) -> None:
        super().__init__(
            f"{resource} cap of {scope} reached: {used:g} used or held of {limit:g}, this call needs {requested:g}"
        )
        self.scope, self.resource, self.limit, self.used, self.requested = scope, resource, limit, used, requested


class RateLimited(Signal):
    """A tenant's or user's per-minute rate limit would be crossed; no call was made."""

    def __init__(self, *, scope: str, resource: str, limit: float, retry_after_s: float) -> None:
        who = scope.split(":")[1:3]
        super().__init__(
            f"rate limit of {' '.join(who)}: {limit:g} {resource} per minute; retry after {retry_after_s:.0f} s"
        )
        self.scope, self.resource, self.limit, self.retry_after_s = scope, resource, limit, retry_after_s


class ThreadBusy(Signal):
    """Another run holds the conversation: one run at a time writes a thread (nothing was recorded)."""

    def __init__(self, thread_id: str, run_id: str, retry_after_s: float) -> None:
        super().__init__(
            f"conversation {thread_id} is busy with run {run_id}; send this again once it has answered "
            f"(at most {retry_after_s:.0f} s)"
        )
        self.thread_id, self.run_id, self.retry_after_s = thread_id, run_id, retry_after_s


class RequestInProgress(Signal):
    """The run started by an earlier request with this idempotency key has not finished yet."""

    def __init__(self, key: str, run_id: str) -> None:
        super().__init__(
            f"the request with idempotency key {key!r} is still running as run {run_id}; "
            "send it again once it has finished to get its result"
        )
        self.key, self.run_id = key, run_id


class PlanInvalid(Signal):
    """The model's plan is not a valid DAG of known tools; the message says what is wrong."""


class Versioned(Protocol):
    """What an error needs to say about a shared entity (``memory.shared_state.Entity`` is one)."""

    @property
    def kind(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def updated_by(self) -> str: ...


E = TypeVar("E", bound=Versioned)


class StaleEntity(Signal, Generic[E]):
    """The snapshot a write was based on is no longer current; ``current`` is the entity as it is now."""

    def __init__(self, attempted: E, current: E) -> None:
        super().__init__(
            f"{current.kind} {current.key} is at version {current.version}, not {attempted.version} "
            f"(last written by {current.updated_by}): re-read it and decide again"
        )
        self.current = current


class ChangeBudgetExhausted(Signal, Generic[E]):
    """The entity has had as many changes as its budget allows; agents must stop, not keep flipping it."""

    def __init__(self, entity: E, budget: int) -> None:
        super().__init__(
            f"{entity.kind} {entity.key} has used its change budget of {budget} changes "
            f"(version {entity.version}, last written by {entity.updated_by}): escalate instead of changing it"
        )
        self.entity = entity
        self.budget = budget


class IdempotencyConflict(Signal):
    """The same op_id was used with different arguments."""


class ToolError(Signal):
    """A tool call could not produce a result; the model is told why."""

    def __init__(self, message: str, *, tool: str) -> None:
        super().__init__(message)
        self.tool = tool


class UnknownTool(ToolError):
    """The model asked for a tool that is not registered."""


class InvalidToolArguments(ToolError):
    """The model's arguments do not match the tool's schema."""


class ToolTimeout(ToolError, TimeoutError):
    """The tool did not finish within its budget; its effect is unknown."""


class ToolUnavailable(ToolError):
    """The tool's backend failed in a way that retrying may fix (5xx, connection refused, overload)."""


class ToolFailed(ToolError):
    """The tool raised an exception that retrying will not fix."""


class Failure(FirebreakError):
    """Ends what was asked (a run, a request, an operator's action); whoever asked may ask again."""


class ConfigError(Failure, ValueError):
    """The configuration is wrong; the message says which key and how to fix it."""


class IdentityRequired(Failure):
    """A request named no tenant and user, and ``[identity] allow_default`` is false."""


class StoreUnavailable(Failure, ConnectionError):
    """A durable store that the configuration names cannot be reached."""


class CanaryError(Failure):
    """A rollout cannot do what was asked: one is active already, none is, or a release changed under its name."""


class IdempotencyKeyConflict(Failure):
    """A caller's idempotency key already names another request (within its lifetime); nothing ran."""

    def __init__(self, key: str, run_id: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used for a different request (run {run_id}); "
            "use a new key for a new request"
        )
        self.key, self.run_id = key, run_id


class OperatorRefused(Failure, PermissionError):
    """An operator action was refused (and recorded): nobody identified, a wrong token, role or tenant."""


class EscalationClosed(Failure):
    """The escalation was already answered or expired; the answer was not applied."""


class EntityExists(Failure):
    """``create`` named an entity that is already there."""


class EntityNotFound(Failure, LookupError):
    """An update named an entity that was never created."""


class HandlerFailed(Failure, RuntimeError):
    """A handler's run ended without an answer; the event's dead letter names the run. ``final``: the run was
    stopped on purpose (the safety breaker, a cap), and another attempt would repeat what was stopped."""

    def __init__(self, message: str, run_id: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.final = final


class ScriptError(Failure, AssertionError):
    """The scripted model was used differently from what its script expected."""


class ModelError(Failure):
    """A model call failed. ``kind`` is one of the gateway's error kinds."""

    def __init__(self, message: str, *, kind: str, transient: bool, model: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.transient = transient
        self.model = model


class RunDeadlineExceeded(Failure, TimeoutError):
    """The run's wall-clock budget is spent."""
