"""Semantic cache eval on one file of labelled pairs: would a cached answer be served, and would it be right?

Each pair is an earlier (cached) query and a new one, labelled ``same`` when the
cached answer is correct for the new query. Every pair goes through the real
cache (:class:`SemanticCache` over a temporary SQLite file, the real embedder,
real FAISS, the real verifier): its cached query is stored in the scope of
``cached_tenant``, its query looked up in the scope of ``tenant``. A pair is
*served* when it passes the recall stage (similarity ≥ the recall threshold),
the serve threshold, the configured lexical guards and, with ``verify`` on, the
verifier (P(same) ≥ ``verified_at``). Served pairs that are not the same are
false hits: a user gets someone else's answer. A pair across tenants is never
even searched (the scope is part of the key).

``evals/cache_suite.py`` runs this on the dev split, the frozen test split and
the public sets; ``firebreak eval cache [--dataset FILE] [--json]`` prints it.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.cache.guards import GUARDS, Guard, conflict, named
from app.cache.semantic import SemanticCache, scope_key
from app.cache.verifier import Calibration, CrossEncoderVerifier, same_words
from app.embeddings import Embedder
from core.config import Settings

DATA = Path(__file__).resolve().parent / "data"
DEV = DATA / "cache_pairs_dev.jsonl"
TEST = DATA / "cache_pairs_test.jsonl"
KINDS = (
    "paraphrase",
    "negation",
    "number",
    "date",
    "entity",
    "opposite",
    "unrelated",
    "related_topic",
    "other_tenant",
    "order_swap",
    "opposite_goal",
    "different_target",
    "word_swap",
    "not_duplicate",
)
UNLABELLED = "unlabelled"  # a negative in a user's file that names no kind
REQUIRED = {"cached": str, "query": str, "same": bool}
OPTIONAL = {"kind": str, "tenant": str, "cached_tenant": str}
DEFAULT_TENANT = "default"
TARGET_PRECISION = 0.97
TARGET_RECALL = 0.70
# The shipped thresholds, guards and the verifier's calibration are chosen on the dev split only
# (docs/decisions/0043-learned-cache-verifier.md); the test split and the public sets only report.
SWEEP_PROBABILITIES = (0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)

NamedGuards = Sequence[tuple[str, Guard]]


class DatasetError(ValueError):
    """A line of a pairs file that is not a valid pair; the message names the file and line."""


@dataclass(frozen=True)
class Pair:
    cached: str
    query: str
    same: bool
    kind: str
    tenant: str = DEFAULT_TENANT
    cached_tenant: str = DEFAULT_TENANT


def _parse(line: str, where: str) -> Pair:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing, unknown = sorted(REQUIRED.keys() - row.keys()), sorted(row.keys() - REQUIRED.keys() - OPTIONAL.keys())
    if missing or unknown:
        raise DatasetError(f"{where}: missing fields {missing}, unknown fields {unknown}")
    for name, expected in (REQUIRED | OPTIONAL).items():
        if name in row and not isinstance(row[name], expected):
            raise DatasetError(f"{where}: {name!r} must be {expected.__name__}, got {type(row[name]).__name__}")
    if not row["cached"].strip() or not row["query"].strip():
        raise DatasetError(f"{where}: 'cached' and 'query' must not be empty")
    tenant: str = row.get("tenant", DEFAULT_TENANT)
    cached_tenant: str = row.get("cached_tenant", tenant)
    crosses = tenant != cached_tenant
    if crosses and row["same"]:
        raise DatasetError(f"{where}: an answer cached for another tenant is never to be served: same must be false")
    kind: str = row.get("kind") or ("paraphrase" if row["same"] else "other_tenant" if crosses else UNLABELLED)
    if kind not in (*KINDS, UNLABELLED):
        raise DatasetError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    # Only paraphrases are the same question; every other kind is a hard negative. A mismatch is a labelling slip.
    if row["same"] != (kind == "paraphrase"):
        raise DatasetError(f"{where}: kind {kind!r} must have same={str(kind == 'paraphrase').lower()}")
    if kind == "other_tenant" and not crosses:
        raise DatasetError(f"{where}: kind 'other_tenant' needs a 'cached_tenant' other than its 'tenant'")
    return Pair(row["cached"], row["query"], row["same"], kind, tenant, cached_tenant)


def load_pairs(path: str | Path = DEV) -> list[Pair]:
    """Every pair in a JSONL file (blank lines skipped); a bad line raises :class:`DatasetError` naming it."""
    pairs = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                pairs.append(_parse(line, f"{path}:{number}"))
    if not pairs:
        raise DatasetError(f"{path}: no pairs")
    return pairs


@dataclass(frozen=True)
class Setting:
    """What decides whether a pair is served: the cache's stage-2 configuration, or a variant of it."""

    recall: float
    serve: float
    verified_at: float
    different_below: float
    guards: NamedGuards
    verify: bool

    @classmethod
    def of(cls, settings: Settings, route: str) -> Setting:
        thresholds = settings.cache.for_route(route)
        return cls(
            thresholds.recall_similarity,
            thresholds.serve_similarity,
            thresholds.verified_at,
            thresholds.different_below,
            named(settings.cache.guards),
            settings.cache.verify,
        )

    def described(self) -> dict[str, Any]:
        return {
            "recall_similarity": self.recall,
            "serve_similarity": self.serve,
            "guards": [name for name, _ in self.guards],
            "verify": self.verify,
            "verified_at": self.verified_at if self.verify else None,
            "different_below": self.different_below if self.verify else None,
        }


