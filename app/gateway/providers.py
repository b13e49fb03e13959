"""Registration of Firebreak's custom LiteLLM providers (scripted, local)."""

from __future__ import annotations

import litellm


def register_custom_provider(name: str, handler: litellm.CustomLLM) -> None:
    """Serve ``<name>/<model>`` with ``handler``, replacing an earlier handler of that name."""
    litellm.custom_provider_map = [p for p in litellm.custom_provider_map if p["provider"] != name]
    litellm.custom_provider_map.append({"provider": name, "custom_handler": handler})
    # LiteLLM reads the map when it builds its provider list; refresh it after a change.
    litellm.utils.custom_llm_setup()
