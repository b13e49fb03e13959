"""Importing the modules a user names in the configuration (tools, the agent's graph)."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from core.errors import ConfigError


def import_user_module(name: str, *, setting: str) -> ModuleType:
    """Import ``name`` as Python would, with the directory Firebreak runs in first on the path; a failure is one
    :class:`ConfigError` naming ``setting``.

    A console script such as ``firebreak`` starts without that directory on ``sys.path`` (``python -m`` and
    uvicorn put it there), so ``my_tools.py`` beside firebreak.toml was "No module named 'my_tools'".
    """
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(f"{setting}: cannot import {name!r}: {exc}") from None


def import_attribute(spec: str, *, setting: str) -> object:
    """The object ``"module:attribute"`` names (``import_user_module``); a malformed name, a module that does not
    import or a missing attribute is one :class:`ConfigError` naming ``setting``."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f'{setting} is {spec!r}: write "module:attribute", e.g. "my_graph:builder"')
    module = import_user_module(module_name, setting=setting)
    if not hasattr(module, attribute):
        raise ConfigError(f"{setting}: module {module_name!r} has no {attribute!r}")
    return getattr(module, attribute)
