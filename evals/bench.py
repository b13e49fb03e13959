"""``make bench``: measure, then write docs/benchmarks.md with the command and the machine.

Figures that compare two things are measured in the same run and reported as
a ratio, because these machines are noisy.

    python -m evals.bench                        # everything; writes docs/benchmarks.md (= make bench)
    python -m evals.bench --json                 # the speed figures only, as one JSON object
    python -m evals.bench --json --only overhead # ... just these parts (repeat --only): overhead, chat,
                                                 # cold_ask, ui

``--json`` prints ``step_overhead_vs_raw``, ``step_overhead_vs_peer``, ``chat_turn_vs_bare_model``,
``tool_turn_vs_bare_model``, ``cold_ask_first_token_s`` and ``ui_first_token_s`` (those of the parts run),
then each part's raw figures under its name; it writes no file.
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
from evals.bench_cache import FAQ, STORED, measure_cache
from evals.bench_model import measure_local_model
from evals.bench_overhead import measure_overhead
from evals.bench_stream import measure_stream
from evals.bench_workers import MODEL as WORKER_MODEL
from evals.bench_workers import WARMUP_PER_WORKER, WORKER_COUNTS, measure_workers
from evals.machine import machine

REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
COMMAND = "make bench   # = .venv/bin/python -m evals.bench"


def _latency(figures: dict[str, Any]) -> str:
    return f"p50 {figures['p50_ms']:.2f} ms, p95 {figures['p95_ms']:.2f} ms"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f} s"


def _cache_section(cache: dict[str, Any]) -> str:
    small, large = (cache["search"][size] for size in sorted(cache["search"], key=int))
    work = cache["workload"]
    with_cache, without = work["cached"], work["uncached"]
    rows = []
    for label, key in (
        ("search only (FAISS), {entries} entries ({index})", "search"),
        ("lookup, embedding already stored, {entries} entries", "lookup_embedded"),
        ("embed + search: lookup of a fresh text, {entries} entries", "lookup_fresh"),
        ("embed + search + verify: lookup of a fresh paraphrase, {entries} entries", "lookup_fresh_verified"),
        ("verifier alone, one candidate pair (during the {entries}-entry lookups)", "verifier"),
        ("embedding model alone, one fresh text (during the {entries}-entry lookups)", "embedding_model"),
    ):
        for size in (small, large):
            name = label.format(entries=f"{size['entries']:,}", index=size["index"])
            rows.append(f"| {name} | {_latency(size[key])} | |")
    for size in (small, large):
        rows.append(
            f"| first lookup of a {size['entries']:,}-entry scope in a process (reads it, builds the index) "
            f"| {size['index_load_s']:.2f} s | |"
        )
    for size in (small, large):
        saved = size["new_process"]
        rows.append(
            f"| first lookup of a {size['entries']:,}-entry scope in a new process, saved index "
            f"| {saved['saved_s']:.2f} s ({saved['ratio']:.3f}x of rebuilding it: {saved['rebuilt_s']:.1f} s) | ≤ 1 s |"
        )
    for size in (small, large):
        rows.append(
            f"| stored questions served for their paraphrase, {size['entries']:,} entries "
            f"| {size['paraphrases_served']} of {size['paraphrases']} | |"
        )
    problems = [
        f"{name}: {', '.join(items)}."
        for name, items in (
            ("Wrong hits (served another question's answer)", work["wrong_hits"]),
            ("Repeats or paraphrases not served", work["unserved"]),
            ("Runs not answered with the cache", with_cache["not_answered"]),
            ("Runs not answered without the cache", without["not_answered"]),
        )
        if items
    ]
    return f"""## Semantic cache

