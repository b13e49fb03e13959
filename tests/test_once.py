"""core.once.load_once: one load per process and arguments, however many threads ask."""

from __future__ import annotations

import threading
import time

import pytest

from core.once import load_once


def test_threads_asking_during_a_load_wait_for_it_and_share_its_result():
    loads: list[str] = []

    @load_once
    def load(name: str) -> object:
        loads.append(name)
        time.sleep(0.05)  # long enough for every thread below to arrive while it runs
        return object()

    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(load("model"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == ["model"]
    assert all(result is results[0] for result in results)


def test_a_default_argument_and_the_same_value_given_are_one_load():
    loads: list[str] = []

    @load_once
    def load(runtime: str = "numpy") -> str:
        loads.append(runtime)
        return runtime

    assert load() == load("numpy") == load(runtime="numpy")
    assert loads == ["numpy"]
    load("other")
    assert loads == ["numpy", "other"]


def test_a_load_that_raises_is_not_remembered_and_the_next_call_tries_again():
    attempts: list[int] = []

    @load_once
    def load() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("the file is missing")
        return len(attempts)

    with pytest.raises(OSError, match="missing"):
        load()
    assert load() == 2
    assert load() == 2
