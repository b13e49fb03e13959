"""LiteLLM, imported and configured on first use.

Importing LiteLLM takes seconds, so nothing imports it until a model is about to be
called: commands that never call one (``firebreak dlq list``, ``canary status``, …)
never load it. This module itself imports nothing heavy.
"""

from __future__ import annotations

import functools
import logging
from types import ModuleType


@functools.cache
def load_litellm() -> ModuleType:
    """The ``litellm`` module, configured for Firebreak before anything uses it."""
    import litellm

    litellm.telemetry = False
    # LiteLLM prints provider hints to stdout and warns about our zero prices; stdout belongs to `ask --json`.
    litellm.suppress_debug_info = True
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    return litellm