Search: the real `SemanticCache` over its `CacheStore` on a temporary SQLite file, `[cache]` as configured
(`candidates` {cache["settings"]["candidates"]}, `hnsw_above` {cache["settings"]["hnsw_above"]:,}, \
serve at {cache["settings"]["serve_similarity"]:g}). One scope is filled in bulk with random unit vectors
(384-d, layer `llm_response`) and {len(STORED)} real questions embedded by all-MiniLM-L6-v2. The queries are a
paraphrase of each of those questions (served from it) and {len(STORED)} unrelated questions (no candidate:
random vectors sit near similarity 0); p50 and p95 over every query. *Search only* is the FAISS call of
`lookup()` on its own, query vectors embedded beforehand. *Lookup, embedding already stored* is `lookup()` of
a text asked before: no model runs, but it reads the embedding row and the scope's newest id, searches, reads
the candidates' rows, runs the guards and, on a hit, writes the hit count. *Embed + search* is `lookup()` of
a text never seen: the same plus the embedding model and the embedding row written; the model alone is timed
on other unseen texts, interleaved with those lookups, so the difference is the search and the rows. The
first lookup of a scope in a process reads all its vectors and builds its index (HNSW above `hnsw_above`).
Random vectors have no neighbourhood structure, which makes HNSW's greedy search harder than real
embeddings would: a paraphrase not served at {large["entries"]:,} entries is a stored neighbour the HNSW search
(efSearch {large["hnsw_ef_search"]}) did not reach, which exact search always finds.

| figure | measured | target |
|---|---|---|
{chr(10).join(rows)}

Workload: {work["questions"]} questions, each in a new thread: {work["distinct"]} questions the embedded model
answers without a tool, then each again verbatim, then each paraphrased, as in
"{FAQ[0][0]}" then "{FAQ[0][1]}".
They go through the agent on the default route (Qwen2.5-Coder-0.5B, llama.cpp) with the cache, then without
it, in the same process, each on a fresh SQLite database after one warm-up question. Tokens are input +
output of the model calls' audit rows; time is the sum of the questions' wall clocks. A hit still embeds the
question, searches, and writes the run's checkpoints, events and spans.

| figure | measured | target |
|---|---|---|
| model tokens, without → with the cache | {without["tokens"]:,} → {with_cache["tokens"]:,} | |
| tokens, ratio (cache / no cache) | {work["token_ratio"]:.2f}× | |
| wall time, without → with the cache | {without["wall_s"]:.1f} s → {with_cache["wall_s"]:.1f} s | |
| time, ratio (cache / no cache) | {work["time_ratio"]:.2f}× | |
| model calls, without → with the cache | {without["model_calls"]} → {with_cache["model_calls"]} | |
| hits | {work["hits"]} of {work["questions"]} ({work["hits_by_kind"]["repeat"]} repeats, \
{work["hits_by_kind"]["paraphrase"]} paraphrases, {work["hits_by_kind"]["first"]} first askings) | |
| median per question: hit / miss / no cache | {_seconds(work["hit_median_s"])} / {_seconds(work["miss_median_s"])} \
/ {_seconds(work["uncached_median_s"])} | |
| tokens the hits claimed to save (cost of the stored runs) | {work["saved_tokens_claimed"]:,} | |

{" ".join(problems) or "Every repeat and paraphrase was served from the question it repeats; no wrong hit."}
"""


def _throughput(backend: dict[str, Any], size: int) -> str:
    batch = backend["workers"][str(size)]
    return f"{batch['runs_per_s']:.1f} runs/s ({batch['ratio_to_1']:.2f}×)"


def _lost_and_repeated(backend: dict[str, Any]) -> str:
    batches = backend["workers"].values()
    return f"{sum(b['lost'] for b in batches)} / {sum(b['repeated'] for b in batches)}"


def _workers_section(workers: dict[str, Any]) -> str:
    postgres, sqlite = workers["backends"]["postgresql"], workers["backends"]["sqlite"]
    rows = [
        f"| runs/s, {size} worker{'s' if size > 1 else ''} (ratio to 1) | {_throughput(postgres, size)} "
        f"| {_throughput(sqlite, size)} | {'≥ 1.6× on PostgreSQL' if size == 2 else ''} |"
        for size in WORKER_COUNTS
    ]
    contended = postgres["claim_contended"]
    cpu_rows = [
        f"| {size} | {postgres['workers'][str(size)]['cpu']['workers_cores']:.2f} "
        f"| {postgres['workers'][str(size)]['cpu']['database_cores']:.2f} "
        f"| {postgres['workers'][str(size)]['cpu']['others_cores']:.2f} "
        f"| {postgres['workers'][str(size)]['cpu']['worker_ms_per_run']:.0f} "
        f"| {postgres['workers'][str(size)]['backends']['lock_wait']:.3f} |"
        for size in WORKER_COUNTS
    ]
    return f"""## Scale-out: worker processes on one database

