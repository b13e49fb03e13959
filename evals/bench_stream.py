"""Streaming through the policy screen against streaming without it.

Both sides ask the real gateway for the same scripted reply, streamed word by word, interleaved call by
call so the machine's noise hits both alike. The screened side releases text as ``decide`` does: every
token through :class:`StreamScreen`, the held rest once the finished reply passes the final screen's text
rule. Three figures come out of it: the time to the first released token, the whole reply's time, and
(measured apart, on the screen alone) its cost per token on a short and a long reply, which shows whether
it grows with the reply. The reply is clean but full of numbers (an order id, a date, a phone number, a
tracking code) and words ending in "d", the text a hold-back acts on, so what it holds is counted too.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.gateway import CallContext
from app.gateway.gateway import Gateway
from app.resilience.safety import SafetyPolicy
from app.resilience.stream_screen import StreamScreen
from core.config import load_settings
from graph.agent import Agent

MODEL = "scripted/bench-stream"
CONTEXT = CallContext(tenant_id="bench", user_id="bench")
MESSAGES = [{"role": "user", "content": "Where is order 42?"}]
PARAGRAPH = (
    "Order 42 shipped on 2026-05-03 and should arrive by Friday; it was packed and labelled in Leeds. "
    "The tracking code is 1Z999AA10123456784, and the carrier updated it 3 times yesterday. "
    "If it has not arrived by then, call support on +44 20 7946 0958 or reply here, and we will send "
    "a replacement of the 2 items you ordered at no cost. "
)
REPLY = (PARAGRAPH * 3).strip()  # about 150 words, the length of an ordinary answer
SCREEN_LENGTHS = (1, 10)  # the reply, and the reply ten times over (about 1,500 tokens)


def policy() -> SafetyPolicy:
    return SafetyPolicy.from_settings(load_settings().safety)


async def _timed_stream(gateway: Gateway, screened: bool) -> tuple[float, float]:
    """One streamed reply: seconds to its first released text and to its end."""
    rules = policy()
    screen = StreamScreen.of(rules.policy_rules)
    shown: list[str] = []
    first: list[float] = []

    def show(text: str) -> None:
        if text and not first:
            first.append(time.perf_counter())
        shown.append(text)

    sink: Callable[[str], None] = (lambda token: show(screen.feed(token))) if screened else show
    started = time.perf_counter()
    reply = await gateway.chat(MESSAGES, route=MODEL, context=CONTEXT, on_token=sink)
    if screened:
        show(screen.finish(passed=rules.violation(reply.text) is None))
    ended = time.perf_counter()
    assert "".join(shown) == reply.text == REPLY
    return first[0] - started, ended - started


def hold_back(tokens: list[str]) -> dict[str, Any]:
    """What the screen held of a clean reply: how many tokens went out later than they came, by how many
    tokens at most, and the most text held at once."""
    screen = StreamScreen.of(policy().policy_rules)
    waiting: deque[tuple[int, int]] = deque()  # (index, end offset) of the tokens not wholly released yet
    delays: list[int] = []
    most_held = 0
    for index, token in enumerate(tokens):
        waiting.append((index, len(screen.text) + len(token)))
        screen.feed(token)
        most_held = max(most_held, len(screen.text) - screen.released)
        while waiting and waiting[0][1] <= screen.released:
            delays.append(index - waiting.popleft()[0])
    screen.finish(passed=True)
    delays += [len(tokens) - held for held, _ in waiting]  # released with the finished reply
    return {
        "tokens": len(tokens),
        "delayed_tokens": sum(delay > 0 for delay in delays),
        "most_tokens_delayed": max(delays),
        "most_chars_held": most_held,
    }


def screen_cost(tokens: list[str], rounds: int) -> float:
    """Microseconds per token the screen alone spends on ``tokens`` (median of ``rounds``)."""
    rules = policy().policy_rules
    times = []
    for _ in range(rounds):
        screen = StreamScreen.of(rules)
        started = time.perf_counter()
        for token in tokens:
            screen.feed(token)
        screen.finish(passed=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times) / len(tokens) * 1e6


def words(text: str) -> list[str]:
    """``text`` cut as the scripted model streams it: a word and its following space per token."""
    pieces = text.split(" ")
    return [piece + " " for piece in pieces[:-1]] + [pieces[-1]]


async def measure_stream(rounds: int = 100, warmup: int = 5) -> dict[str, Any]:
    """Time to first released token and per reply, screened and not, and the screen's cost per token."""
    total = rounds + warmup
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-stream-") as workdir:
        folder = Path(workdir)
        script = folder / "stream.jsonl"
        script.write_text("".join(json.dumps({"text": REPLY}) + "\n" for _ in range(2 * total)), encoding="utf-8")
        settings = load_settings(
            database_url=f"sqlite:///{folder / 'bench.db'}",
            script=str(script),
            cache={"enabled": False},
            rate_limits={"tenant": {"requests": 1_000_000}, "user": {"requests": 1_000_000}},
        )
        timings: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        async with Agent.open(settings) as agent:
            gateway = agent.services.gateway
            for index in range(total):
                # Alternate which side goes first, so neither always follows the other's writes.
                for screened in (index % 2 == 0, index % 2 == 1):
                    timing = await _timed_stream(gateway, screened)
                    if index >= warmup:
                        timings[screened].append(timing)
            gateway.verify_script_consumed()
    figures: dict[str, Any] = {"rounds": rounds, "reply_tokens": len(words(REPLY))}
    for screened, side in ((True, "screened"), (False, "unscreened")):
        figures[f"{side}_first_token_ms"] = statistics.median(first for first, _ in timings[screened]) * 1000
        figures[f"{side}_reply_ms"] = statistics.median(whole for _, whole in timings[screened]) * 1000
    figures["first_token_ratio"] = figures["screened_first_token_ms"] / figures["unscreened_first_token_ms"]
    figures["reply_ratio"] = figures["screened_reply_ms"] / figures["unscreened_reply_ms"]
    figures["overhead_us_per_token"] = (
        (figures["screened_reply_ms"] - figures["unscreened_reply_ms"]) * 1000 / figures["reply_tokens"]
    )
    figures["screen_us_per_token"] = {
        str(len(words(REPLY)) * times): screen_cost(words(" ".join([REPLY] * times)), rounds=21)
        for times in SCREEN_LENGTHS
    }
    figures["hold_back"] = hold_back(words(REPLY))
    return figures


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure_stream()), indent=2))
