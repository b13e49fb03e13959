"""Speed of the embedded model as users get it: LiteLLM streaming through the local provider."""

from __future__ import annotations

import os

# LiteLLM reads these at import time: no hub or price-map downloads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import asyncio
import json
import time

import litellm

from app.config import LocalModelSettings, load_settings
from app.gateway.local_model import LOCAL_MODEL, register_local_provider

# Differs from the measured prompt so the timed call cannot reuse the warm-up's cached prompt.
WARM_UP_PROMPT = "Say hello."


def measure_local_model(
    settings: LocalModelSettings, prompt: str = "Write a short paragraph about the sea.", max_tokens: int = 128
) -> dict[str, float | int]:
    """Load time, first-token latency and decode rate of one greedy streamed completion.

    ``load_s`` is the warm-up call (weights assembled if needed, loaded and paged in);
    ``first_token_s`` is request to first streamed token on the warm model;
    ``tokens_per_s`` is tokens after the first over the time from first to last token.
    """
    register_local_provider(settings)
    return asyncio.run(_measure(prompt, max_tokens))


async def _measure(prompt: str, max_tokens: int) -> dict[str, float | int]:
    started = time.perf_counter()
    await litellm.acompletion(model=LOCAL_MODEL, messages=[{"role": "user", "content": WARM_UP_PROMPT}], max_tokens=1)
    load_s = time.perf_counter() - started

    requested = time.perf_counter()
    stream = await litellm.acompletion(
        model=LOCAL_MODEL,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    arrivals: list[float] = []
    completion_tokens = 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter())
        if usage := getattr(chunk, "usage", None):
            completion_tokens = usage.completion_tokens
    if len(arrivals) < 2:
        raise RuntimeError(f"the model streamed {len(arrivals)} pieces; too few to time decoding")
    return {
        "tokens_per_s": round((completion_tokens - 1) / (arrivals[-1] - arrivals[0]), 1),
        "first_token_s": round(arrivals[0] - requested, 3),
        "load_s": round(load_s, 3),
        "completion_tokens": completion_tokens,
    }


if __name__ == "__main__":
    print(json.dumps(measure_local_model(load_settings().local_model), indent=2))
