"""``make bench``: measure, then write docs/benchmarks.md with the command and the machine.

Figures that compare two things are measured in the same run and reported as
a ratio, because these machines are noisy.

    python -m evals.bench                        # everything; writes docs/benchmarks.md (= make bench)
    python -m evals.bench --json                 # the speed figures only, as one JSON object
    python -m evals.bench --json --only overhead # ... just these parts (repeat --only): overhead, chat,
                                                 # cold_ask, ui, mcp

``--json`` prints ``step_overhead_vs_raw``, ``step_overhead_vs_peer``, ``chat_turn_vs_bare_model``,
``tool_turn_vs_bare_model``, ``cold_ask_first_token_s``, ``ui_first_token_s`` and ``mcp_call_vs_direct_sdk``
(those of the parts run), then each part's raw figures under its name; it writes no file.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.config import Settings, load_settings
from evals.all import run_suites
from evals.bench_cache import measure_cache
from evals.bench_mcp import measure_mcp
from evals.bench_model import measure_local_model
from evals.bench_overhead import measure_overhead
from evals.bench_sections import cache_section, mcp_section, overhead_section, stream_section, workers_section
from evals.bench_stream import measure_stream
from evals.bench_targets import TARGET_SUITES, speed_targets_section, targets_section
from evals.bench_workers import measure_workers
from evals.machine import machine

REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
COMMAND = "make bench   # = .venv/bin/python -m evals.bench"


def _overhead(settings: Settings) -> dict[str, Any]:
    return asyncio.run(measure_overhead())


def _chat_turns(settings: Settings) -> dict[str, Any]:
    from evals.bench_model import measure_chat_turns

    return measure_chat_turns(settings)


def _cold_ask(settings: Settings) -> dict[str, Any]:
    from evals.bench_model import measure_cold_ask

    return measure_cold_ask()


def _mcp_call(settings: Settings) -> dict[str, Any]:
    return asyncio.run(measure_mcp())


def _ui_first_token(settings: Settings) -> dict[str, Any]:
    from evals.bench_ui import measure_ui_first_token  # Playwright loads only when this part runs

    return measure_ui_first_token()


# The speed figures, by part: what ``--json`` measures (every part, or those named by ``--only``).
SPEED_PARTS: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "overhead": _overhead,
    "chat": _chat_turns,
    "cold_ask": _cold_ask,
    "ui": _ui_first_token,
    "mcp": _mcp_call,
}
# The top-level keys of ``--json``: key -> (part, that part's key).
HEADLINE: dict[str, tuple[str, str]] = {
    "step_overhead_vs_raw": ("overhead", "step_overhead_vs_raw"),
    "step_overhead_vs_peer": ("overhead", "step_overhead_vs_peer"),
    "chat_turn_vs_bare_model": ("chat", "chat_turn_vs_bare_model"),
    "tool_turn_vs_bare_model": ("chat", "tool_turn_vs_bare_model"),
    "cold_ask_first_token_s": ("cold_ask", "cold_ask_first_token_s"),
    "ui_first_token_s": ("ui", "ui_first_token_s"),
    "mcp_call_vs_direct_sdk": ("mcp", "mcp_call_vs_direct_sdk"),
}


def measure_speed(settings: Settings, parts: Sequence[str] = tuple(SPEED_PARTS)) -> dict[str, dict[str, Any]]:
    """The speed figures of ``parts``, each part's raw figures under its name."""
    return {part: SPEED_PARTS[part](settings) for part in parts}


def speed_report(speed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What ``--json`` prints: the headline figures of the parts measured, then every part's raw figures."""
    headline = {key: float(speed[part][name]) for key, (part, name) in HEADLINE.items() if part in speed}
    return {**headline, **speed}


def render(
    model: dict[str, Any],
    speed: dict[str, dict[str, Any]],
    cache: dict[str, Any],
    workers: dict[str, Any],
    suites: dict[str, Any],
    stream: dict[str, Any],
) -> str:
    figures = {"local_model": model, **speed, "stream": stream, "cache": cache, "workers": workers}
    raw = json.dumps({**figures, "suites": suites}, indent=2)
    measured_on = f"{machine()}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    return f"""# Benchmarks

Written by `{COMMAND}` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.
Machine: {machine()}.

{speed_targets_section(speed, measured_on)}
{targets_section(model, speed["overhead"], cache, workers, suites)}
## Embedded chat model (Qwen2.5-Coder-0.5B-Instruct, llama.cpp, through the LiteLLM provider)

| figure | measured | target |
|---|---|---|
| decode speed | {model["tokens_per_s"]:.1f} tokens/s | ≥ 25 tokens/s |
| first token (warm) | {model["first_token_s"]:.3f} s | ≤ 0.6 s |
| model load | {model["load_s"]:.2f} s | |
| tokens generated | {model["completion_tokens"]} | |

{overhead_section(speed["overhead"])}
{mcp_section(speed["mcp"])}
{stream_section(stream)}
{cache_section(cache)}
{workers_section(workers)}
Raw figures:

```json
{raw}
```
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m evals.bench",
        description="Measure, then write docs/benchmarks.md (--json: print the speed figures).",
    )
    parser.add_argument("--json", action="store_true", help="print the speed figures as one JSON object")
    parser.add_argument(
        "--only", action="append", choices=list(SPEED_PARTS), help="with --json: measure this part only (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.only and not args.json:
        parser.error("--only needs --json: docs/benchmarks.md is written from every part")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = load_settings()
    if args.json:
        print(json.dumps(speed_report(measure_speed(settings, args.only or tuple(SPEED_PARTS))), indent=2))
        return
    model = measure_local_model(settings.local_model)
    speed = measure_speed(settings)
    stream = asyncio.run(measure_stream())
    cache = measure_cache()
    workers = measure_workers()
    suites = run_suites(TARGET_SUITES)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(render(model, speed, cache, workers, suites, stream), encoding="utf-8")
    print(REPORT.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
