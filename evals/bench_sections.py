"""The measured sections of docs/benchmarks.md: per-step overhead, the stream screen, the cache, the workers."""

from __future__ import annotations

from typing import Any

from evals.bench_cache import FAQ, STORED
from evals.bench_mcp import TRANSPORTS
from evals.bench_targets import STEP_VS_PEER_TARGET, STEP_VS_RAW_STRETCH
from evals.bench_workers import MODEL as WORKER_MODEL
from evals.bench_workers import WARMUP_PER_WORKER, WORKER_COUNTS


def _latency(figures: dict[str, Any]) -> str:
    return f"p50 {figures['p50_ms']:.2f} ms, p95 {figures['p95_ms']:.2f} ms"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f} s"


def cache_section(cache: dict[str, Any]) -> str:
    """The semantic cache: search and lookup latency at two sizes, then the agent workload with and without it."""
    return _cache_search_text(cache) + _cache_workload_text(cache["workload"])


def _cache_search_rows(cache: dict[str, Any]) -> list[str]:
    small, large = (cache["search"][size] for size in sorted(cache["search"], key=int))
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
    return rows


def _cache_search_text(cache: dict[str, Any]) -> str:
    large = cache["search"][max(cache["search"], key=int)]
    rows = _cache_search_rows(cache)
    return f"""## Semantic cache

Search: the real `SemanticCache` over its `CacheStore` on a temporary SQLite file, `[cache]` as configured
(`candidates` {cache["settings"]["candidates"]}, `hnsw_above` {cache["settings"]["hnsw_above"]:,}, \
serve at {cache["settings"]["serve_similarity"]:g}). One scope is filled in bulk with random unit vectors
(384-d, layer `llm_response`) and {len(STORED)} real questions embedded by all-MiniLM-L6-v2. The queries are a
paraphrase of each of those questions (served from it) and {len(STORED)} unrelated questions (no candidate:
random vectors sit near similarity 0); p50 and p95 over every query. *Search only* is the FAISS call of
`lookup()` on its own, query vectors embedded beforehand. *Lookup, embedding already stored* is `lookup()` of
a text asked before, on the same cache with `verify` off: no model runs, but it reads the embedding row and the
scope's newest id, searches, reads the candidates' rows, runs the guards and, on a hit, writes the hit count.
*Embed + search* is that lookup (verifier off) of a text never seen: the same plus the embedding model and the
embedding row written; the model alone is timed on other unseen texts, interleaved with those lookups, so the
difference is the search and the rows. *Embed + search + verify* is `lookup()` as configured (verifier on) of a
paraphrase never seen, whose candidate the verifier reads. The
first lookup of a scope in a process reads all its vectors and builds its index (HNSW above `hnsw_above`).
Random vectors have no neighbourhood structure, which makes HNSW's greedy search harder than real
embeddings would: a paraphrase not served at {large["entries"]:,} entries is a stored neighbour the HNSW search
(efSearch {large["hnsw_ef_search"]}) did not reach, which exact search always finds.

| figure | measured | target |
|---|---|---|
{chr(10).join(rows)}

"""


def _cache_workload_text(work: dict[str, Any]) -> str:
    with_cache, without = work["cached"], work["uncached"]
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
    return f"""\
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


def workers_section(workers: dict[str, Any]) -> str:
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

What the ratio holds: per tool step the Firebreak graph runs six nodes (summarize, decide, screen_actions,
confidence_gate, act, observe) in three supersteps (summarize + decide + screen_actions, confidence_gate,
act + observe; decision 0064), the raw loop two nodes in two, and every superstep writes a checkpoint;
each run also screens its input and its secondary triggers once; each model and tool call reads its circuit breaker,
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
{overhead["peer_ms_per_step"]:.2f} ms), so compare rows with each other and with other runs' rows. The sampler
needs the GIL to look and gets it soonest when the loop thread lets go of it, in SQLite's calls and in waits,
so the SQL rows are over-weighted: decision 0058 measures what each guard costs by switching it off instead.

| where | Firebreak | share | the peer | share |
|---|---|---|---|---|
{_breakdown_rows(breakdown)}

SQL on Firebreak's engine per run: {breakdown["sql_statements_per_run"]:g} statements and
{breakdown["commits_per_run"]:g} commits (checkpoints not counted: the checkpointer has its own connection).

| statement (verb, first table) | per run |
|---|---|
{statements}
"""


def mcp_section(mcp: dict[str, Any]) -> str:
    """One MCP tool call through Firebreak against the same call made directly with the MCP SDK."""
    rows = []
    for label, name in (
        ("the SDK directly (`Client.call_tool`)", "direct"),
        ("`run_tool` on the MCP door's tool", "runner"),
        ("the `act` node deciding the call (a tool call in a run)", "firebreak"),
    ):
        rows.append(f"| {label} | {' | '.join(_latency(mcp[kind][name]) for kind in TRANSPORTS)} |")
    for label, name in (("`run_tool`", "runner"), ("the `act` node", "firebreak")):
        versus = [
            f"{mcp[kind][f'{name}_vs_direct']:.2f}× (+{mcp[kind][f'{name}_added_ms']:.2f} ms)" for kind in TRANSPORTS
        ]
        rows.append(f"| {label} / direct, ratio of medians (added per call) | {' | '.join(versus)} |")
    return f"""## An MCP tool call through Firebreak vs the MCP SDK directly

One read tool of a small MCP server (`evals/bench_mcp_server.py`, the SDK's `MCPServer`; `{mcp["tool"]}` returns
a {mcp["stdio"]["result_chars"]}-character JSON object), called with the same arguments over the same transport by
three sides, each with a server process of its own: the SDK's client directly, connected once; the tool runner
on the Firebreak tool the MCP door (`[mcp.servers]`) built from it (arguments validated against the server's
schema, the server's breaker, the blast-radius reservation and its settlement, the timeout, the rendering); and
the `act` node as the graph runs it, deciding one call: its `node act` and `execute_tool` spans, the runner, the
`tool_result` event and the node's one commit, on a SQLite file (LangGraph's scheduling and the checkpoint are
not in it). Interleaved call by call, each round starting with another side; {mcp["calls"]} calls per side
after {mcp["warmup"]} warm-up rounds; ratios are of the medians.

| side | stdio | streamable HTTP (127.0.0.1) |
|---|---|---|
{chr(10).join(rows)}

Every timed call reached a server: each side's server counted {mcp["stdio"]["server_calls"]["firebreak"]} calls
(warm-up included) and every side got the same answer.
"""