@dataclass(frozen=True)
class Probe:
    """What the real cache did with one pair, and the verifier's calibrated P(same) for it."""

    similarity: float | None  # of the cached query to the query; None: it was in another scope, never searched
    served: bool
    probability: float | None = None  # None: below the recall stage, in another scope, or no verifier


class _Batched:
    """An embedder that encoded every text of the dataset in one batch; the cache then asks one text at a time."""

    def __init__(self, embedder: Embedder, texts: Sequence[str]) -> None:
        unique = sorted(set(texts))
        self._rows = dict(zip(unique, np.asarray(embedder.encode(unique), dtype=np.float32), strict=True))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._rows[text] for text in texts])


def probe_cache(pairs: Sequence[Pair], cache: SemanticCache, *, route: str) -> list[tuple[float | None, bool]]:
    """Each pair through ``cache``: the cached query stored in its tenant's scope, the query looked up in its own.

    Each pair has scopes of its own, so one pair's entry is never another pair's candidate.
    """
    probes = []
    for number, pair in enumerate(pairs):
        cache.put(
            scope_key(tenant=pair.cached_tenant, pair=number),
            pair.cached,
            f"answer to pair {number}",
            tenant_id=pair.cached_tenant,
            route=route,
            tokens=0,
            seconds=0.0,
        )
        found = cache.lookup(scope_key(tenant=pair.tenant, pair=number), pair.query, route=route)
        probes.append((found.best_similarity, found.hit is not None))
    return probes


def probe_pairs(
    pairs: Sequence[Pair],
    settings: Settings,
    embedder: Embedder,
    verifier: CrossEncoderVerifier,
    *,
    route: str,
) -> tuple[list[Probe], np.ndarray]:
    """:func:`probe_cache` on a fresh cache in a temporary SQLite file, configured by ``settings``; then the
    verifier's raw score of every pair the recall stage found (NaN for the others), so the report can show
    what each stage does on its own. Returns the probes (with calibrated probabilities) and the raw scores."""
    from app.services import prepare_database
    from memory.cache import CacheStore

    with tempfile.TemporaryDirectory(prefix="firebreak-eval-cache-") as folder:
        scratch = settings.model_copy(update={"database_url": f"sqlite:///{folder}/cache.db", "auto_migrate": True})
        engine = prepare_database(scratch)
        batched = _Batched(embedder, [text for pair in pairs for text in (pair.cached, pair.query)])
        store = CacheStore(engine, settings.cache.max_entries)
        cache = SemanticCache(store, settings.cache, lambda: batched, clock=time.time, verifier=lambda: verifier)
        try:
            seen = probe_cache(pairs, cache, route=route)
        finally:
            engine.dispose()
    recall = settings.cache.for_route(route).recall_similarity
    recalled = [
        number for number, (similarity, _) in enumerate(seen) if similarity is not None and similarity >= recall
    ]
    scores = np.full(len(pairs), np.nan)
    for start in range(0, len(recalled), SCORE_BATCH):
        chunk = recalled[start : start + SCORE_BATCH]
        scores[chunk] = verifier.scores([(pairs[number].cached, pairs[number].query) for number in chunk])
    # From the same scores: the cache's rule (same words are a repeat, no model) without running the model again.
    probabilities = verifier.calibrated(scores, [same_words(pair.cached, pair.query) for pair in pairs])
    probes = [
        Probe(similarity, served, None if np.isnan(score) else float(probability))
        for (similarity, served), score, probability in zip(seen, scores, probabilities, strict=True)
    ]
    return probes, scores


