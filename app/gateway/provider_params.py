"""What one provider's call may carry: its seed, the tool specs it accepts, the keys it needs.

LiteLLM is imported only when a question needs it: the embedded model's runs never do.
"""

from __future__ import annotations

from typing import Any

from app.gateway.lazy import load_litellm
from app.gateway.local_prompt import PROVIDER as LOCAL
from app.gateway.script import PROVIDER as SCRIPTED
from app.tools.registry import EXAMPLES_KEY


def provider_of(model: str) -> str:
    return model.split("/", 1)[0]


def takes_seed(model: str) -> bool:
    """Whether ``model`` samples by a seed: the embedded model does, the scripted one has nothing to sample, and
    another provider's model does where LiteLLM lists ``seed`` among its parameters (it refuses it elsewhere)."""
    if provider_of(model) in (LOCAL, SCRIPTED):
        return provider_of(model) == LOCAL
    return "seed" in (load_litellm().get_supported_openai_params(model=model) or ())


def missing_provider_keys(model: str) -> list[str]:
    """Environment variables LiteLLM needs for ``model`` that are not set."""
    return list(load_litellm().validate_environment(model=model).get("missing_keys", []))


def openai_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tool specs without Firebreak's own keys (the embedded model's examples): a provider refuses keys it
    does not know."""
    return [
        {**spec, "function": {k: v for k, v in spec["function"].items() if k != EXAMPLES_KEY}}
        if EXAMPLES_KEY in spec.get("function", {})
        else spec
        for spec in tools
    ]