Real `firebreak worker` processes (the command, one process each, all started at once) on a fresh database:
a private schema in PostgreSQL, then a SQLite file. Every run is one question in its own conversation that
the scripted model (`{WORKER_MODEL}`) answers at once, with the semantic cache off and the day budgets and
rate limits raised out of reach (still reserved and settled on every call), so a run is Firebreak's own work:
the graph's checkpoints, the run row, events, spans, the audit row, the budget reservations and the queue's claim and
settle. Every worker starts and warms up ({WARMUP_PER_WORKER} runs each) before any figure is taken; then, in
{workers["rounds"]} rounds, each pool size ({", ".join(map(str, WORKER_COUNTS))}, in alternating order) gets a batch of
{workers["runs_per_batch"]} runs queued in one transaction while the workers it does not use are paused
(SIGSTOP). A batch's time runs from its first run's start to its last run's finish (`runs.created_at`,
`runs.finished_at`); runs/s is the median over the rounds, and a ratio is the median of each round's ratio to
one worker, so both sides of a ratio ran minutes apart at most.
A run is lost when it was not answered, done twice when the queue handed it
out more than once or its model was asked twice.

| figure | PostgreSQL | SQLite | target |
|---|---|---|---|
{chr(10).join(rows)}
| runs lost / done twice, all batches | {_lost_and_repeated(postgres)} | {_lost_and_repeated(sqlite)} | 0 / 0 |
| claim latency, one claimer | {_latency(postgres["claim_alone"])} | {_latency(sqlite["claim_alone"])} | |
| claim latency, {contended["claimers"]} claimers at once | {_latency(contended)} \
| {_latency(sqlite["claim_contended"])} | |
| runs handed to two claimers | {contended["claimed_twice"]} | {sqlite["claim_contended"]["claimed_twice"]} | 0 |

Where the time goes on PostgreSQL (medians over the rounds; cores are CPU seconds per second of the batch,
read from `/proc`; lock waits are the average number of this bench's backends waiting on a lock, sampled from
`pg_stat_activity`):

| workers | workers' cores | PostgreSQL's cores | others' cores | worker CPU per run (ms) | backends waiting on a lock |
|---|---|---|---|---|---|
{chr(10).join(cpu_rows)}

