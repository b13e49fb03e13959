"""Load a heavy object once per process, however many threads ask for it at the same time."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Hashable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def load_once(loader: Callable[P, T]) -> Callable[P, T]:
    """``loader`` memoized by its (hashable) arguments behind one lock.

    A thread that asks while another is loading waits for that load instead of starting its own: a background
    warm-up and a first request must not read the same weights twice. A load that raises is not remembered, so
    the next call tries again (and raises again, with the same clear error, if nothing was fixed).
    """
    lock = threading.Lock()
    loaded: dict[Hashable, T] = {}
    signature = inspect.signature(loader)

    @functools.wraps(loader)
    def load(*args: P.args, **kwargs: P.kwargs) -> T:
        # Keyed by the bound arguments, defaults applied: f() and f("numpy") are one load when "numpy" is the default.
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = tuple(bound.arguments.items())
        with lock:
            if key not in loaded:
                loaded[key] = loader(*args, **kwargs)
            return loaded[key]

    return load
