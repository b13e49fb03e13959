"""Translate between Firebreak's error kinds and LiteLLM's exception types.

Providers (scripted, local, faults) raise LiteLLM's own exceptions, so an
injected outage travels the same path as a real one; the gateway turns any of
them into one :class:`~core.errors.ModelError` for the rest of Firebreak.
"""

from __future__ import annotations

import litellm

from core.config import ErrorKind
from core.errors import ModelError

TRANSIENT_KINDS = frozenset({"server", "rate_limit", "timeout", "connection"})


def provider_exception(kind: ErrorKind, message: str, model: str) -> Exception:
    """A LiteLLM exception of ``kind``, as a real provider would raise it."""
    provider = model.split("/", 1)[0]
    if kind == "rate_limit":
        return litellm.RateLimitError(message=message, llm_provider=provider, model=model)
    if kind == "timeout":
        return litellm.Timeout(message=message, model=model, llm_provider=provider)
    if kind == "connection":
        return litellm.APIConnectionError(message=message, llm_provider=provider, model=model)
    if kind == "bad_request":
        return litellm.BadRequestError(message=message, model=model, llm_provider=provider)
    if kind == "auth":
        return litellm.AuthenticationError(message=message, llm_provider=provider, model=model)
    return litellm.InternalServerError(message=message, llm_provider=provider, model=model)


def error_kind(exc: BaseException) -> str:
    """Classify a provider exception; order matters because LiteLLM's types subclass each other."""
    if isinstance(exc, litellm.ContextWindowExceededError):
        return "context_window"
    if isinstance(exc, litellm.Timeout | TimeoutError):
        return "timeout"
    if isinstance(exc, litellm.RateLimitError):
        return "rate_limit"
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        return "auth"
    if isinstance(exc, litellm.BadRequestError | litellm.NotFoundError | litellm.UnprocessableEntityError):
        return "bad_request"
    if isinstance(exc, litellm.APIConnectionError):
        return "connection"
    if isinstance(exc, litellm.InternalServerError | litellm.ServiceUnavailableError | litellm.APIError):
        return "server"
    return "unknown"


def model_error(exc: BaseException, model: str) -> ModelError:
    kind = error_kind(exc)
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ModelError(f"{model}: {first_line}", kind=kind, transient=kind in TRANSIENT_KINDS, model=model)