SCORE_BATCH = 32


def _served(pair: Pair, probe: Probe, setting: Setting) -> bool:
    """What the cache does with a pair under ``setting``."""
    similarity = probe.similarity
    if similarity is None or similarity < setting.recall or similarity < setting.serve:
        return False
    if setting.guards and conflict(pair.cached, pair.query, setting.guards) is not None:
        return False
    return not setting.verify or (probe.probability is not None and probe.probability >= setting.verified_at)


def evaluate(pairs: Sequence[Pair], probes: Sequence[Probe], setting: Setting) -> dict[str, Any]:
    """Precision, recall and counts when the cache serves under ``setting``; false hits by kind.

    Precision is 1.0 when nothing is served: no wrong answer went out. ``unsure`` counts candidates the
    verifier would not decide (P(same) between ``different_below`` and ``verified_at``): misses, never hits.
    """
    if len(pairs) != len(probes):
        raise ValueError(f"{len(pairs)} pairs but {len(probes)} probes")
    tp = fp = fn = tn = lost_at_recall = candidates = out_of_scope = unsure = 0
    false_hits: Counter[str] = Counter({kind: 0 for kind in sorted({p.kind for p in pairs} - {"paraphrase"})})
    false_hit_examples = []
    for pair, probe in zip(pairs, probes, strict=True):
        served = _served(pair, probe, setting)
        if probe.similarity is None:
            out_of_scope += 1
        elif probe.similarity < setting.recall:
            lost_at_recall += pair.same
        else:
            candidates += 1
            probability = probe.probability
            unsure += (
                setting.verify
                and probability is not None
                and setting.different_below <= probability < setting.verified_at
            )
        if served and pair.same:
            tp += 1
        elif served:
            fp += 1
            false_hits[pair.kind] += 1
            example = {**asdict(pair), "similarity": round(float(probe.similarity or 0.0), 3)}
            false_hit_examples.append(example | {"probability": _rounded(probe.probability)})
        elif pair.same:
            fn += 1
        else:
            tn += 1
    return {
        **setting.described(),
        "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "candidates": candidates,
        "unsure": unsure,
        "out_of_scope": out_of_scope,
        "true_pairs_lost_at_recall": lost_at_recall,
        "false_hits_by_kind": dict(false_hits),
        "false_hits": false_hit_examples,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def sweep(pairs: Sequence[Pair], probes: Sequence[Probe], setting: Setting) -> list[dict[str, Any]]:
    """Precision and recall at each ``verified_at`` of :data:`SWEEP_PROBABILITIES` (the rest as shipped)."""
    rows = []
    for verified_at in SWEEP_PROBABILITIES:
        at = replace(
            setting, verify=True, verified_at=verified_at, different_below=min(setting.different_below, verified_at)
        )
        report = evaluate(pairs, probes, at)
        rows.append(
            {"verified_at": verified_at} | {key: report[key] for key in ("precision", "recall", "tp", "fp", "fn")}
        )
    return rows


def stages(pairs: Sequence[Pair], probes: Sequence[Probe], setting: Setting) -> list[dict[str, Any]]:
    """What each stage contributes: the vector search alone, the lexical guards (the shipped ones and all nine,
    the previous release's second stage), the verifier alone, and the shipped combination."""
    variants = {
        "similarity_only": replace(setting, guards=[], verify=False),
        "guards_only": replace(setting, verify=False),
        "all_nine_guards": replace(setting, guards=GUARDS, verify=False),
        "verifier_only": replace(setting, guards=[], verify=True),
        "shipped": setting,
    }
    rows = []
    for name, variant in variants.items():
        report = evaluate(pairs, probes, variant)
        rows.append(
            {"stage": name} | {key: report[key] for key in ("guards", "verify", "precision", "recall", "fp", "fn")}
        )
    return rows


def guard_contributions(pairs: Sequence[Pair], probes: Sequence[Probe], setting: Setting) -> list[dict[str, Any]]:
    """Per shipped guard: false hits it removes that the rest of the shipped stage 2 would serve, true pairs it
    blocks, and precision/recall without it. A guard that removes nothing here earns its place nowhere."""
    rows = []
    for name, guard in setting.guards:
        others = replace(setting, guards=[entry for entry in setting.guards if entry[0] != name])
        without = evaluate(pairs, probes, others)
        served_without = [pair for pair, probe in zip(pairs, probes, strict=True) if _served(pair, probe, others)]
        rejected = [pair for pair in served_without if guard(pair.cached, pair.query) is not None]
        rows.append(
            {
                "guard": name,
                "removes_false_hits": sum(not pair.same for pair in rejected),
                "blocks_true_pairs": sum(pair.same for pair in rejected),
                "precision_without": without["precision"],
                "recall_without": without["recall"],
            }
        )
    return rows


def fit_calibration(pairs: Sequence[Pair], probes: Sequence[Probe], scores: np.ndarray) -> Calibration:
    """Platt scaling of the verifier's raw scores on the pairs the recall stage found (one tenant each)."""
    from sklearn.linear_model import LogisticRegression

    used = [
        number
        for number, (pair, probe) in enumerate(zip(pairs, probes, strict=True))
        if probe.probability is not None and pair.tenant == pair.cached_tenant
    ]
    labels = np.asarray([pairs[number].same for number in used], dtype=int)
    model = LogisticRegression(C=1e6).fit(scores[used].reshape(-1, 1), labels)
    return Calibration(round(float(model.coef_[0][0]), 4), round(float(model.intercept_[0]), 4))


def report_file(
    pairs: Sequence[Pair], settings: Settings, embedder: Embedder, verifier: CrossEncoderVerifier, *, route: str
) -> tuple[dict[str, Any], list[Probe], np.ndarray]:
    """The report on one set of pairs at the shipped setting, with its stages, guards and sweep; also the probes
    and raw scores (for calibration)."""
    setting = Setting.of(settings, route)
    probes, scores = probe_pairs(pairs, settings, embedder, verifier, route=route)
    shipped = evaluate(pairs, probes, setting)
    crossing = [probe for pair, probe in zip(pairs, probes, strict=True) if pair.tenant != pair.cached_tenant]
    # The eval's arithmetic must be what the cache did: a divergence means the eval measures something else.
    agrees = [probe.served for probe in probes] == [
        _served(pair, probe, setting) for pair, probe in zip(pairs, probes, strict=True)
    ]
    cross_tenant_hits = sum(probe.served for probe in crossing)
    report = {
        "pairs": len(pairs),
        "kinds": dict(Counter(pair.kind for pair in pairs)),
        "precision": shipped["precision"],
        "recall": shipped["recall"],
        "default": shipped,
        "agrees_with_cache": agrees,
        "cross_tenant": {"probes": len(crossing), "hits": cross_tenant_hits},
        "stages": stages(pairs, probes, setting),
        "guards": guard_contributions(pairs, probes, setting),
        "sweep": sweep(pairs, probes, setting),
        "meets_targets": shipped["precision"] >= TARGET_PRECISION and shipped["recall"] >= TARGET_RECALL,
    }
    report["passed"] = report["meets_targets"] and agrees and not cross_tenant_hits
    return report, probes, scores