This machine has {workers["cores"]} cores, and the database server and everything else running share them with the
workers: when one worker and its PostgreSQL backend already use about a core, two workers can reach at most
about {workers["cores"]}× that, less what else runs, and 4 workers only take turns. Lock waits stay a small
fraction of a backend (the tenant's day rows in `budget_usage` are the only rows workers wait on), so on
separate machines 2 workers scale close to 2× until those shared rows saturate. The 4-worker figure says what
workers cost each other when they outnumber the cores, not how far a bigger machine would go.
SQLite serialises writers (one write lock per file), so its workers wait for each other on every commit.
The claim latency is `QueueStore.claim` alone, timed in threads of one process (each with its own connection)
that claim and settle back to back until {contended["samples"]} queued runs are gone: the queue's worst
case, workers that spend no time on what they claim.
"""


def stream_section(stream: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {label} | {stream[f'screened_{key}_ms']:.2f} ms | {stream[f'unscreened_{key}_ms']:.2f} ms "
        f"| {stream[f'{key}_ratio']:.2f}× |"
        for label, key in (("first released token", "first_token"), ("whole reply", "reply"))
    )
    lengths = sorted(stream["screen_us_per_token"], key=int)
    cost = "; ".join(f"{stream['screen_us_per_token'][n]:.1f} µs per token over {int(n):,} tokens" for n in lengths)
    held = stream["hold_back"]
    return f"""## Streaming through the policy screen

Every streamed token passes the policy screen (`app/resilience/stream_screen.py`) before a user sees it: text
a policy pattern could still match is held back until the next tokens rule the match out, or until the
finished reply passes the final screen. Measured against the same stream without the screen: one
{stream["reply_tokens"]}-token clean reply full of numbers (an order id, a date, a phone number, a tracking
code), streamed word by word by the scripted model through the real gateway, {stream["rounds"]} interleaved
rounds, medians.

| figure | screened | unscreened | ratio |
|---|---|---|---|
{rows}

The whole reply's difference, per token, is {stream["overhead_us_per_token"]:.1f} µs; the screen alone
(fed the reply's tokens directly, medians of 21 passes) costs {cost}. Of the reply's {held["tokens"]} tokens,
{held["delayed_tokens"]} went out later than they came (a number held until the words after it showed it
was no card number; a trailing "d" until it was not "drop table"), by at most {held["most_tokens_delayed"]}
tokens, never more than {held["most_chars_held"]} characters at once. A reply's first words go out as they
come unless they could begin a match.
"""


def _overhead(settings: Settings) -> dict[str, Any]:
    return asyncio.run(measure_overhead())


def _chat_turns(settings: Settings) -> dict[str, Any]:
    from evals.bench_model import measure_chat_turns

    return measure_chat_turns(settings)


def _cold_ask(settings: Settings) -> dict[str, Any]:
    from evals.bench_model import measure_cold_ask

    return measure_cold_ask()


def _ui_first_token(settings: Settings) -> dict[str, Any]:
    from evals.bench_ui import measure_ui_first_token  # Playwright loads only when this part runs

    return measure_ui_first_token()


# The speed figures, by part: what ``--json`` measures (every part, or those named by ``--only``).
SPEED_PARTS: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "overhead": _overhead,
    "chat": _chat_turns,
    "cold_ask": _cold_ask,
    "ui": _ui_first_token,
}
# The top-level keys of ``--json``: key -> (part, that part's key).
HEADLINE: dict[str, tuple[str, str]] = {
    "step_overhead_vs_raw": ("overhead", "step_overhead_vs_raw"),
    "step_overhead_vs_peer": ("overhead", "step_overhead_vs_peer"),
    "chat_turn_vs_bare_model": ("chat", "chat_turn_vs_bare_model"),
    "tool_turn_vs_bare_model": ("chat", "tool_turn_vs_bare_model"),
    "cold_ask_first_token_s": ("cold_ask", "cold_ask_first_token_s"),
    "ui_first_token_s": ("ui", "ui_first_token_s"),
}
STEP_VS_PEER_TARGET = 1.0
STEP_VS_RAW_STRETCH = 1.5
TURN_VS_BARE_TARGET = 1.3
COLD_ASK_TARGET_S = 3.0
UI_FIRST_TOKEN_TARGET_S = 0.5


def measure_speed(settings: Settings, parts: Sequence[str] = tuple(SPEED_PARTS)) -> dict[str, dict[str, Any]]:
    """The speed figures of ``parts``, each part's raw figures under its name."""
    return {part: SPEED_PARTS[part](settings) for part in parts}


def speed_report(speed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What ``--json`` prints: the headline figures of the parts measured, then every part's raw figures."""
    headline = {key: float(speed[part][name]) for key, (part, name) in HEADLINE.items() if part in speed}
    return {**headline, **speed}


def speed_targets_section(speed: dict[str, dict[str, Any]], measured_on: str) -> str:
    """The speed targets: each one's anchor, the figure of this run, its ratio to the anchor, met or not."""
    overhead, chat = speed["overhead"], speed["chat"]
    cold, ui = speed["cold_ask"]["cold_ask_first_token_s"], speed["ui"]["ui_first_token_s"]
    vs_peer = overhead["step_overhead_vs_peer"]
    rows = [
        (
            "1. guarded step overhead, per tool step (scripted model, same tool, same SQLite checkpointer)",
            f"≤ {STEP_VS_PEER_TARGET:.1f}× the peer",
            f"LangChain `create_agent` + 7 middleware: {overhead['peer_ms_per_step']:.2f} ms "
            f"(raw LangGraph loop {overhead['raw_ms_per_step']:.2f} ms)",
            f"{overhead['firebreak_ms_per_step']:.2f} ms ({overhead['step_overhead_vs_raw']:.2f}× raw)",
            vs_peer,
            vs_peer <= STEP_VS_PEER_TARGET,
        ),
        *(
            (
                f"2. warm chat turn on the embedded model, {label}",
                f"≤ {TURN_VS_BARE_TARGET:.1f}× bare",
                f"bare llama-cpp-python, same prompt: {chat[f'{kind}_bare_s']:.2f} s",
                f"{chat[f'{kind}_turn_s']:.2f} s",
                chat[f"{kind}_turn_vs_bare_model"],
                chat[f"{kind}_turn_vs_bare_model"] <= TURN_VS_BARE_TARGET,
            )
            for label, kind in (("no tool", "chat"), ("one tool", "tool"))
        ),
        (
            "3. new process: `firebreak ask`, embedded model, no tool, to the first answer token",
            f"≤ {COLD_ASK_TARGET_S:g} s",
            f"{COLD_ASK_TARGET_S:g} s",
            f"{cold:.2f} s",
            cold / COLD_ASK_TARGET_S,
            cold <= COLD_ASK_TARGET_S,
        ),
        (
            "4. first answer token in the UI after Enter, warm model, real browser",
            f"≤ {UI_FIRST_TOKEN_TARGET_S:g} s",
            f"{UI_FIRST_TOKEN_TARGET_S:g} s",
            f"{ui:.3f} s",
            ui / UI_FIRST_TOKEN_TARGET_S,
            ui <= UI_FIRST_TOKEN_TARGET_S,
        ),
    ]
    table = "\n".join(
        f"| {what} | {target} | {anchor} | {measured} | {ratio:.2f}× | {_met(passed)} |"
        for what, target, anchor, measured, ratio, passed in rows
    )
    return f"""## Speed targets, from this run

Measured on {measured_on}. A ratio's two sides ran in this run, interleaved; for a target in seconds the
anchor is the target itself.

| what | target | anchor | measured | ratio to anchor | met |
|---|---|---|---|---|---|
{table}
"""


# The eval suites that measure DESIGN.md's targets which are not timings: make bench runs them too, so
# every target's figure on this page comes from one run on one machine.
TARGET_SUITES = ("resilience", "containment", "cache")


def _scenario(suites: dict[str, Any], path: str) -> dict[str, Any]:
    """The scenario ``suite/name`` of the eval summary."""
    suite_name, name = path.split("/")
    (suite,) = (suite for suite in suites["suites"] if suite["suite"] == suite_name)
    (scenario,) = (scenario for scenario in suite["scenarios"] if scenario["name"] == name)
    return dict(scenario)


def _met(passed: bool) -> str:
    return "yes" if passed else "**no**"


def targets_section(
    model: dict[str, Any],
    overhead: dict[str, Any],
    cache: dict[str, Any],
    workers: dict[str, Any],
    suites: dict[str, Any],
) -> str:
    """DESIGN.md's table of numbers to reach: each target, its figure from this run, met or not, and where from."""
    large = cache["search"][str(max(int(size) for size in cache["search"]))]
    dead = [_scenario(suites, f"resilience/dead_{kind}_4000_requests") for kind in ("tool", "model")]
    spend = _scenario(suites, "containment/runaway_spend_one_request")
    precision = _scenario(suites, "cache/precision_on_frozen_test_split")
    recall = _scenario(suites, "cache/recall_on_frozen_test_split")
    public_precision = _scenario(suites, "cache/precision_on_public_stsb")
    public_recall = _scenario(suites, "cache/recall_on_public_stsb")
    killed = _scenario(suites, "resilience/workers_killed_mid_run")
    two = workers["backends"]["postgresql"]["workers"]["2"]["ratio_to_1"]
    search, fresh = large["search"]["p50_ms"], large["lookup_fresh"]["p50_ms"]
    verified, first = large["lookup_fresh_verified"]["p50_ms"], large["new_process"]["saved_s"]
    rows = [
        (
            "guarded step overhead vs LangChain `create_agent` + equivalent middleware",
            f"≤ {STEP_VS_PEER_TARGET:.1f}× the peer (stretch ≤ {STEP_VS_RAW_STRETCH:.1f}× raw)",
            f"{overhead['step_overhead_vs_peer']:.2f}× the peer, {overhead['step_overhead_vs_raw']:.2f}× raw",
            overhead["step_overhead_vs_peer"] <= STEP_VS_PEER_TARGET,
            "make bench (per-step overhead, below)",
        ),
        (
            "dead backend, 4,000 requests",
            "≤ 10 calls reach it",
            " / ".join(f"{s['dead_api_backend_calls']} calls ({s['name'].split('_')[1]})" for s in dead),
            all(s["passed"] for s in dead),
            "make bench → `firebreak eval resilience`",
        ),
        (
            "$200-request scenario (runaway spend)",
            "spend ≤ the per-request cap, overshoot 0",
            f"${spend['max_request_cost_usd']:g} of a ${spend['cap_usd']:g} cap, overshoot ${spend['overshoot_usd']:g}",
            spend["passed"],
            "make bench → `firebreak eval containment`",
        ),
        (
            f"semantic cache, {large['entries']:,} entries",
            "search ≤ 2 ms p50; embed + search ≤ 25 ms p50",
            f"search {search:.2f} ms; embed + search {fresh:.2f} ms",
            search <= 2 and fresh <= 25,
            "make bench (semantic cache, below)",
        ),
        (
            f"semantic cache with its verifier, {large['entries']:,} entries",
            "embed + search + verify ≤ 40 ms p50; first lookup in a new process ≤ 1 s",
            f"embed + search + verify {verified:.2f} ms; first lookup {first:.2f} s",
            verified <= 40 and first <= 1,
            "make bench (semantic cache, below)",
        ),
        (
            "semantic cache quality, frozen test split (never tuned on)",
            "precision ≥ 0.97, recall ≥ 0.70",
            f"precision {precision['precision']:.3f}, recall {recall['recall']:.3f}",
            precision["passed"] and recall["passed"],
            "make bench → `firebreak eval cache`",
        ),
        (
            "semantic cache quality, public set STS-B test (thresholded)",
            "precision ≥ 0.97, recall ≥ 0.70",
            f"precision {public_precision['precision']:.3f}, recall {public_recall['recall']:.3f}",
            public_precision["passed"] and public_recall["passed"],
            "make bench → `firebreak eval cache`",
        ),
        (
            f"worker killed mid-run (kill -9), {killed['runs']} runs",
            "0 lost, 0 duplicated side effects",
            f"{killed['lost_runs']} lost, {killed['duplicate_side_effects']} duplicated "
            f"({killed['workers_killed']} workers killed)",
            killed["passed"],
            "make bench → `firebreak eval resilience`",
        ),
        (
            "PostgreSQL, 2 workers vs 1",
            "≥ 1.6× runs/s on trivial runs",
            f"{two:.2f}×",
            two >= 1.6,
            "make bench (scale-out, below)",
        ),
        (
            "embedded chat model (Qwen 0.5B) on 2 cores",
            "≥ 25 tokens/s decode, first token ≤ 0.6 s",
            f"{model['tokens_per_s']:.1f} tokens/s, first token {model['first_token_s']:.3f} s",
            model["tokens_per_s"] >= 25 and model["first_token_s"] <= 0.6,
            "make bench (embedded chat model, below)",
        ),
    ]
    table = "\n".join(
        f"| {what} | {target} | {measured} | {_met(passed)} | {where} |"
        for what, target, measured, passed, where in rows
    )
    return f"""## DESIGN.md's numbers, from this run

| what | target | measured | met | measured by |
|---|---|---|---|---|
{table}

The eval suites ({", ".join(TARGET_SUITES)}) ran in this bench run; their full reports are in the raw figures
below and, with plots, in `make eval`'s `evals/reports/latest.md`.
"""


def _breakdown_rows(breakdown: dict[str, Any]) -> str:
    firebreak, peer = breakdown["firebreak"], breakdown["peer"]
    rows = [
        f"| {name} | {ms:.2f} ms | {ms / firebreak['sampled_ms_per_step']:.0%} "
        f"| {peer['ms_per_step'][name]:.2f} ms | {peer['ms_per_step'][name] / peer['sampled_ms_per_step']:.0%} |"
        for name, ms in firebreak["ms_per_step"].items()
    ]
    total = (
        f"| the sampled step | {firebreak['sampled_ms_per_step']:.2f} ms | | {peer['sampled_ms_per_step']:.2f} ms | |"
    )
    return "\n".join([*rows, total])


def overhead_section(overhead: dict[str, Any]) -> str:
    """Three sides of one tool loop, their ratios, and where Firebreak's step goes."""
    breakdown = overhead["breakdown"]
    statements = "\n".join(f"| `{kind}` | {count:g} |" for kind, count in breakdown["statements_per_run"].items())
    return f"""## Per-step overhead of the Firebreak graph

Three sides of the same tool loop, each on the same scripted model through LiteLLM, the same tool
(`knowledge_search`, its JSON result) and the same checkpointer (LangGraph's SQLite saver as Firebreak
opens it, durability "sync"), interleaved run by run (each round starts with another side);
{overhead["runs"]} runs of {overhead["model_calls_per_run"]} model calls each; times per step are medians, a
ratio is the median of the rounds' ratios (a round's sides ran seconds apart). The raw loop is two
LangGraph nodes calling LiteLLM and the tool. The peer is LangChain v1 `create_agent` on `ChatLiteLLM` with
seven middleware set like Firebreak's guards: ModelCallLimit (`max_steps` + 1 calls a run), ToolCallLimit (the
request's and the session's tool-call caps), HumanInTheLoop (the read tool passes, as Firebreak's gate lets a
read through), Summarization (a token trigger the short run never reaches, as Firebreak's summarizer), ModelFallback
(to a second scripted route), ModelRetry and ToolRetry (`[retries]`). Firebreak's semantic cache is off here
(every run asks the same question, so it would answer all but the first) and the requests-per-minute limits
are raised out of reach (they are still checked on every call).

| figure | measured | target |
|---|---|---|
| raw LangGraph loop, per step | {overhead["raw_ms_per_step"]:.2f} ms | |
| LangChain `create_agent` + 7 middleware (the peer), per step | {overhead["peer_ms_per_step"]:.2f} ms | |
| Firebreak, per step | {overhead["firebreak_ms_per_step"]:.2f} ms | |
| peer / raw | {overhead["peer_vs_raw"]:.2f}× | |
| Firebreak / raw | {overhead["step_overhead_vs_raw"]:.2f}× | stretch ≤ {STEP_VS_RAW_STRETCH:.1f}× |
| Firebreak / peer | {overhead["step_overhead_vs_peer"]:.2f}× | ≤ {STEP_VS_PEER_TARGET:.1f}× |

What the ratio holds: per tool step the Firebreak graph runs six supersteps (summarize, decide, screen_actions,
confidence_gate, act, observe), the raw loop two, and every superstep writes a checkpoint; each run also
screens its input and its secondary triggers once; each model and tool call reads its circuit breaker,
reserves and settles its budget, and writes its audit row, run event and spans, all durably. The tool here
is a read, so the gate scores nothing (a gated write adds one model call).

Where the step goes: {breakdown["sampled_runs"]} more rounds, not the timed ones, in which a thread samples
the event loop thread's stack every half millisecond while Firebreak's side runs, and while the peer's
does. A sample belongs to the innermost store in its stack, so a store's row holds what it does itself,
its SQL included; *waiting* is the event loop with nothing to run (both checkpointers work in their own
SQLite thread). The last two rows cut across the stores: samples inside SQLAlchemy, and those of them where
SQLite itself was executing or committing. Times are each row's share of the samples times the side's mean
sampled step; the span exporter's batch thread is not sampled. Sampling slows a step, and a busy machine
the waits most (a sampled step: Firebreak {breakdown["firebreak"]["sampled_ms_per_step"]:.2f} ms, the peer
{breakdown["peer"]["sampled_ms_per_step"]:.2f} ms; timed above: {overhead["firebreak_ms_per_step"]:.2f} ms and
{overhead["peer_ms_per_step"]:.2f} ms), so compare rows with each other and with other runs' rows.

| where | Firebreak | share | the peer | share |
|---|---|---|---|---|
{_breakdown_rows(breakdown)}

SQL on Firebreak's engine per run: {breakdown["sql_statements_per_run"]:g} statements and
{breakdown["commits_per_run"]:g} commits (checkpoints not counted: the checkpointer has its own connection).

| statement (verb, first table) | per run |
|---|---|
{statements}
"""


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
{stream_section(stream)}
{_cache_section(cache)}
{_workers_section(workers)}
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
